"""``nertool data inspect``: what a data source holds before anyone trains on it.

Per language and split: sentences, tokens, label and entity-type counts, the share of ``O``
(the class imbalance that makes token accuracy misleading), IOB2 repairs, and — given a
tokenizer — an alignment audit: subwords per word, words split into 3+ pieces, sentences
that need windows, words with no subword at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from nertool.align import word_pieces
from nertool.analysis import label_stats
from nertool.data import load_corpus
from nertool.formats import Sentence


def split_row(language: str, split: str, sentences: Sequence[Sentence]) -> dict[str, Any]:
    stats = label_stats([s.tags for s in sentences])
    return {
        "language": language,
        "split": split,
        "sentences": stats["sentences"],
        "tokens": stats["tokens"],
        "entities": sum(stats["entity_counts"].values()),
        "entity_types": stats["entity_counts"],
        "o_share": stats["o_share"],
        "entities_per_sentence": stats["entities_per_sentence"],
        "tag_counts": stats["tag_counts"],
    }


def alignment_audit(tokenizer: Any, language: str, sentences: Sequence[Sentence], max_length: int) -> dict[str, Any]:
    """How the tokenizer cuts this language's words (the book's subword statistics, automated)."""
    pieces = word_pieces(tokenizer, [s.tokens for s in sentences])
    lengths = [len(p) for sentence in pieces for p in sentence]
    words = max(1, len(lengths))
    return {
        "language": language,
        "subwords_per_word": round(sum(lengths) / words, 3),
        "words_3plus_pieces": round(sum(n >= 3 for n in lengths) / words, 4),
        "words_no_subword": sum(n == 0 for n in lengths),
        "sentences_needing_windows": sum(sum(len(p) for p in s) + 2 > max_length for s in pieces),
    }


def inspect_source(spec: str, languages: Sequence[str], model: str | None = None, file_format: str = "auto") -> dict[str, Any]:
    from nertool.workflows import resolve_source

    corpus = load_corpus(resolve_source(spec), languages, file_format=file_format)
    formats = {report.path: (report.file_format, report.repaired_tags) for report in corpus.reports}
    rows = []
    for language, splits in corpus.splits.items():
        for split, sentences in splits.items():
            row = split_row(language, split, sentences)
            fmt, repaired = formats.get(corpus.sources[language][split], ("hub", 0))
            rows.append({**row, "format": fmt, "repaired_tags": repaired})
    report: dict[str, Any] = {"source": spec, "splits": rows}
    if model is not None:
        from nertool.model import load_tokenizer

        tokenizer = load_tokenizer(model)
        report["alignment"] = [
            alignment_audit(tokenizer, language, splits.get("train") or next(iter(splits.values())), 512)
            for language, splits in corpus.splits.items()
        ]
    return report
