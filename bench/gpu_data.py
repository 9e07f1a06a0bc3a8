"""Data for the GPU benchmark: German WikiANN sentences, a scratch tokenizer, both sides' inputs.

The GPU machine has no ``datasets``: the Trainer gets the transformers example's
``tokenize_and_align_labels`` applied to a plain dict of lists (a list of row dicts is a valid
``train_dataset``), nertool gets its own features from ``nertool.model.encode``. Both come from the
same sentences and the same tokenizer. ``bench/gpu_session.sh prep`` copies the WikiANN files into
``.gpudata/`` (git-ignored) so they travel with the working tree.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.harness import DATA_ROOT, LANGUAGE, REPO, SAMPLE, cycled, load_split

GPU_DATA = REPO / ".gpudata" / "wikiann"
MAX_LENGTH = 128
VOCAB = 8000


def find_corpus(explicit: Path | None, data_root: Path = DATA_ROOT) -> tuple[str, str]:
    """(corpus folder, name): ``--data``; else ``<data_root>/wikiann``, ``.gpudata``, the bundled sample."""
    candidates = [explicit] if explicit else [data_root / "wikiann", GPU_DATA]
    for folder in candidates:
        if folder is not None and (folder / LANGUAGE / "train.tsv").is_file():
            return str(folder), "wikiann"
    if explicit:
        raise SystemExit(f"{explicit}: no {LANGUAGE}/train.tsv there (run bench/gpu_session.sh prep)")
    return str(SAMPLE), "sample"


@dataclass(frozen=True)
class GpuData:
    """Everything a side trains or scores on."""

    source: str
    tokenizer: Any
    label_map: Any
    train: list[Any]  # nertool.data.readers.Sentence
    dev: list[Any]
    features: list[Any]  # one nertool Feature per training window
    rows: list[dict[str, Any]]  # the example's tokenized rows, for the Trainer
    dev_grouped: list[list[Any]]  # dev features, one list per sentence


def load_data(corpus: str, source: str, train_sentences: int, dev_sentences: int) -> GpuData:
    from bench.hf_example import label_aligner
    from nertool.labels import LabelMap
    from nertool.model import encode, flatten, train_tokenizer

    train = cycled(load_split(corpus, "train"), train_sentences)
    dev = cycled(load_split(corpus, "validation"), dev_sentences)
    label_map = LabelMap.from_tags(tag for s in train + dev for tag in s.tags)
    tokenizer = train_tokenizer((" ".join(s.tokens) for s in train), VOCAB)
    features = flatten(encode(train, tokenizer, max_length=MAX_LENGTH, labels=label_map))
    dev_grouped = encode(dev, tokenizer, max_length=MAX_LENGTH)
    encoded = label_aligner(tokenizer, MAX_LENGTH)(
        {"tokens": [list(s.tokens) for s in train], "ner_tags": [label_map.encode(s.tags) for s in train]}
    )
    keys = ("input_ids", "attention_mask", "labels")
    rows = [{key: encoded[key][i] for key in keys} for i in range(len(train))]
    return GpuData(source, tokenizer, label_map, train, dev, features, rows, dev_grouped)
