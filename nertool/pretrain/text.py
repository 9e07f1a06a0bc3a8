"""Pre-training text: sources → documents per language → the held-out slice and the language mix.

Text (``[pretrain] text``, a list of sources; empty means ``[data] source``):

- a corpus the data readers understand (``sample``, a folder ``<dir>/<lang>/<split>.<ext>``,
  ``hub:NAME[:CONFIG]``, a ``.tsv``/``.conll``/``.jsonl`` file, or a ``.txt`` file whose lines end
  in IOB tags): the words of its ``train`` and ``validation`` splits, tags ignored. Never ``test``:
  fine-tuned models are scored there.
- raw text: a file or a folder of ``*.txt`` files, one document a line, cut into words by
  ``textsplit.split_words`` (the rule ``predict`` uses). ``{lang}`` in the path gives one source per
  language of ``[pretrain] languages``; otherwise the text is ``und`` (or the only language listed).

Mixing: a seeded ``heldout_fraction`` of each language's documents is set aside first (for held-out
loss and perplexity; never trained on). Language shares p_i ∝ n_i^(1/T) (``sampling_temperature``)
or fixed ``fractions`` then split ``max_sentences`` (default: all training documents); a language
whose share exceeds what it has repeats its documents, as XLM-R up-samples small languages.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from nertool.config import PretrainConfig
from nertool.data.lines import describe_for_resave, file_lines
from nertool.data.sampling import choose_indices, temperature_probs
from nertool.data.sources import UNDETERMINED, folder_languages, is_dataset_folder, is_hub_spec, load_corpus
from nertool.errors import ConfigError, DataError
from nertool.predict.textsplit import split_words

Words = tuple[str, ...]
_SAMPLE_DIR = Path(__file__).resolve().parents[1] / "resources" / "sample"
_TAGGED_SUFFIXES = {".tsv", ".conll", ".conllu", ".iob", ".iob2", ".bio", ".jsonl"}
_TAG = re.compile(r"^(O|[BIES]-\S+)$")
_CORPUS_SPLITS = ("train", "validation")

# ------------------------------------------------------------------ text sources


@dataclass(frozen=True)
class TextSource:
    """Documents (word tuples, in source order) per language, and where each language's came from."""

    documents: dict[str, list[Words]]
    sources: dict[str, list[str]]


def read_text_sources(entries: Sequence[str], languages: Sequence[str]) -> TextSource:
    """Every document of every source, grouped by language."""
    documents: dict[str, list[Words]] = {}
    sources: dict[str, list[str]] = {}
    for entry in entries:
        for language, where, docs in _read_entry(entry, languages):
            documents.setdefault(language, []).extend(docs)
            sources.setdefault(language, []).append(where)
    if not any(documents.values()):
        raise DataError(f"no words in the pre-training text {', '.join(entries)}; check pretrain.text")
    return TextSource(documents, sources)


def _read_entry(entry: str, languages: Sequence[str]) -> Iterator[tuple[str, str, list[Words]]]:
    if "{lang}" in entry:
        if not languages:
            raise ConfigError(
                f"pretrain.text {entry!r} holds {{lang}}: list the languages in pretrain.languages"
            )
        for language in languages:
            path = Path(entry.replace("{lang}", language))
            yield language, str(path), raw_documents(path)
        return
    source = str(_SAMPLE_DIR) if entry == "sample" else entry
    if _is_corpus(source):
        corpus = load_corpus(source, languages, _CORPUS_SPLITS)
        for language in corpus.languages:
            for split, sentences in corpus.splits[language].items():
                yield language, corpus.sources[language][split], [s.tokens for s in sentences]
    else:
        language = languages[0] if len(languages) == 1 else UNDETERMINED
        yield language, source, raw_documents(Path(source))


def _is_corpus(source: str) -> bool:
    path = Path(source)
    if is_hub_spec(source) or is_dataset_folder(path):
        return True
    if path.is_dir():
        return bool(folder_languages(path))
    return path.suffix in _TAGGED_SUFFIXES or (path.is_file() and _looks_tagged(path))


