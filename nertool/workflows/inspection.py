"""``nertool data inspect``: what a data source holds before anyone trains on it.

Per language and split: sentences, tokens, label and entity-type counts, the share of ``O``
(the class imbalance that makes token accuracy misleading), IOB2 repairs, and — given a
tokenizer — an alignment audit: subwords per word, words split into 3+ pieces, sentences
that need windows, words with no subword at all.

Local files are streamed: counts are accumulated sentence by sentence and only the first
``AUDIT_SENTENCES`` of a split are kept for the audit, so a file of millions of sentences
is inspected in constant memory.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from nertool.data.readers import ReadReport, Sentence, read_sentences
from nertool.data.sources import SPLITS, SplitRef, locate, log_repairs, read_hub_split
from nertool.labels import OUTSIDE, tags_to_spans
from nertool.model.align import word_pieces
from nertool.records import InspectionReport

AUDIT_SENTENCES = 5000


@dataclass
class SplitStats:
    """Running counts over the sentences of one split."""

    sentences: int = 0
    tokens: int = 0
    tags: Counter[str] = field(default_factory=Counter)
    entities: Counter[str] = field(default_factory=Counter)
    kept: list[Sentence] = field(default_factory=list)

    def add(self, sentence: Sentence) -> None:
        self.sentences += 1
        self.tokens += len(sentence.tokens)
        self.tags.update(sentence.tags)
        self.entities.update(span.label for span in tags_to_spans(sentence.tags))
        if len(self.kept) < AUDIT_SENTENCES:
            self.kept.append(sentence)

    def row(self, ref: SplitRef, report: ReadReport | None) -> dict[str, Any]:
        return {
            "language": ref.language,
            "split": ref.split,
            "format": report.file_format if report else "hub",
            "sentences": self.sentences,
            "tokens": self.tokens,
            "entities": sum(self.entities.values()),
            "entity_types": dict(sorted(self.entities.items())),
            "o_share": self.tags[OUTSIDE] / self.tokens if self.tokens else 0.0,
            "entities_per_sentence": sum(self.entities.values()) / self.sentences if self.sentences else 0.0,
            "tag_counts": dict(sorted(self.tags.items())),
            "repaired_tags": report.repaired_tags if report else 0,
        }


def _stream(ref: SplitRef, file_format: str, report: ReadReport) -> Iterable[Sentence]:
    if ref.path is not None:
        return read_sentences(ref.path, file_format, report=report)
    return read_hub_split(ref)


def alignment_audit(
    tokenizer: Any, language: str, sentences: Sequence[Sentence], *, max_length: int
) -> dict[str, Any]:
    """How the tokenizer cuts this language's words (the book's subword statistics, automated)."""
    pieces = word_pieces(tokenizer, [s.tokens for s in sentences])
    lengths = [len(p) for sentence in pieces for p in sentence]
    words = max(1, len(lengths))
    return {
        "language": language,
        "sentences_audited": len(sentences),
        "subwords_per_word": round(sum(lengths) / words, 3),
        "words_3plus_pieces": round(sum(n >= 3 for n in lengths) / words, 4),
        "words_no_subword": sum(n == 0 for n in lengths),
        "sentences_needing_windows": sum(sum(len(p) for p in s) + 2 > max_length for s in pieces),
    }


def inspect_source(
    spec: str, languages: Sequence[str], model: str | None = None, *, file_format: str = "auto"
) -> InspectionReport:
    """Counts per language and split, and the alignment audit when a tokenizer is named."""
    from nertool.workflows.training_data import resolve_source

    rows: list[dict[str, Any]] = []
    audit_text: dict[str, list[Sentence]] = {}
    for ref in locate(resolve_source(spec), languages, SPLITS):
        stats, report = SplitStats(), ReadReport(ref.describe())
        for sentence in _stream(ref, file_format, report):
            stats.add(sentence)
        log_repairs(report)
        rows.append(stats.row(ref, report if ref.path is not None else None))
        audit_text.setdefault(ref.language, stats.kept)
    alignment = None
    if model is not None:
        from nertool.model.build import load_tokenizer

        tokenizer = load_tokenizer(model)
        alignment = [
            alignment_audit(tokenizer, lang, kept, max_length=512) for lang, kept in audit_text.items()
        ]
    return InspectionReport(spec, tuple(rows), None if alignment is None else tuple(alignment))
