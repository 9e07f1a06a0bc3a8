"""Flat feature arrays and their on-disk cache: same features as the lists, invalidated by every
input they depend on, a damaged entry rebuilt."""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from nertool.data.readers import Sentence
from nertool.labels import LabelMap
from nertool.model.align import build_features
from nertool.model.arrays import FeatureArrays, lengths_of
from nertool.model.cache import cache_root, cached_features, feature_key, read_entry
from nertool.model.features import encode, flatten
from nertool.workflows.train import encode_training

LABELS = LabelMap.from_tags(["B-LOC", "B-PER"])


def random_features(seed: int, sentences: int = 80) -> list[Any]:
    rng = random.Random(seed)
    features = []
    for sentence in range(sentences):
        pieces = [[rng.randrange(5, 90) for _ in range(rng.randint(0, 3))] for _ in range(rng.randint(0, 30))]
        labels = [rng.randrange(len(LABELS)) for _ in pieces]
        features += build_features(sentence, pieces, rng.randint(6, 24), bos_id=0, eos_id=2, label_ids=labels)
    return features


def test_arrays_hold_exactly_the_features() -> None:
    features = random_features(1)
    arrays = FeatureArrays.from_features(features)
    assert len(arrays) == len(features) > 80  # windows were cut
    assert list(arrays) == features
    assert [arrays[i] for i in (0, -1, 5)] == [features[0], features[-1], features[5]]
    assert lengths_of(arrays) == lengths_of(features) == [len(f) for f in features]
    assert arrays.input_ids.dtype == np.int32 and arrays.input_ids.flags["C_CONTIGUOUS"]
    with pytest.raises(IndexError):
        arrays[len(features)]


def test_unlabelled_features_have_no_label_array() -> None:
    features = [f for s in encode([["a", "b"], []], _Tokenizer(), max_length=16) for f in s]
    arrays = FeatureArrays.from_features(features)
    assert arrays.labels is None and list(arrays) == features


def test_take_shard_and_concatenate() -> None:
    features = random_features(2)
    arrays = FeatureArrays.from_features(features)
    chosen = [7, 0, 3, 3, len(features) - 1]
    assert list(arrays.take(chosen)) == [features[i] for i in chosen]
    assert list(arrays[2:9:3]) == features[2:9:3]
    shards = [arrays.shard(rank, 3) for rank in range(3)]
    assert sorted((f for s in shards for f in s), key=features.index) == features
    assert list(shards[1]) == features[1::3]
    halves = FeatureArrays.concatenate([arrays[:10], arrays[10:]])
    assert halves.same_as(arrays)
    with pytest.raises(ValueError, match="rank 3"):
        arrays.shard(3, 3)


class _Tokenizer:
    """Stand-in tokenizer: one piece per character (ids from code points), no fast backend."""

    bos_token_id, eos_token_id, unk_token_id, pad_token_id = 0, 2, 3, 1

    def __init__(self, shift: int = 0):
        self.shift = shift

    def __call__(self, batch: list[list[str]], is_split_into_words: bool, add_special_tokens: bool) -> Any:
        rows = [[(ord(c) % 50) + 5 + self.shift for w in words for c in w] for words in batch]
        words = [[i for i, w in enumerate(ws) for _ in w] for ws in batch]

        class Encoded(dict):  # type: ignore[type-arg]
            def word_ids(self, i: int) -> list[int]:
                return words[i]

        return Encoded(input_ids=rows)

    def get_vocab(self) -> dict[str, int]:
        return {"shift": self.shift}

    def convert_tokens_to_ids(self, token: str) -> int:
        return self.unk_token_id


SENTENCES = [
    Sentence(("Angela", "Merkel", "in", "Paris"), ("B-PER", "I-PER", "O", "B-LOC")),
    Sentence(("nichts",), ("O",)),
]


def key(**changes: Any) -> str:
    arguments: dict[str, Any] = {
        "tokenizer": _Tokenizer(),
        "sentences": SENTENCES,
        "max_length": 64,
        "label_names": LABELS.names,
        "strategy": "first",
    }
    arguments.update(changes)
    return feature_key(arguments.pop("tokenizer"), arguments.pop("sentences"), **arguments)


def test_key_changes_with_tokenizer_data_and_alignment_settings() -> None:
    base = key()
    assert key() == base  # deterministic
    other_tag = [SENTENCES[0], Sentence(("nichts",), ("B-LOC",))]
    other_word = [SENTENCES[0], Sentence(("nichts!",), ("O",))]
    changed = {
        "tokenizer": key(tokenizer=_Tokenizer(shift=1)),
        "tags": key(sentences=other_tag),
        "words": key(sentences=other_word),
        "order": key(sentences=SENTENCES[::-1]),
        "subset": key(sentences=SENTENCES[:1]),
        "max_length": key(max_length=32),
        "labels": key(label_names=[*LABELS.names, "B-ORG", "I-ORG"]),
        "strategy": key(strategy="first_content"),
    }
    assert base not in changed.values() and len(set(changed.values())) == len(changed), changed