def _looks_tagged(path: Path, probe: int = 20) -> bool:
    """A text file whose first lines all end in an IOB tag is a CoNLL-style corpus, not raw text."""
    rows = []
    with path.open(encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if line.strip() and not line.startswith("-DOCSTART-"):
                rows.append(line.split())
            if len(rows) >= probe:
                break
    return bool(rows) and all(len(row) >= 2 and _TAG.match(row[-1]) for row in rows)


def raw_documents(path: Path) -> list[Words]:
    """Documents of a raw text file, or of every ``*.txt`` under a folder (sorted): one a line."""
    if not path.exists():
        raise DataError(
            "pre-training text not found; give a text file, a folder of .txt files or a corpus", path
        )
    files = sorted(path.rglob("*.txt")) if path.is_dir() else [path]
    if not files:
        raise DataError(
            "no .txt files in this folder; put the text in *.txt files, one document a line", path
        )
    return [doc for file in files for doc in _file_documents(file)]


def _file_documents(path: Path) -> list[Words]:
    """One document per line; CR, LF and CRLF all end a line (the shared decoder)."""
    documents = []
    for _number, line in file_lines(path, describe_for_resave):
        words = tuple(word.text for word in split_words(line))
        if words:
            documents.append(words)
    return documents


# ------------------------------------------------------------------ held-out slice and language mix


@dataclass(frozen=True)
class TextMix:
    """Training documents in order, the held-out documents, and per-language counts."""

    train: list[Words]
    heldout: list[Words]
    counts: dict[str, dict[str, int]]
    method: str


def mix_documents(text: TextSource, settings: PretrainConfig, seed: int) -> TextMix:
    """Set the held-out slice aside, then sample (or repeat) each language to its share."""
    train: dict[str, list[Words]] = {}
    heldout: list[Words] = []
    for language, docs in text.documents.items():
        n_held = round(len(docs) * settings.heldout_fraction)
        held = set(choose_indices(len(docs), n_held, seed, key=f"heldout/{language}"))
        heldout += [doc for index, doc in enumerate(docs) if index in held]
        train[language] = [doc for index, doc in enumerate(docs) if index not in held]
    available = {language: len(docs) for language, docs in train.items()}
    shares, method = language_shares(available, settings)
    counts = round_counts(shares, settings.max_sentences or sum(available.values()))
    mixed = [doc for language, docs in train.items() for doc in _take(docs, counts[language], seed, language)]
    table = {
        lang: {"documents": len(docs), "heldout": len(docs) - available[lang], "sampled": counts[lang]}
        for lang, docs in text.documents.items()
    }
    return TextMix(mixed, heldout, table, method)


def language_shares(available: Mapping[str, int], settings: PretrainConfig) -> tuple[dict[str, float], str]:
    """p_i from fixed fractions (normalised), temperature smoothing, or corpus size (T = 1)."""
    if settings.fractions:
        unknown = sorted(set(settings.fractions) - set(available))
        if unknown or sum(settings.fractions.values()) <= 0 or min(settings.fractions.values()) < 0:
            raise ConfigError(
                f"pretrain.fractions must be >= 0 and not all 0, over languages of the text "
                f"({', '.join(available)}); unknown: {', '.join(unknown) or 'none'}"
            )
        norm = sum(settings.fractions.values())
        return {lang: settings.fractions.get(lang, 0.0) / norm for lang in available}, "fractions"
    temperature = settings.sampling_temperature or 1.0
    return temperature_probs(available, temperature), f"temperature {temperature:g}"


def round_counts(shares: Mapping[str, float], total: int) -> dict[str, int]:
    """Largest-remainder rounding of ``total * share`` (may exceed a language's documents: repeats)."""
    exact = {language: total * share for language, share in shares.items()}
    counts = {language: math.floor(value) for language, value in exact.items()}
    by_remainder = sorted(exact, key=lambda language: counts[language] - exact[language])
    for language in by_remainder[: max(0, total - sum(counts.values()))]:
        counts[language] += 1
    return counts


def _take(docs: Sequence[Words], count: int, seed: int, language: str) -> list[Words]:
    """``count`` documents: whole passes over ``docs`` in order, then a seeded subset."""
    if not docs:
        return []
    passes, rest = divmod(count, len(docs))
    return [*docs] * passes + [
        docs[i] for i in choose_indices(len(docs), rest, seed, key=f"pretrain/{language}")
    ]
