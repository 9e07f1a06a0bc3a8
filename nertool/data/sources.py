"""Data sources → per-language splits of sentences, and seeded sampling of training sets.

A SPEC names where sentences come from (ARCHITECTURE §1):

- a local file (one language, named ``und`` unless ``--languages`` gives one);
- a corpus folder laid out ``<dir>/<lang>/<split>.<ext>``;
- ``hub:NAME[:CONFIG]``, CONFIG may hold ``{lang}`` (``hub:google/xtreme:PAN-X.{lang}``);
- a ``datasets`` folder: ``save_to_disk`` of a DatasetDict or ``<split>.parquet`` files, either
  for one language at the top or per language as ``<dir>/<lang>/...`` (``nertool.data.hf``).

Everything below returns plain ``Sentence`` records, so training, evaluation and inspection
never care where sentences came from. Sampling records the exact indices it chose, so a
training set can be rebuilt from ``data_manifest.json``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nertool.data.harmonise import LabelChanges, TypeMap, harmonise, types_in, warn_unused
from nertool.data.hf import (
    DEFAULT_COLUMNS,
    Columns,
    dataset_sentences,
    is_dataset_split,
    is_saved_dataset,
    load_local_split,
    parquet_split,
    saved_split,
)
from nertool.data.readers import ReadReport, Sentence, read_sentences
from nertool.data.sampling import choose_indices, fraction_counts, temperature_counts
from nertool.errors import DataError
from nertool.langcode import LANGUAGE_RULE, check_languages, is_language_code

log = logging.getLogger("nertool")

SPLITS = ("train", "validation", "test")
SPLIT_ALIASES = {
    "train": ("train",),
    "validation": ("validation", "dev", "val", "testa"),
    "test": ("test", "testb"),
}
HUB_PREFIX = "hub:"
UNDETERMINED = "und"


@dataclass(frozen=True)
class SplitRef:
    """Where one language's split lives: a local file, a hub dataset + config, or a local
    ``datasets`` split (``dataset``: a saved split folder or a Parquet file)."""

    language: str
    split: str
    path: Path | None = None
    hub_name: str | None = None
    hub_config: str | None = None
    revision: str | None = None
    dataset: Path | None = None
    columns: Columns = DEFAULT_COLUMNS

    def describe(self) -> str:
        if self.path is not None:
            return str(self.path)
        if self.dataset is not None:
            return str(self.dataset)
        return f"hub:{self.hub_name}:{self.hub_config}@{self.revision or 'main'}[{self.split}]"


@dataclass
class Corpus:
    """Sentences per language and split, with the reports of the files they came from and the
    entity types renamed or dropped on the way (``nertool.data.harmonise``)."""

    splits: dict[str, dict[str, list[Sentence]]] = field(default_factory=dict)
    sources: dict[str, dict[str, str]] = field(default_factory=dict)
    reports: list[ReadReport] = field(default_factory=list)
    changes: LabelChanges = field(default_factory=LabelChanges)

    def get(self, language: str, split: str) -> list[Sentence] | None:
        return self.splits.get(language, {}).get(split)

    @property
    def languages(self) -> list[str]:
        return list(self.splits)


def is_hub_spec(spec: str) -> bool:
    return spec.startswith(HUB_PREFIX)


def parse_hub_spec(spec: str) -> tuple[str, str | None]:
    """``hub:google/xtreme:PAN-X.{lang}`` → (``google/xtreme``, ``PAN-X.{lang}``)."""
    body = spec[len(HUB_PREFIX) :]
    name, _, config = body.partition(":")
    if not name:
        raise DataError(f"hub spec {spec!r} names no dataset; write hub:NAME[:CONFIG]")
    return name, config or None


def _split_file(folder: Path, split: str) -> Path | None:
    """Where ``split`` is in a language folder: a file (``train.tsv``, ``dev.txt``, ``test.parquet``,
    ...) or, in a saved DatasetDict, the split's folder."""
    if is_saved_dataset(folder):
        return saved_split(folder, SPLIT_ALIASES[split])
    for alias in SPLIT_ALIASES[split]:
        matches = sorted(p for p in folder.glob(f"{alias}.*") if p.is_file())
        if matches:
            return matches[0]
    return None


