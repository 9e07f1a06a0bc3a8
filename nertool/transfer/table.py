"""Cross-lingual transfer tables and sample-size curves: records and renderers, no training.

A transfer experiment fine-tunes one model per *setting* (a set of training languages) and scores it
on every evaluation language. The result is the book's table: rows are training settings, columns are
test languages. The ``"each"`` keyword asks for one model per evaluation language trained on that
language alone; those models share ONE row, ``each``, whose cell for language L is the in-language
score of the model trained on L. That row is the reference for the *transfer gap* of every other row.

Setting names, which are also the keys of the score mappings the workflow passes in:

* a list of languages ``["de", "fr"]`` → ``"de+fr"`` (order as written);
* ``"each"`` → ``"each:de"``, ``"each:fr"``, ... (one per evaluation language; row ``each``);
* ``"all"`` → ``"all"`` (every evaluation language together).

Model selection (which checkpoint's test score goes in a cell) is recorded with the table:
``source_dev`` (default; the XTREME protocol: best dev score on the *training* languages — the only
choice available in a real zero-shot setting), ``target_dev`` (an oracle that peeks at the target
language's dev set, an upper bound), ``last`` (the final checkpoint). ``build_table`` takes one
strategy's scores; ``to_json`` can embed the others side by side.

Columns are evaluation languages, or — with ``data.eval_sources`` — (corpus, language) pairs named
``corpus:language`` (``wikiann:fr``, ``conll2003:de``). A pair's *language* decides what is zero-shot
(a column whose language the row did not train on) and which ``each`` model fills the in-language row.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from nertool.errors import ConfigError, NertoolError
from nertool.langcode import language_of

__all__ = [
    "ALL",
    "EACH",
    "SELECTION_STRATEGIES",
    "Setting",
    "TableRow",
    "TransferTable",
    "build_table",
    "column_language",
    "each_name",
    "expand_sources",
    "group_trainings",
]

EACH = "each"
ALL = "all"
SELECTION_STRATEGIES: dict[str, str] = {
    "source_dev": "checkpoint with the best dev F1 on the training languages (XTREME protocol)",
    "target_dev": "checkpoint with the best dev F1 on the test language (oracle upper bound)",
    "last": "final checkpoint",
}

Scores = Mapping[str, Mapping[str, float | None]]


@dataclass(frozen=True)
class Setting:
    """One model to train: a named set of training languages.

    ``base`` names the plain setting a self-trained one grew from (``"de + self(fr)"`` from
    ``"de"``, see ``nertool.transfer.selftrain``); its row reports its gain over that row.
    """

    name: str
    train_languages: tuple[str, ...]
    base: str | None = None

    @property
    def row(self) -> str:
        """The table row this setting's scores land in (``each:*`` settings share the row ``each``)."""
        return EACH if self.name.startswith(EACH + ":") else self.name


def column_language(column: str) -> str:
    """The language of a column: ``fr`` for ``wikiann:fr``, the column itself for a plain language."""
    return language_of(column)


def each_name(lang: str) -> str:
    """Setting name of the in-language model for ``lang`` (a member of the ``each`` row)."""
    return f"{EACH}:{lang}"


def expand_sources(sources: Sequence[Sequence[str] | str], eval_languages: Sequence[str]) -> list[Setting]:
    """Turn ``[transfer] sources`` into the settings to train, in recipe order.

    Strings are keywords only (``"each"``, ``"all"``); a language set is always a list, so a typo in a
    keyword cannot silently become a language. Two entries that give the same name are an error.
    """
    langs = _check_languages(eval_languages, "eval_languages")
    settings: list[Setting] = []
    for entry in sources:
        settings.extend(_expand_one(entry, langs))
    names = [s.name for s in settings]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigError(f"transfer.sources lists {', '.join(twice)} more than once: remove the duplicates")
    return settings


def group_trainings(settings: Sequence[Setting]) -> dict[tuple[str, ...], list[str]]:
    """Settings that need the same model (same language set, any order), so it is trained once.

    ``["de"]`` and ``"each"`` both contain a German-only model; the key is the sorted language tuple.
    """
    groups: dict[tuple[str, ...], list[str]] = {}
    for setting in settings:
        groups.setdefault(tuple(sorted(setting.train_languages)), []).append(setting.name)
    return groups


