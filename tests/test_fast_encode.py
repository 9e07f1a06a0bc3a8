"""The fast encoder (each distinct word tokenised once, short sentences assembled with numpy)
gives exactly the windows of the reference path: whole-sentence tokenisation and
``align.build_features`` one sentence at a time."""

from __future__ import annotations

import random
from typing import Any

import pytest

from nertool.data.readers import Sentence
from nertool.labels import LabelMap
from nertool.model.align import build_features, skipped_piece, word_pieces
from nertool.model.features import encode, encode_arrays, flatten
from nertool.model.pieces import WordPieceTable, probe

TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]
LABELS = LabelMap.from_tags(TAGS)
# words that stress the piece table: bare ▁ openers, digits, punctuation, accents, non-Latin
# scripts, a zero-width space and a control character (which may yield no piece at all)
ODD_WORDS = ["«", "1990", "-", "Zürich", "東京", "\u200b", "\x07", "É", "''", "a", "SNCF-Zug"]


def reference(
    sentences: list[Sentence], tokenizer: Any, max_length: int, labels: LabelMap | None, strategy: Any
) -> list[list[Any]]:
    pieces = word_pieces(tokenizer, [s.tokens for s in sentences])
    skip = skipped_piece(tokenizer, strategy)
    return [
        build_features(
            i,
            words,
            max_length,
            bos_id=tokenizer.bos_token_id,
            eos_id=tokenizer.eos_token_id,
            label_ids=None if labels is None else labels.encode(s.tags),
            strategy=strategy,
            inside_of=labels.inside_of if labels is not None else None,
            skip_piece=skip,
        )
        for i, (s, words) in enumerate(zip(sentences, pieces, strict=True))
    ]


def corpus(sample_texts: list[str], seed: int) -> list[Sentence]:
    """Sample sentences, some with odd words spliced in, some long enough to need windows, some empty."""
    rng = random.Random(seed)
    sentences = []
    for text in sample_texts[:300]:
        words = text.split()
        if rng.random() < 0.3:
            words.insert(rng.randrange(len(words) + 1), rng.choice(ODD_WORDS))
        if rng.random() < 0.05:
            words = words * 12
        if rng.random() < 0.02:
            words = []
        sentences.append(Sentence(tuple(words), tuple(rng.choice(TAGS[:2]) for _ in words)))
    return sentences


@pytest.mark.parametrize("strategy", ["first", "first_content", "all"])
@pytest.mark.parametrize("labelled", [True, False])
def test_fast_encode_equals_reference(
    tokenizer: Any, sample_texts: list[str], strategy: str, labelled: bool
) -> None:
    sentences = corpus(sample_texts, seed=len(strategy))
    labels = LABELS if labelled else None
    inputs = sentences if labelled else [s.tokens for s in sentences]
    fast = encode(inputs, tokenizer, max_length=32, labels=labels, strategy=strategy)  # type: ignore[arg-type]
    slow = reference(sentences, tokenizer, 32, labels, strategy)
    assert fast == slow
    assert any(len(windows) > 1 for windows in fast)  # long sentences took the windowed path
    arrays = encode_arrays(inputs, tokenizer, max_length=32, labels=labels, strategy=strategy)  # type: ignore[arg-type]
    assert list(arrays) == flatten(slow)


def test_chunks_do_not_change_the_result(
    tokenizer: Any, sample_texts: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sentences = corpus(sample_texts, seed=3)
    whole = encode(sentences, tokenizer, max_length=24, labels=LABELS)
    monkeypatch.setattr("nertool.model.features.CHUNK_SENTENCES", 7)
    assert encode(sentences, tokenizer, max_length=24, labels=LABELS) == whole


def test_probe_falls_back_when_pieces_depend_on_neighbours(tokenizer: Any, sample_texts: list[str]) -> None:
    """A tokenizer whose pieces change with context fails the probe, and the encoder still gives
    the reference windows (whole-sentence tokenisation)."""

    class Contextual:
        """Wraps the real tokenizer but merges a word with its neighbour in whole sentences."""

        is_fast = False
        bos_token_id, eos_token_id = tokenizer.bos_token_id, tokenizer.eos_token_id
        unk_token_id = tokenizer.unk_token_id

        def convert_tokens_to_ids(self, token: str) -> Any:
            return tokenizer.convert_tokens_to_ids(token)

        def __call__(self, batch: list[list[str]], **kwargs: Any) -> Any:
            encoded = tokenizer(batch, **kwargs)
            if all(len(words) > 1 for words in batch):  # a sentence, not the table's single words
                for ids in encoded["input_ids"]:
                    ids.reverse()
            return encoded

    contextual = Contextual()
    sentences = [Sentence(tuple(t.split()[:6]), ("O",) * len(t.split()[:6])) for t in sample_texts[:20]]
    assert not probe(WordPieceTable(contextual), contextual, [s.tokens for s in sentences])
    fast = encode(sentences, contextual, max_length=24, labels=LABELS, strategy="first")
    assert fast == reference(sentences, contextual, 24, LABELS, "first")


def test_a_truncating_call_left_on_the_tokenizer_loses_no_piece(
    tokenizer: Any, sample_texts: list[str]
) -> None:
    """transformers leaves ``truncation=True`` on the Rust backend after a call; the encoder must
    still see every piece of every word, and leave the user's setting as it found it."""
    sentences = corpus(sample_texts, seed=4)
    expected = encode(sentences, tokenizer, max_length=32, labels=LABELS)
    tokenizer(["ein kurzer Satz"], truncation=True, max_length=4, padding="max_length")
    before = (tokenizer.backend_tokenizer.truncation, tokenizer.backend_tokenizer.padding)
    assert before[0] is not None and before[1] is not None
    try:
        assert encode(sentences, tokenizer, max_length=32, labels=LABELS) == expected
        assert (tokenizer.backend_tokenizer.truncation, tokenizer.backend_tokenizer.padding) == before
    finally:
        tokenizer.backend_tokenizer.no_truncation()
        tokenizer.backend_tokenizer.no_padding()
