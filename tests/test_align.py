"""Words ↔ subwords: labels forward, values back, long-sentence windows, and the real tokenizer."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import pytest

from nertool.labels import LabelMap
from nertool.model.align import (
    IGNORE_INDEX,
    SPECIAL,
    Feature,
    Window,
    bare_piece_id,
    build_features,
    first_piece_positions,
    group_by_word,
    merge_word_values,
    plan_windows,
    subword_labels,
    word_pieces,
)

BOS, EOS = 0, 2
BARE = 5  # a bare "▁" piece, as XLM-R emits before some words
LABELS = LabelMap.from_tags(["B-LOC", "B-PER"])  # OUT B-LOC I-LOC B-PER I-PER
OUT, B_LOC, I_LOC, B_PER, I_PER = range(5)
X = IGNORE_INDEX

# ---------------------------------------------------------------- forward: one window

# (pieces per word, label per word, strategy, input_ids, word_ids, subword labels)
FORWARD_CASES = [
    ([[10]], [B_PER], "first", [BOS, 10, EOS], [SPECIAL, 0, SPECIAL], [X, B_PER, X]),
    ([[BARE]], [B_LOC], "first", [BOS, BARE, EOS], [SPECIAL, 0, SPECIAL], [X, B_LOC, X]),  # bare ▁ alone
    (
        [[BARE, 11], [12]],
        [B_PER, I_PER],
        "first",
        [BOS, BARE, 11, 12, EOS],
        [-1, 0, 0, 1, -1],
        [X, B_PER, X, I_PER, X],
    ),
    (
        [[BARE, 11], [12]],
        [B_PER, I_PER],
        "all",
        [BOS, BARE, 11, 12, EOS],
        [-1, 0, 0, 1, -1],
        [X, B_PER, I_PER, I_PER, X],
    ),
    (
        [[10], [], [11]],
        [OUT, B_LOC, OUT],
        "first",
        [BOS, 10, 11, EOS],
        [-1, 0, 2, -1],
        [X, OUT, OUT, X],
    ),  # zero-piece word
    ([[], [], []], [OUT, B_PER, I_PER], "first", [BOS, EOS], [-1, -1], [X, X]),
    ([], [], "first", [BOS, EOS], [-1, -1], [X, X]),
    (
        [[10], [BARE], [11, 12], [], [BARE, 13]],
        [B_PER, I_PER, OUT, B_LOC, B_LOC],
        "first",
        [BOS, 10, BARE, 11, 12, BARE, 13, EOS],
        [-1, 0, 1, 2, 2, 4, 4, -1],
        [X, B_PER, I_PER, OUT, X, B_LOC, X, X],
    ),
    (
        [[10], [BARE], [11, 12], [], [BARE, 13]],
        [B_PER, I_PER, OUT, B_LOC, B_LOC],
        "all",
        [BOS, 10, BARE, 11, 12, BARE, 13, EOS],
        [-1, 0, 1, 2, 2, 4, 4, -1],
        [X, B_PER, I_PER, OUT, OUT, B_LOC, I_LOC, X],
    ),
]


@pytest.mark.parametrize(("pieces", "labels", "strategy", "ids", "words", "expected"), FORWARD_CASES)
def test_build_features_one_window(
    pieces: list[list[int]],
    labels: list[int],
    strategy: Any,
    ids: list[int],
    words: list[int],
    expected: list[int],
) -> None:
    [feature] = build_features(
        7, pieces, 64, bos_id=BOS, eos_id=EOS, label_ids=labels, strategy=strategy, inside_of=LABELS.inside_of
    )
    assert feature.sentence == 7
    assert list(feature.input_ids) == ids
    assert list(feature.word_ids) == words
    assert feature.labels is not None and list(feature.labels) == expected
    assert (feature.core_start, feature.core_end) == (0, len(pieces))
    assert len(feature) == len(ids)


def test_build_features_without_labels() -> None:
    [feature] = build_features(0, [[10], [11, 12]], 64, bos_id=BOS, eos_id=EOS)
    assert feature.labels is None
    assert feature.input_ids == (BOS, 10, 11, 12, EOS)


def test_all_strategy_without_inside_of_falls_back_to_first() -> None:
    [feature] = build_features(
        0, [[10, 11]], 64, bos_id=BOS, eos_id=EOS, label_ids=[B_PER], strategy="all", inside_of=None
    )
    assert feature.labels == (X, B_PER, X, X)


def test_subword_labels_ignore_context_words() -> None:
    window = Window(0, 4, 1, 3)
    word_ids = [SPECIAL, 0, 1, 1, 2, 3, 3, SPECIAL]
    labels = [B_PER, B_LOC, I_LOC, OUT]
    first = subword_labels(word_ids, labels, window, strategy="first")
    every = subword_labels(word_ids, labels, window, strategy="all", inside_of=LABELS.inside_of)
    assert first == [X, X, B_LOC, X, I_LOC, X, X, X]
    assert every == [X, X, B_LOC, I_LOC, I_LOC, X, X, X]


# ---------------------------------------------------------------- group_by_word, first pieces, merge


@pytest.mark.parametrize(
    ("ids", "word_ids", "n_words", "expected"),
    [
        ([], [], 0, []),
        ([], [], 2, [[], []]),
        ([10, 11, 12], [0, 0, 1], 2, [[10, 11], [12]]),
        ([BARE, 10, 11], [0, 2, 2], 3, [[BARE], [], [10, 11]]),
        ([0, 10, 2], [None, 0, None], 1, [[10]]),  # specials carry no word
    ],
)
def test_group_by_word(
    ids: list[int], word_ids: list[int | None], n_words: int, expected: list[list[int]]
) -> None:
    assert group_by_word(ids, word_ids, n_words) == expected


def test_group_by_word_rejects_mismatched_lengths() -> None:
    with pytest.raises(ValueError):
        group_by_word([10, 11], [0], 1)


def test_first_piece_positions_only_in_core() -> None:
    feature = Feature(0, (BOS, 10, 11, 12, 13, 14, EOS), (SPECIAL, 0, 1, 1, 2, 3, SPECIAL), 1, 3)
    assert first_piece_positions(feature) == {1: 2, 2: 4}


def test_merge_word_values_reads_first_piece_and_gives_none_for_pieceless_words() -> None:
    [feature] = build_features(0, [[10, 11], [], [12]], 64, bos_id=BOS, eos_id=EOS)
    merged = merge_word_values(3, [feature], [["bos", "a1", "a2", "c1", "eos"]])
    assert merged == ["a1", None, "c1"]


def test_merge_word_values_needs_one_value_row_per_feature() -> None:
    features = build_features(0, [[10]], 64, bos_id=BOS, eos_id=EOS)
    with pytest.raises(ValueError):
        merge_word_values(1, features, [])


# ---------------------------------------------------------------- windows

WINDOW_CASES = [
    ([1, 1, 1], 3, [Window(0, 3, 0, 3)]),
    ([], 5, [Window(0, 0, 0, 0)]),
    ([0, 0, 0], 1, [Window(0, 3, 0, 3)]),
    ([2, 2, 2, 2], 4, [Window(0, 2, 0, 1), Window(1, 3, 1, 2), Window(2, 4, 2, 3), Window(2, 4, 3, 4)]),
    ([1, 6, 1], 6, [Window(0, 1, 0, 1), Window(1, 2, 1, 2), Window(2, 3, 2, 3)]),  # a word filling the budget
]


@pytest.mark.parametrize(("lengths", "budget", "expected"), WINDOW_CASES)
def test_plan_windows_table(lengths: list[int], budget: int, expected: list[Window]) -> None:
    assert plan_windows(lengths, budget) == expected


def assert_valid_windows(lengths: Sequence[int], budget: int, windows: Sequence[Window]) -> None:
    """Cores are disjoint, in order, and cover every word once; every window fits the budget."""
    covered = [word for w in windows for word in range(w.core_start, w.core_end)]
    assert covered == list(range(len(lengths)))
    for window in windows:
        assert window.start <= window.core_start <= window.core_end <= window.end
        assert window.core_end > window.core_start or not lengths
        assert sum(lengths[window.start : window.end]) <= budget


def random_pieces(rng: random.Random, n_words: int, max_pieces: int = 4) -> list[list[int]]:
    """Random piece lists; about one word in eight has none and some start with a bare ▁."""
    pieces = []
    for _ in range(n_words):
        count = 0 if rng.random() < 0.125 else rng.randint(1, max_pieces)
        word = [rng.randint(6, 999) for _ in range(count)]
        if word and rng.random() < 0.2:
            word[0] = BARE
        pieces.append(word)
    return pieces


def test_plan_windows_random_sentences() -> None:
    rng = random.Random(11)
    for _ in range(400):
        budget = rng.randint(1, 40)
        lengths = [min(rng.choice([0, 1, 1, 2, 3, 5, 9]), budget) for _ in range(rng.randint(0, 80))]
        assert_valid_windows(lengths, budget, plan_windows(lengths, budget))


def test_plan_windows_gives_context_on_both_sides() -> None:
    windows = plan_windows([1] * 100, 10)
    middle = [w for w in windows if w.core_start >= 10 and w.core_end <= 90]
    assert middle
    assert all(w.start < w.core_start and w.core_end < w.end for w in middle)


def test_single_over_long_word_is_capped_and_still_labelled() -> None:
    [feature] = build_features(0, [list(range(100, 120))], 8, bos_id=BOS, eos_id=EOS, label_ids=[B_PER])
    assert feature.input_ids == (BOS, 100, 101, 102, 103, 104, 105, EOS)
    assert feature.labels == (X, B_PER, X, X, X, X, X, X)
    assert merge_word_values(1, [feature], [feature.labels]) == [B_PER]


def test_over_long_word_inside_a_sentence_gets_its_own_window() -> None:
    features = build_features(
        0, [[10], list(range(100, 120)), [11]], 8, bos_id=BOS, eos_id=EOS, label_ids=[OUT, B_PER, OUT]
    )
    assert [(f.core_start, f.core_end) for f in features] == [(0, 1), (1, 2), (2, 3)]
    assert all(len(f) <= 8 for f in features)
    assert features[1].input_ids == (BOS, 100, 101, 102, 103, 104, 105, EOS)


def pretend_predictions(features: Sequence[Feature]) -> list[list[int]]:
    """A perfect model: the gold label where there is one, junk (-1) elsewhere."""
    return [[-1 if label == IGNORE_INDEX else label for label in f.labels or ()] for f in features]


# ---------------------------------------------------------------- first_content: skip a bare ▁

# (pieces per word, label per word, subword labels under first_content)
FIRST_CONTENT_CASES = [
    ([[BARE, 11], [12]], [B_PER, I_PER], [X, X, B_PER, I_PER, X]),  # ▁ + content: the content piece
    ([[BARE]], [B_LOC], [X, B_LOC, X]),  # only a bare ▁: its first piece
    ([[BARE, BARE, 13]], [B_LOC], [X, X, X, B_LOC, X]),
    ([[11, BARE, 13]], [B_LOC], [X, B_LOC, X, X, X]),  # a ▁ after content changes nothing
    ([[10], [], [BARE, 13]], [OUT, B_PER, B_LOC], [X, OUT, X, B_LOC, X]),
]


@pytest.mark.parametrize(("pieces", "labels", "expected"), FIRST_CONTENT_CASES)
def test_first_content_labels_the_first_piece_that_is_not_bare(
    pieces: list[list[int]], labels: list[int], expected: list[int]
) -> None:
    [feature] = build_features(
        0, pieces, 64, bos_id=BOS, eos_id=EOS, label_ids=labels, strategy="first_content", skip_piece=BARE
    )
    assert list(feature.labels or ()) == expected
    assert feature.skip_piece == BARE
    # prediction reads the very positions that were labelled
    positions = first_piece_positions(feature)
    assert sorted(positions.values()) == [i for i, label in enumerate(expected) if label != X]


def test_first_content_without_a_bare_piece_is_first() -> None:
    pieces, labels = [[BARE, 11], [12]], [B_PER, I_PER]
    [first] = build_features(0, pieces, 64, bos_id=BOS, eos_id=EOS, label_ids=labels)
    [content] = build_features(
        0, pieces, 64, bos_id=BOS, eos_id=EOS, label_ids=labels, strategy="first_content", skip_piece=None
    )
    assert content.labels == first.labels


@pytest.mark.parametrize("strategy", ["first", "all", "first_content"])
def test_labels_round_trip_through_features(strategy: Any) -> None:
    """word labels → features → a model that predicts them exactly → word labels is the identity."""
    rng = random.Random(2024)
    windowed = 0
    for sentence in range(300):
        max_length = rng.randint(3, 40)
        pieces = random_pieces(rng, rng.randint(0, 60))
        labels = [rng.randrange(len(LABELS)) for _ in pieces]
        features = build_features(
            sentence,
            pieces,
            max_length,
            bos_id=BOS,
            eos_id=EOS,
            label_ids=labels,
            strategy=strategy,
            inside_of=LABELS.inside_of,
            skip_piece=BARE if strategy == "first_content" else None,
        )
        windowed += len(features) > 1
        cores = [word for f in features for word in range(f.core_start, f.core_end)]
        assert cores == list(range(len(pieces)))
        for f in features:
            assert len(f) <= max_length
            assert f.input_ids[0] == BOS and f.input_ids[-1] == EOS and f.sentence == sentence
            assert len(f.word_ids) == len(f.input_ids) == len(f.labels or ())
        merged = merge_word_values(len(pieces), features, pretend_predictions(features))
        assert merged == [label if word else None for word, label in zip(pieces, labels, strict=True)]
    assert windowed > 100  # the windows were really exercised


def test_window_features_hold_whole_words_in_order() -> None:
    rng = random.Random(7)
    pieces = random_pieces(rng, 200)
    for feature in build_features(0, pieces, 16, bos_id=BOS, eos_id=EOS):
        words = [w for w in feature.word_ids if w != SPECIAL]
        assert words == sorted(words)
        expected = [piece for word in sorted(set(words)) for piece in pieces[word]]
        assert list(feature.input_ids[1:-1]) == expected


# ---------------------------------------------------------------- the real (trained) tokenizer

ODD_WORDS = ["Berlin", "\u200b", "ist", "\x07", "schön", "Soft\u00adware", "🙂", "Zzqx", "."]


def test_word_pieces_match_the_tokenizer_word_ids(tokenizer: Any) -> None:
    [pieces] = word_pieces(tokenizer, [ODD_WORDS])
    encoded = tokenizer(ODD_WORDS, is_split_into_words=True, add_special_tokens=False)
    assert len(pieces) == len(ODD_WORDS)
    assert [p for word in pieces for p in word] == encoded["input_ids"]
    assert [w for w, word in enumerate(pieces) for _ in word] == encoded.word_ids()


def test_zero_width_space_and_control_char_keep_their_place(tokenizer: Any) -> None:
    [pieces] = word_pieces(tokenizer, [ODD_WORDS])
    by_word = dict(zip(ODD_WORDS, pieces, strict=True))
    assert by_word["\u200b"], "a zero-width space keeps a (bare ▁) piece"
    assert tokenizer.convert_ids_to_tokens(by_word["\u200b"])[0] == "▁"
    # A control character either vanishes (no piece: the caller tags it O on purpose) or starts
    # with a bare ▁ piece, depending on the tokenizer's normaliser; it never merges with a neighbour.
    control = by_word["\x07"]
    assert control == [] or tokenizer.convert_ids_to_tokens(control)[0] == "▁"


def test_word_pieces_chunking_does_not_change_the_result(tokenizer: Any, sample_texts: list[str]) -> None:
    sentences = [text.split() for text in sample_texts[:25]] + [[], ODD_WORDS]
    assert word_pieces(tokenizer, sentences, chunk=4) == word_pieces(tokenizer, sentences)
    assert [len(p) for p in word_pieces(tokenizer, sentences)] == [len(s) for s in sentences]


def test_features_equal_the_tokenizer_with_specials(tokenizer: Any, sample_texts: list[str]) -> None:
    sentences = [text.split() for text in sample_texts[:40]]
    all_pieces = word_pieces(tokenizer, sentences)
    for index, (words, pieces) in enumerate(zip(sentences, all_pieces, strict=True)):
        [feature] = build_features(
            index, pieces, 512, bos_id=tokenizer.bos_token_id, eos_id=tokenizer.eos_token_id
        )
        encoded = tokenizer(words, is_split_into_words=True)
        assert list(feature.input_ids) == encoded["input_ids"]
        assert [None if w == SPECIAL else w for w in feature.word_ids] == encoded.word_ids()


def test_real_tokenizer_round_trip_with_windows(tokenizer: Any, sample_texts: list[str]) -> None:
    words = [*" ".join(sample_texts[:30]).split(), "\x07", "\u200b"]
    [pieces] = word_pieces(tokenizer, [words])
    labels = [i % len(LABELS) for i in range(len(words))]
    features = build_features(
        0, pieces, 24, bos_id=tokenizer.bos_token_id, eos_id=tokenizer.eos_token_id, label_ids=labels
    )
    assert len(features) > 5
    merged = merge_word_values(len(words), features, pretend_predictions(features))
    assert merged == [label if p else None for p, label in zip(pieces, labels, strict=True)]


def test_first_content_on_a_tokenizer_that_emits_bare_pieces(tokenizer: Any, sample_texts: list[str]) -> None:
    """The sample-trained tokenizer opens some words with a bare ▁: those words move their label."""
    from nertool.model.features import encode

    bare = bare_piece_id(tokenizer)
    assert bare is not None and tokenizer.convert_ids_to_tokens(bare) == "▁"
    sentences = [[*text.split(), "\u200b"] for text in sample_texts[:60]]
    grouped = encode(sentences, tokenizer, max_length=512, strategy="first_content")
    moved = 0
    for words, [feature], pieces in zip(sentences, grouped, word_pieces(tokenizer, sentences), strict=True):
        positions = first_piece_positions(feature)
        assert sorted(positions) == [w for w, p in enumerate(pieces) if p]  # every word with a piece
        for word, word_pieces_ in enumerate(pieces):
            if not word_pieces_:
                continue
            chosen = feature.input_ids[positions[word]]
            content = [p for p in word_pieces_ if p != bare]
            assert chosen == (content[0] if content else word_pieces_[0]), words[word]
            moved += word_pieces_[0] == bare and bool(content)
    assert moved > 0, "the sample should hold words that open with a bare ▁ piece"