def _expand_one(entry: Sequence[str] | str, eval_languages: tuple[str, ...]) -> list[Setting]:
    """One recipe entry → one setting, or one per evaluation language for ``each``."""
    if isinstance(entry, str):
        if entry == EACH:
            return [Setting(each_name(lang), (lang,)) for lang in eval_languages]
        if entry == ALL:
            return [Setting(ALL, eval_languages)]
        raise ConfigError(
            f'transfer.sources: unknown keyword "{entry}": use "each", "all", or a list of '
            f'languages such as ["{entry}"]'
        )
    langs = _check_languages(entry, "a transfer.sources entry")
    return [Setting("+".join(langs), langs)]


def _check_languages(langs: Sequence[str] | str, what: str) -> tuple[str, ...]:
    """A non-empty list of distinct language codes that cannot be confused with setting names."""
    if isinstance(langs, str) or not langs:
        raise ConfigError(f'{what} must be a non-empty list of language codes, such as ["de", "fr"]')
    for lang in langs:
        if not isinstance(lang, str) or not lang or any(c in lang for c in "+: ") or lang in (EACH, ALL):
            raise ConfigError(f'{what}: {lang!r} is not a language code: write codes such as "de"')
    if len(set(langs)) != len(langs):
        raise ConfigError(f"{what} repeats a language ({', '.join(langs)}): list each language once")
    return tuple(langs)


def _check_columns(columns: Sequence[str]) -> tuple[str, ...]:
    """Plain language columns are checked as before; ``corpus:language`` columns by their parts."""
    if isinstance(columns, str) or not any(":" in col for col in columns):
        return _check_languages(columns, "eval_languages")
    for col in columns:
        corpus, _, lang = col.rpartition(":")
        if not corpus or any(c in corpus for c in "+: "):
            raise ConfigError(f'table column {col!r} is not "corpus:language" such as "conll2003:de"')
        _check_languages([lang], f"table column {col!r}")
    if len(set(columns)) != len(columns):
        raise ConfigError(f"table columns repeat ({', '.join(columns)}): list each once")
    return tuple(columns)


@dataclass(frozen=True)
class TableRow:
    """One row of the table; every tuple is aligned with ``TransferTable.eval_languages``.

    ``train_languages`` is empty for the ``each`` row, whose cell L was trained on L alone.
    ``gaps[i]`` is the in-language (``each``) score of column i minus this row's score: positive means
    this setting falls short of training on the target language itself. A self-trained row names its
    plain row in ``base`` and ``gains[i]`` is its score minus the plain row's (positive: it helped);
    other rows have no base and no gains.
    """

    name: str
    train_languages: tuple[str, ...]
    scores: tuple[float | None, ...]
    mean: float | None
    zero_shot_mean: float | None
    gaps: tuple[float | None, ...]
    base: str | None = None
    gains: tuple[float | None, ...] = ()

    @property
    def in_language(self) -> bool:
        """Whether this is the ``each`` row."""
        return self.name == EACH

    def trained_on(self, lang: str) -> bool:
        """Whether the model behind this row's ``lang`` cell (a column) saw its language in training."""
        return column_language(lang) in self.train_languages or self.in_language


@dataclass(frozen=True)
class TransferTable:
    """Training settings × test languages, under one model-selection strategy."""

    eval_languages: tuple[str, ...]
    rows: tuple[TableRow, ...]
    selection: str = "source_dev"

    @property
    def has_self_training(self) -> bool:
        """Whether any row is a self-trained setting (and so carries gains)."""
        return any(row.base is not None for row in self.rows)

    @property
    def has_gaps(self) -> bool:
        """Gaps exist only when the ``each`` row was run."""
        return any(row.in_language for row in self.rows)

    def row(self, name: str) -> TableRow:
        """The row called ``name`` (``"each"``, ``"de"``, ``"de+fr"``, ``"all"``)."""
        for row in self.rows:
            if row.name == name:
                return row
        raise NertoolError(
            f'transfer table has no row "{name}"; rows: {", ".join(r.name for r in self.rows)}'
        )


