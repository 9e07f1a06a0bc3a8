"""Preprocessing: nertool's alignment against the transformers example's ``tokenize_and_align_labels``.

Baseline: ``datasets.Dataset.map(tokenize_and_align_labels, batched=True)`` over a Dataset with
the hub's WikiANN columns (built outside the timing). nertool: ``model.encode`` (the one encoder), i.e.
``align.word_pieces`` + ``align.build_features`` with labels (first-subword strategy), starting from
the same sentences. Quality: on every sentence that fits one window, both give the same subword
ids and the same label sequence.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bench.harness import Options, Row, alternate, cycled, data_source, load_split, make_record

SCENARIO = "preprocessing"
MAX_LENGTH = 256
VOCAB = 8000


def sizes(options: Options) -> tuple[int, int]:
    """(sentences, repeats)."""
    return (2_000, 1) if options.quick else (20_000, 3)


def agreement(encoded: Any, features: Sequence[Any], n_sentences: int) -> dict[str, Any]:
    """Compare both encodings sentence by sentence; sentences nertool windows are counted apart."""
    per_sentence: dict[int, list[Any]] = {}
    for feature in features:
        per_sentence.setdefault(feature.sentence, []).append(feature)
    baseline_ids, baseline_labels = list(encoded["input_ids"]), list(encoded["labels"])
    compared = same = 0
    first_difference = None
    for index in range(n_sentences):
        windows = per_sentence[index]
        if len(windows) != 1:
            continue
        compared += 1
        ours = windows[0]
        if list(ours.labels) == baseline_labels[index] and list(ours.input_ids) == baseline_ids[index]:
            same += 1
        elif first_difference is None:
            first_difference = index
    return {
        "sentences": n_sentences,
        "compared_single_window": compared,
        "windowed_not_compared": n_sentences - compared,
        "identical_ids_and_labels": same,
        "agree_share": same / compared if compared else 0.0,
        "first_difference": first_difference,
    }


def run(options: Options) -> dict[str, Any]:
    from bench.hf_example import raw_dataset, tokenized_dataset
    from nertool.labels import LabelMap
    from nertool.model import encode, flatten, train_tokenizer

    n, repeats = sizes(options)
    source, source_name = data_source(options)
    sentences = cycled(load_split(source, "train"), n)
    label_map = LabelMap.from_tags(tag for s in sentences for tag in s.tags)
    tokenizer = train_tokenizer((" ".join(s.tokens) for s in sentences), VOCAB)
    dataset = raw_dataset(sentences, [label_map.encode(s.tags) for s in sentences])

    base, ours = alternate(
        lambda: tokenized_dataset(dataset, tokenizer, MAX_LENGTH),
        lambda: flatten(encode(sentences, tokenizer, max_length=MAX_LENGTH, labels=label_map)),
        repeats,
    )
    rows = [
        Row("throughput", "sentences/s", n / base.seconds, n / ours.seconds),
        Row("wall time (best)", "s", base.seconds, ours.seconds, "lower"),
        Row("peak RSS growth", "MiB", base.peak_growth_mb, ours.peak_growth_mb, "lower"),
    ]
    quality = agreement(base.result, ours.result, n)
    settings = {
        "data": source_name,
        "split": "train",
        "sentences": n,
        "repeats": repeats,
        "max_length": MAX_LENGTH,
        "tokenizer": f"Unigram {len(tokenizer)} pieces trained on the same sentences",
        "label_strategy": "first",
        "baseline_seconds": base.all_seconds,
        "nertool_seconds": ours.all_seconds,
        "timed": "Dataset.map only (the Dataset is built before timing); nertool from Sentence records",
    }
    names = (
        "datasets.Dataset.map(tokenize_and_align_labels, batched=True) (transformers example)",
        "nertool.model.encode (align.word_pieces + align.build_features, labels)",
    )
    return make_record(SCENARIO, options, rows, quality, settings, names)