def folder_languages(root: Path) -> list[str]:
    """Language folders under a corpus root that hold at least one split file.

    A folder whose name is not a language code (``nertool.langcode``; e.g. ``my data`` or
    ``.cache``) is skipped with a warning: its name would become part of output file names.
    """
    found = sorted(p for p in root.iterdir() if p.is_dir() and any(_split_file(p, s) for s in SPLITS))
    for folder in found:
        if not is_language_code(folder.name):
            log.warning("%s: skipped: the folder name is not a language code (%s)", folder, LANGUAGE_RULE)
    return [folder.name for folder in found if is_language_code(folder.name)]


def locate(
    spec: str,
    languages: Sequence[str],
    splits: Sequence[str],
    *,
    revision: str | None = None,
    tokens_column: str | None = None,
    tags_column: str | None = None,
) -> list[SplitRef]:
    """Every (language, split) the spec offers among those asked for; missing splits are skipped.

    ``tokens_column``/``tags_column`` (the recipe's ``data.*_column``; None: ``tokens`` and
    ``ner_tags``) name the columns of a ``datasets`` source; local text files ignore them.
    """
    columns = Columns.of(tokens_column, tags_column)
    check_languages(languages, "language")
    unknown = [split for split in splits if split not in SPLITS]
    if unknown:
        raise DataError(f"unknown split {unknown[0]!r}; use one of {', '.join(SPLITS)}")
    if is_hub_spec(spec):
        name, config = parse_hub_spec(spec)
        return [
            SplitRef(
                lang,
                split,
                hub_name=name,
                hub_config=_hub_config(config, lang),
                revision=revision,
                columns=columns,
            )
            for lang in languages
            for split in splits
        ]
    root = Path(spec)
    if root.is_file():
        language = languages[0] if len(languages) == 1 else UNDETERMINED
        return [SplitRef(language, split, path=root) for split in splits[:1]]
    if root.is_symlink() and not root.exists():
        raise DataError("a symbolic link to nothing (its target is gone); fix or remove the link", root)
    if not root.is_dir():
        raise DataError(
            "data source not found: give a file, a folder <dir>/<lang>/<split>.<ext>, or hub:NAME", root
        )
    if is_dataset_folder(root):
        language = languages[0] if len(languages) == 1 else UNDETERMINED
        return _refs(root, language, splits, columns)
    return _locate_in_folder(root, languages, splits, columns)


def is_dataset_folder(root: Path) -> bool:
    """A folder that is itself one language's ``datasets`` data (DatasetDict or split Parquet files)."""
    return is_saved_dataset(root) or any(parquet_split(root, aliases) for aliases in SPLIT_ALIASES.values())


def _refs(folder: Path, language: str, splits: Sequence[str], columns: Columns) -> list[SplitRef]:
    """The refs of one language folder's splits, in the order asked for; missing splits are skipped."""
    refs = []
    for split in splits:
        path = _split_file(folder, split)
        if path is not None and is_dataset_split(path):
            refs.append(SplitRef(language, split, dataset=path, columns=columns))
        elif path is not None:
            refs.append(SplitRef(language, split, path=path))
    return refs


def _hub_config(config: str | None, language: str) -> str | None:
    return None if config is None else config.replace("{lang}", language)


def _locate_in_folder(
    root: Path, languages: Sequence[str], splits: Sequence[str], columns: Columns
) -> list[SplitRef]:
    available = folder_languages(root)
    if not available:
        raise DataError(
            "no language folders with split files here; expected <dir>/<lang>/<split>.<ext> "
            "such as de/train.tsv",
            root,
        )
    missing = [lang for lang in languages if lang not in available]
    if missing:
        raise DataError(
            f"no folder for language(s) {', '.join(missing)} (found: {', '.join(available) or 'none'}); "
            "expected <dir>/<lang>/<split>.<ext>",
            root,
        )
    return [ref for lang in languages or available for ref in _refs(root / lang, lang, splits, columns)]


HubLoader = Callable[..., Any]