def build_table(
    scores: Scores,
    settings: Sequence[Setting],
    eval_languages: Sequence[str],
    *,
    selection: str = "source_dev",
) -> TransferTable:
    """Assemble the book-style table from ``scores[setting name][eval language]``.

    A setting absent from ``scores``, or a language absent from its mapping, is a missing cell
    (``None``): it renders as "–" and is left out of means, so a partly failed experiment still
    reports what it has. Score keys that name no setting or no evaluation language are errors.
    """
    langs = _check_columns(eval_languages)
    check_selection(selection)
    _check_scores(scores, settings, langs)
    in_language = _in_language_scores(scores, settings, langs)
    rows: list[TableRow] = []
    for name, members in _rows_in_order(settings).items():
        cells = _row_cells(scores, members, langs)
        train = () if name == EACH else members[0].train_languages
        rows.append(_make_row(name, train, cells, langs, in_language))
    return TransferTable(langs, tuple(_with_gains(rows, settings)), selection)


def _with_gains(rows: list[TableRow], settings: Sequence[Setting]) -> list[TableRow]:
    """Self-trained rows get their base row's name and ``gains`` = their cells minus the base's."""
    by_name = {row.name: row for row in rows}
    bases = {s.name: s.base for s in settings if s.base is not None}
    for base in bases.values():
        if base not in by_name:
            raise NertoolError(f'a self-trained setting grew from "{base}", which is not a row of the table')
    return [
        replace(
            row,
            base=bases[row.name],
            gains=tuple(
                _difference(value, plain)
                for value, plain in zip(row.scores, by_name[bases[row.name]].scores, strict=True)
            ),
        )
        if row.name in bases
        else row
        for row in rows
    ]


def _rows_in_order(settings: Sequence[Setting]) -> dict[str, list[Setting]]:
    """Row name → its settings, rows in order of first appearance."""
    rows: dict[str, list[Setting]] = {}
    for setting in settings:
        rows.setdefault(setting.row, []).append(setting)
    return rows


def _row_cells(scores: Scores, members: list[Setting], langs: tuple[str, ...]) -> tuple[float | None, ...]:
    """A normal row reads its one setting; the ``each`` row reads column C from setting ``each:L``,
    L the language of C (for a plain language column, C itself)."""
    if members[0].row == EACH:
        return tuple(scores.get(each_name(column_language(col)), {}).get(col) for col in langs)
    row_scores = scores.get(members[0].name, {})
    return tuple(row_scores.get(lang) for lang in langs)


def _in_language_scores(
    scores: Scores, settings: Sequence[Setting], langs: tuple[str, ...]
) -> tuple[float | None, ...] | None:
    """The ``each`` row's cells, or ``None`` when ``each`` was not part of the experiment."""
    each = [s for s in settings if s.row == EACH]
    return _row_cells(scores, each, langs) if each else None


def _make_row(
    name: str,
    train: tuple[str, ...],
    cells: tuple[float | None, ...],
    langs: tuple[str, ...],
    in_language: tuple[float | None, ...] | None,
) -> TableRow:
    """Means, zero-shot mean (targets the row did not train on) and gaps for one row."""
    zero_shot = [
        c for col, c in zip(langs, cells, strict=True) if column_language(col) not in train and name != EACH
    ]
    if in_language is None:
        gaps: tuple[float | None, ...] = (None,) * len(langs)
    else:
        gaps = tuple(_difference(ref, c) for ref, c in zip(in_language, cells, strict=True))
    return TableRow(name, train, cells, _mean(cells), _mean(zero_shot), gaps)


def _mean(values: Sequence[float | None]) -> float | None:
    """Mean of the present values; ``None`` when there are none."""
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


def _difference(reference: float | None, value: float | None) -> float | None:
    return None if reference is None or value is None else reference - value


def check_selection(selection: str) -> None:
    if selection not in SELECTION_STRATEGIES:
        raise ConfigError(
            f'unknown model-selection strategy "{selection}": use one of {", ".join(SELECTION_STRATEGIES)}'
        )


def _check_scores(scores: Scores, settings: Sequence[Setting], langs: tuple[str, ...]) -> None:
    """Every score must belong to a known setting and language and be a finite number or ``None``."""
    names = {s.name for s in settings}
    for name, row in scores.items():
        if name not in names:
            raise NertoolError(
                f'scores given for "{name}", which is not a transfer setting ({", ".join(names)})'
            )
        for lang, value in row.items():
            if lang not in langs:
                raise NertoolError(
                    f'scores for "{name}" include "{lang}", which is not an evaluation language'
                )
            if value is not None and not math.isfinite(value):
                raise NertoolError(f'score of "{name}" on "{lang}" is {value}: expected a finite number')