def test_key_follows_the_real_tokenizer(tokenizer: Any, sample_texts: list[str]) -> None:
    from nertool.model.build import train_tokenizer

    other = train_tokenizer(sample_texts[:50], vocab_size=300)
    assert key(tokenizer=tokenizer) == key(tokenizer=tokenizer)
    assert key(tokenizer=tokenizer) != key(tokenizer=other)


def sample_sentences() -> list[Sentence]:
    from nertool.data.readers import read_sentences
    from nertool.workflows.training_data import SAMPLE_DIR

    return list(read_sentences(SAMPLE_DIR / "de" / "train.tsv"))


def test_cached_features_equal_fresh_ones_and_are_memory_mapped(tokenizer: Any, tmp_path: Path) -> None:
    sentences = sample_sentences()
    labels = LabelMap.from_tags(t for s in sentences for t in s.tags)
    fresh = flatten(encode(sentences, tokenizer, max_length=32, labels=labels))
    first = encode_training(
        tokenizer, sentences, labels, max_length=32, strategy="first", cache_dir=str(tmp_path)
    )
    [entry] = [p for p in tmp_path.iterdir() if not p.name.startswith(".")]
    again = encode_training(
        tokenizer, sentences, labels, max_length=32, strategy="first", cache_dir=str(tmp_path)
    )
    assert isinstance(again.input_ids, np.memmap)
    assert list(first) == list(again) == fresh
    off = encode_training(tokenizer, sentences, labels, max_length=32, strategy="first", cache_dir="off")
    assert off.same_as(again)
    # another alignment setting is another entry, never the first one read back
    encode_training(tokenizer, sentences, labels, max_length=16, strategy="first", cache_dir=str(tmp_path))
    assert len([p for p in tmp_path.iterdir() if not p.name.startswith(".")]) == 2
    assert entry.is_dir()


@pytest.mark.parametrize("damage", ["truncate", "flip", "meta", "missing"])
def test_a_damaged_entry_is_rebuilt(tmp_path: Path, damage: str) -> None:
    features = FeatureArrays.from_features(random_features(3))
    calls = []

    def build() -> FeatureArrays:
        calls.append(1)
        return features

    cached_features(tmp_path, "k", build)
    folder = tmp_path / "k"
    target = folder / "input_ids.npy"
    if damage == "truncate":
        target.write_bytes(target.read_bytes()[:-9])
    elif damage == "flip":
        data = bytearray(target.read_bytes())
        data[-3] ^= 0xFF
        target.write_bytes(bytes(data))
    elif damage == "meta":
        (folder / "meta.json").write_text("{not json")
    else:
        (folder / "offsets.npy").unlink()
    assert read_entry(folder) is None
    rebuilt = cached_features(tmp_path, "k", build)
    assert len(calls) == 2 and rebuilt.same_as(features)
    assert read_entry(folder) is not None  # the rebuilt entry replaced the damaged one


def test_an_unwritable_cache_still_gives_features(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    features = FeatureArrays.from_features(random_features(4))
    assert cached_features(blocker, "k", lambda: features) is features


def test_cache_root_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NERTOOL_CACHE", str(tmp_path))
    assert cache_root("auto") == tmp_path / "features"
    assert cache_root("off") is None
    assert cache_root(str(tmp_path / "x")) == tmp_path / "x"
    monkeypatch.delenv("NERTOOL_CACHE")
    assert cache_root("auto") == Path.home() / ".cache" / "nertool" / "features"


def test_a_training_run_caches_its_features_under_nertool_cache(tiny_run: Path, tiny_run_recipe: Any) -> None:
    """``data.cache_dir = "auto"``: the run's features are in $NERTOOL_CACHE (the session's folder)."""
    from nertool.model.build import load_trained
    from nertool.model.inference import model_max_length
    from nertool.workflows.training_data import load_training_data

    model, tokenizer, labels = load_trained(tiny_run / "model")
    sentences = load_training_data(tiny_run_recipe).train["de"]
    max_length = min(tiny_run_recipe.model.max_length, model_max_length(model, tokenizer))
    root = cache_root("auto")
    assert root is not None and root.is_relative_to(Path(os.environ["NERTOOL_CACHE"]))
    names = labels.names
    name = feature_key(tokenizer, sentences, max_length=max_length, label_names=names, strategy="first")
    entry = read_entry(root / name)
    assert entry is not None
    assert list(entry) == flatten(encode(sentences, tokenizer, max_length=max_length, labels=labels))


def test_compact_narrows_word_ids_and_labels_only_where_they_fit() -> None:
    features = random_features(5)
    arrays = FeatureArrays.from_features(features)
    small = arrays.compact()
    assert small.word_ids.dtype == np.int16 and small.labels is not None and small.labels.dtype == np.int16
    assert small.input_ids.dtype == np.int32  # token ids need 32 bits
    assert list(small) == features and small.nbytes() < arrays.nbytes()
    # a sentence with more words than int16 holds keeps its word ids wide
    wide = FeatureArrays.from_features(build_features(0, [[7]] * 40_000, 50_000, bos_id=0, eos_id=2))
    assert wide.compact().word_ids.dtype == np.int32 and list(wide.compact()) == list(wide)