def _default_hub_loader(name: str | None, config: str | None, split: str, revision: str | None) -> Any:
    """``datasets.load_dataset`` with no remote code (datasets ≥ 3 reads Parquet configs)."""
    import datasets

    return datasets.load_dataset(name, config, split=split, revision=revision)


def read_hub_split(ref: SplitRef, loader: HubLoader | None = None) -> list[Sentence]:
    """Sentences of one ``datasets`` split, from the hub or (``ref.dataset``) a local folder or file.

    Integer tags are mapped through the ClassLabel names (``nertool.data.hf.dataset_sentences``).
    """
    if ref.dataset is not None:
        return dataset_sentences(load_local_split(ref.dataset), ref.describe(), ref.columns)
    loader = loader or _default_hub_loader
    try:
        dataset = loader(ref.hub_name, ref.hub_config, ref.split, ref.revision)
    except Exception as error:  # network, auth, missing config: all end as one readable line
        raise DataError(
            f"could not load {ref.describe()}: {error}; check the name, config and network"
        ) from None
    return dataset_sentences(dataset, ref.describe(), ref.columns)


def load_corpus(
    spec: str,
    languages: Sequence[str],
    splits: Sequence[str] = SPLITS,
    *,
    file_format: str = "auto",
    strict_tags: bool = False,
    revision: str | None = None,
    hub_loader: HubLoader | None = None,
    tokens_column: str | None = None,
    tags_column: str | None = None,
    type_map: TypeMap | None = None,
) -> Corpus:
    """Read every requested split of every language into one ``Corpus``.

    ``tokens_column``/``tags_column``: the recipe's ``data.tokens_column``/``data.tags_column``.
    ``type_map`` renames or drops entity types as each file is read; what it changed is counted
    per file in ``corpus.changes``, and a mapped type no file has is a warning naming the map.
    """
    corpus = Corpus()
    found: set[str] = set()
    refs = locate(
        spec, languages, splits, revision=revision, tokens_column=tokens_column, tags_column=tags_column
    )
    for ref in refs:
        if ref.path is not None:
            report = ReadReport(str(ref.path))
            sentences = list(read_sentences(ref.path, file_format, strict_tags, report=report))
            corpus.reports.append(report)
            log_repairs(report)
        else:
            sentences = read_hub_split(ref, hub_loader)
        if type_map:
            found |= types_in(sentences)
            sentences = harmonise(sentences, type_map, file=ref.describe(), changes=corpus.changes)
        corpus.splits.setdefault(ref.language, {})[ref.split] = sentences
        corpus.sources.setdefault(ref.language, {})[ref.split] = ref.describe()
    if type_map:
        warn_unused(type_map, found, spec)
    return corpus


def log_repairs(report: ReadReport) -> None:
    if report.repaired_tags:
        log.warning(
            "%s:%s: repaired %d orphan I- tag(s) to B- (IOB1 or annotation slips); "
            "use --strict-tags to refuse",
            report.path,
            report.first_repair_line,
            report.repaired_tags,
        )


@dataclass(frozen=True)
class SamplePlan:
    """How many training sentences to take per language, and how that was decided."""

    counts: dict[str, int]
    method: str


def plan_sample(
    available: Mapping[str, int],
    max_samples: int | None,
    fractions: Mapping[str, float] | None,
    *,
    temperature: float | None,
) -> SamplePlan:
    """Per-language training sizes from the recipe's ``max_train_samples``/``fractions``/temperature."""
    if fractions:
        return SamplePlan(fraction_counts(available, fractions, None), "fractions")
    if temperature is not None:
        total = (
            min(max_samples * len(available), sum(available.values()))
            if max_samples
            else sum(available.values())
        )
        return SamplePlan(temperature_counts(available, temperature, total), f"temperature T={temperature}")
    cap = max_samples or max(available.values(), default=0)
    return SamplePlan({lang: min(n, cap) for lang, n in available.items()}, "max_train_samples")


def sample_sentences(
    sentences: Sequence[Sentence], n: int, seed: int, *, key: str
) -> tuple[list[Sentence], list[int]]:
    """A seeded subset and the indices chosen (kept in ``data_manifest.json``)."""
    indices = choose_indices(len(sentences), n, seed, key=key)
    return [sentences[i] for i in indices], indices
