"""The baseline of the whole-process predict scenario: a user's script around the pipeline.

``python -m bench.pipeline_predict MODEL_DIR INPUT.conll OUTPUT.jsonl --batch-size N`` reads a
CoNLL file (first column = word, a blank line ends a sentence), tags each sentence as
``" ".join(words)`` with ``transformers.pipeline("token-classification",
aggregation_strategy="first")`` at the given batch size, and writes one JSON line per sentence:
``{"text": ..., "entities": [{"start", "end", "entity_group", "score"}]}`` (the pipeline's keys).
It is what the transformers documentation shows, with nothing slowed down: one pipeline, a list
in, the batch size the caller found fastest. It imports no nertool code, so its start-up is the
pipeline's own.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path


def sentences_of(path: Path) -> Iterator[list[str]]:
    """The word lists of a CoNLL file (first column; blank lines and ``-DOCSTART-`` separate)."""
    words: list[str] = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            fields = line.split()
            if not fields or fields[0] == "-DOCSTART-":
                if words:
                    yield words
                words = []
            else:
                words.append(fields[0])
    if words:
        yield words


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.pipeline_predict")
    parser.add_argument("model")
    parser.add_argument("input", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()

    from transformers import pipeline

    tagger = pipeline(
        "token-classification",
        model=args.model,
        aggregation_strategy="first",
        batch_size=args.batch_size,
        device="cpu",
    )
    texts = [" ".join(words) for words in sentences_of(args.input)]
    with args.output.open("w", encoding="utf-8") as out:
        for text, groups in zip(texts, tagger(texts) if texts else [], strict=True):
            entities = [
                {
                    "start": g["start"],
                    "end": g["end"],
                    "entity_group": g["entity_group"],
                    "score": float(g["score"]),
                }
                for g in groups
            ]
            out.write(json.dumps({"text": text, "entities": entities}, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
