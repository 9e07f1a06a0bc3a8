"""Training memory: what a million training sentences cost once they are model inputs.

The baseline is how training features were held before flat arrays, and how the transformers
example holds them in Python after ``Dataset.map`` hands rows to a loader: one ``Feature`` per
window, each a tuple of Python int tuples (``model.features.encode``). nertool holds the same
windows as contiguous int32 arrays plus offsets (``model.arrays.FeatureArrays``, what the loop
trains from; the disk cache memory-maps exactly these arrays). Both are built from the same
synthetic corpus (a million sentences with the lengths and tags of WikiANN German training
sentences, words drawn by their frequency there, so no real file needs a million lines), and
each side's *retained* RSS growth is measured after a collection (what stays for the whole
run), scaled to GB per million sentences. Quality: both hold exactly the same windows (compared on a sample).
"""

from __future__ import annotations

import random
from typing import Any

from bench.harness import Options, Row, data_source, load_split, make_record, release_memory, rss_mb

SCENARIO = "training memory"
MAX_LENGTH = 128
VOCAB = 8000
CHECKED = 2000  # windows compared between the two sides


def sentences_for(options: Options) -> int:
    return 20_000 if options.quick else 1_000_000


def synthetic_corpus(real: list[Any], n: int, seed: int = 0) -> list[Any]:
    """``n`` sentences with the real sentences' lengths and tags, words drawn by their frequency in
    the real text (so a word's pieces, and a sentence's tokens, are distributed as in the corpus)."""
    from nertool.data.readers import Sentence

    rng = random.Random(seed)
    words = [w for s in real for w in s.tokens]
    shapes = [s.tags for s in real]
    corpus = []
    for _ in range(n):
        tags = rng.choice(shapes)
        corpus.append(Sentence(tuple(rng.choice(words) for _ in tags), tags))
    return corpus


def retained_mb(build: Any) -> tuple[Any, float]:
    """What ``build()`` returns and the RSS it still holds after a collection."""
    release_memory()
    before = rss_mb()
    result = build()
    release_memory()
    return result, rss_mb() - before


def run(options: Options) -> dict[str, Any]:
    from nertool.labels import LabelMap
    from nertool.model import train_tokenizer
    from nertool.model.features import encode, encode_arrays

    source, source_name = data_source(options)
    real = load_split(source, "train")
    n = sentences_for(options)
    corpus = synthetic_corpus(real, n)
    label_map = LabelMap.from_tags(tag for s in real for tag in s.tags)
    tokenizer = train_tokenizer((" ".join(s.tokens) for s in real), VOCAB)

    arrays, ours_mb = retained_mb(
        lambda: encode_arrays(corpus, tokenizer, max_length=MAX_LENGTH, labels=label_map)
    )
    sample = [arrays[i] for i in range(min(CHECKED, len(arrays)))]
    array_bytes = arrays.nbytes()
    windows = len(arrays)
    del arrays
    grouped, base_mb = retained_mb(lambda: encode(corpus, tokenizer, max_length=MAX_LENGTH, labels=label_map))
    flat = [f for windows_of in grouped for f in windows_of]
    same = flat[: len(sample)] == sample and len(flat) == windows
    del grouped, flat

    millions = n / 1e6
    rows = [
        Row(
            "retained memory per million sentences",
            "GB",
            base_mb / 1024 / millions,
            ours_mb / 1024 / millions,
            "lower",
        ),
    ]
    record = make_record(
        SCENARIO,
        options,
        rows,
        {
            "same_windows": same,
            "windows": windows,
            "compared": len(sample),
            "array_gb_per_million_sentences": round(array_bytes / 1e9 / millions, 4),
        },
        {
            "data": f"synthetic from {source_name} de train (lengths, tags, vocabulary)",
            "sentences": n,
            "max_length": MAX_LENGTH,
            "tokenizer": f"Unigram {len(tokenizer)} pieces",
            "measured": "RSS after the build and a gc + malloc_trim, minus RSS before",
        },
        (
            "Feature tuples per window (model.features.encode: Python int tuples)",
            "FeatureArrays (contiguous int32 arrays + offsets)",
        ),
        baseline_config={"representation": "list of Feature records of Python tuples", "labels": True},
        repeats=1,
    )
    record["gb_per_million_sentences"] = round(ours_mb / 1024 / millions, 4)
    return record
