"""Preprocessing: nertool's alignment against the transformers example's ``tokenize_and_align_labels``.

Baseline: ``datasets.Dataset.map(tokenize_and_align_labels, batched=True)`` over a Dataset with
the hub's WikiANN columns (built outside the timing), one process on each side. nertool:
``model.features.encode_arrays`` with labels (first-subword strategy), what training encodes
with when its feature cache is cold: each distinct word tokenised once, short sentences
assembled with numpy, starting from the same sentences. The sides alternate ``repeats`` times;
medians with the spread. Quality: on every sentence that fits one window, both give the same
subword ids and the same label sequence.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bench.harness import (
    Options,
    Row,
    cycled,
    data_source,
    headline_spread,
    load_split,
    make_record,
    measure_alternating,
)

SCENARIO = "preprocessing"
MAX_LENGTH = 256
VOCAB = 8000


def sizes(options: Options) -> tuple[int, int]:
    """(sentences, repeats)."""
    return (2_000, 1) if options.quick else (20_000, 5)


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
    from nertool.model import train_tokenizer
    from nertool.model.features import encode_arrays

    n, repeats = sizes(options)
    source, source_name = data_source(options)
    sentences = cycled(load_split(source, "train"), n)
    label_map = LabelMap.from_tags(tag for s in sentences for tag in s.tags)
    tokenizer = train_tokenizer((" ".join(s.tokens) for s in sentences), VOCAB)
    dataset = raw_dataset(sentences, [label_map.encode(s.tags) for s in sentences])

    runs = measure_alternating(
        [
            ("baseline", lambda: tokenized_dataset(dataset, tokenizer, MAX_LENGTH)),
            ("nertool", lambda: encode_arrays(sentences, tokenizer, max_length=MAX_LENGTH, labels=label_map)),
        ],
        repeats,
    )
    base, ours = runs["baseline"], runs["nertool"]
    rates = base.rates(n), ours.rates(n)
    rows = [
        Row("throughput (median)", "sentences/s", n / base.median_seconds, n / ours.median_seconds),
        Row("wall time (median)", "s", base.median_seconds, ours.median_seconds, "lower"),
        Row("peak RSS growth (max)", "MiB", max(base.peak_growth_mb), max(ours.peak_growth_mb), "lower"),
    ]
    quality = agreement(base.results[-1], list(ours.results[-1]), n)
    settings = {
        "data": source_name,
        "split": "train",
        "sentences": n,
        "repeats": repeats,
        "max_length": MAX_LENGTH,
        "tokenizer": f"Unigram {len(tokenizer)} pieces trained on the same sentences",
        "label_strategy": "first",
        "baseline_seconds": list(base.seconds),
        "nertool_seconds": list(ours.seconds),
        "timed": "Dataset.map only (the Dataset is built before timing); nertool from Sentence records",
    }
    names = (
        "datasets.Dataset.map(tokenize_and_align_labels, batched=True) (transformers example)",
        "nertool.model.features.encode_arrays (per-word piece table + numpy assembly, labels)",
    )
    return make_record(
        SCENARIO,
        options,
        rows,
        quality,
        settings,
        names,
        baseline_config={
            "batched": True,
            "num_proc": 1,
            "tokenizer": "fast (Rust), is_split_into_words=True",
        },
        repeats=repeats,
        spread=headline_spread(rates[0], rates[1], "sentences/s"),
    )
