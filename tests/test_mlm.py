"""Masking statistics, whole-word masking, and packing invariants of ``nertool.pretrain.masking``."""

from __future__ import annotations

import random

import pytest
import torch

from nertool.errors import ConfigError, DataError
from nertool.pretrain.masking import IGNORE_INDEX, mask_tokens, mlm_stats
from nertool.pretrain.packing import PackedBlock, collate_blocks, pack_documents

BOS, PAD, EOS, UNK, MASK = 0, 1, 2, 3, 4  # XLM-R's special ids
N_SPECIAL = 5
VOCAB = 8000


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _random_batch(rows: int = 128, width: int = 512, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Ordinary ids with <s> at 0, </s> at each row's end and padding after it."""
    gen = _generator(seed)
    input_ids = torch.randint(N_SPECIAL, VOCAB, (rows, width), generator=gen)  # (rows, width)
    lengths = torch.randint(width // 2, width + 1, (rows,), generator=gen)  # (rows,)
    special = torch.zeros(rows, width, dtype=torch.bool)
    for row, length in enumerate(lengths.tolist()):
        input_ids[row, 0] = BOS
        input_ids[row, length - 1] = EOS
        input_ids[row, length:] = PAD
        special[row, 0] = True
        special[row, length - 1 :] = True
    return input_ids, special


def _mask(input_ids, special, seed=0, word_ids=None, probability=0.15):
    return mask_tokens(
        input_ids,
        special,
        mask_token_id=MASK,
        vocab_size=VOCAB,
        n_special=N_SPECIAL,
        mlm_probability=probability,
        generator=_generator(seed),
        word_ids=word_ids,
    )


def _random_docs(n_docs: int, seed: int, max_len: int = 40) -> tuple[list[list[int]], list[list[int]]]:
    """Documents of ordinary ids (some empty) with word ids grouping 1-3 subwords per word."""
    rng = random.Random(seed)
    docs, words = [], []
    for _ in range(n_docs):
        length = rng.choice([0, rng.randint(1, max_len), rng.randint(1, 3 * max_len)])
        docs.append([rng.randrange(N_SPECIAL, VOCAB) for _ in range(length)])
        word, left, ids = -1, 0, []
        for _ in range(length):
            if left == 0:
                word, left = word + 1, rng.randint(1, 3)
            ids.append(word)
            left -= 1
        words.append(ids)
    return docs, words


# --------------------------------------------------------------------------- masking statistics


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_token_masking_shares(seed):
    input_ids, special = _random_batch(seed=seed)
    inputs, labels = _mask(input_ids, special, seed=seed)
    stats = mlm_stats(input_ids, inputs, labels, special_mask=special, mask_token_id=MASK)
    assert stats["n_eligible"] > 15_000
    assert stats["share_chosen"] == pytest.approx(0.15, abs=0.01)
    assert stats["share_masked"] == pytest.approx(0.80, abs=0.02)
    assert stats["share_replaced"] == pytest.approx(0.10, abs=0.02)
    assert stats["share_kept"] == pytest.approx(0.10, abs=0.02)
    assert stats["n_chosen_special"] == 0
    assert stats["n_changed_unchosen"] == 0


def test_labels_hold_original_ids_at_chosen_positions_only():
    input_ids, special = _random_batch(rows=8, width=128)
    inputs, labels = _mask(input_ids, special)
    chosen = labels != IGNORE_INDEX
    assert chosen.any()
    assert torch.equal(labels[chosen], input_ids[chosen])
    assert torch.equal(inputs[~chosen], input_ids[~chosen])
    assert not (chosen & special).any()


def test_random_replacements_are_never_special_ids():
    input_ids, special = _random_batch()
    inputs, labels = _mask(input_ids, special, probability=1.0)
    chosen = labels != IGNORE_INDEX
    replaced = chosen & (inputs != MASK) & (inputs != input_ids)
    assert replaced.sum() > 1000
    assert int(inputs[replaced].min()) >= N_SPECIAL
    assert int(inputs[replaced].max()) < VOCAB


def test_probability_one_chooses_every_eligible_position_and_zero_none():
    input_ids, special = _random_batch(rows=4, width=64)
    _, all_labels = _mask(input_ids, special, probability=1.0)
    _, no_labels = _mask(input_ids, special, probability=0.0)
    assert torch.equal(all_labels != IGNORE_INDEX, ~special)
    assert (no_labels == IGNORE_INDEX).all()


def test_inputs_are_not_modified_in_place():
    input_ids, special = _random_batch(rows=8, width=128)
    word_ids = torch.where(special, -1, torch.arange(128).expand(8, 128) // 2)
    copies = (input_ids.clone(), special.clone(), word_ids.clone())
    inputs, _ = _mask(input_ids, special, word_ids=word_ids)
    assert torch.equal(input_ids, copies[0])
    assert torch.equal(special, copies[1])
    assert torch.equal(word_ids, copies[2])
    assert not torch.equal(inputs, input_ids)


def test_same_seed_same_result_other_seed_other_result():
    input_ids, special = _random_batch(rows=8, width=128)
    first = _mask(input_ids, special, seed=7)
    again = _mask(input_ids, special, seed=7)
    other = _mask(input_ids, special, seed=8)
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    assert not torch.equal(first[1], other[1])


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"mlm_probability": 1.5}, ConfigError),
        ({"n_special": VOCAB}, ConfigError),
        ({"mask_token_id": VOCAB}, ConfigError),
        ({"special_mask": torch.zeros(2, 5, dtype=torch.long)}, DataError),
        ({"word_ids": torch.zeros(2, 4, dtype=torch.long)}, DataError),
    ],
)
def test_bad_arguments_raise(kwargs, error):
    arguments = {
        "special_mask": torch.zeros(2, 5, dtype=torch.bool),
        "mask_token_id": MASK,
        "vocab_size": VOCAB,
        "n_special": N_SPECIAL,
        "generator": _generator(0),
    } | kwargs
    special_mask = arguments.pop("special_mask")
    with pytest.raises(error):
        mask_tokens(torch.full((2, 5), 9), special_mask, **arguments)


# --------------------------------------------------------------------------- whole-word masking


def _packed_batch(seed: int, rows: int = 128, block_size: int = 512):
    docs, words = _random_docs(2500, seed=seed)
    blocks = pack_documents(docs, block_size, BOS, EOS, doc_word_ids=words)[:rows]
    return collate_blocks(blocks, PAD)


@pytest.mark.parametrize("seed", [0, 1])
def test_whole_word_masking_keeps_words_whole_on_packed_blocks(seed):
    batch = _packed_batch(seed)
    special, word_ids = batch["special_tokens_mask"], batch["word_ids"]
    inputs, labels = _mask(batch["input_ids"], special, seed=seed, word_ids=word_ids)
    chosen = labels != IGNORE_INDEX
    for row in range(word_ids.shape[0]):
        groups: dict[int, set[bool]] = {}
        for word, is_chosen in zip(word_ids[row].tolist(), chosen[row].tolist(), strict=True):
            groups.setdefault(word, set()).add(is_chosen)
        assert groups.pop(-1) == {False}
        assert all(len(states) == 1 for states in groups.values())
    stats = mlm_stats(batch["input_ids"], inputs, labels, special_mask=special, mask_token_id=MASK)
    assert stats["share_chosen"] == pytest.approx(0.15, abs=0.01)
    assert stats["share_masked"] == pytest.approx(0.80, abs=0.02)
    assert stats["n_chosen_special"] == 0


def test_whole_word_draws_differ_between_rows_with_the_same_word_ids():
    rows, width = 64, 64
    input_ids = torch.randint(N_SPECIAL, VOCAB, (rows, width), generator=_generator(3))
    special = torch.zeros(rows, width, dtype=torch.bool)
    word_ids = (torch.arange(width) // 4).expand(rows, width)  # (rows, width): same words in every row
    _, labels = _mask(input_ids, special, word_ids=word_ids, probability=0.5)
    chosen = labels != IGNORE_INDEX
    assert len({tuple(row) for row in chosen.tolist()}) > rows // 2


# --------------------------------------------------------------------------- packing


def _doc_pieces(blocks: list[PackedBlock]) -> dict[int, list[int]]:
    """For every document, the indices of the blocks holding any of its tokens."""
    where: dict[int, list[int]] = {}
    for index, block in enumerate(blocks):
        for doc in sorted({doc for doc in block.doc_ids if doc >= 0}):
            where.setdefault(doc, []).append(index)
    return where


def _tokens_in_order(blocks: list[PackedBlock]) -> list[tuple[int, int]]:
    return [
        (doc, token)
        for block in blocks
        for doc, token in zip(block.doc_ids, block.input_ids, strict=True)
        if doc >= 0
    ]


@pytest.mark.parametrize(
    ("docs", "block_size", "expected"),
    [
        ([[10, 11], [12], [13, 14, 15]], 9, [[0, 10, 11, 2, 0, 12, 2], [0, 13, 14, 15, 2]]),
        ([[10, 11], [12]], 7, [[0, 10, 11, 2, 0, 12, 2]]),
        ([[10], [], [11]], 5, [[0, 10, 2], [0, 11, 2]]),
        ([[10], [], [11]], 6, [[0, 10, 2, 0, 11, 2]]),
        ([[10], [20, 21, 22, 23, 24], [11]], 5, [[0, 10, 2], [0, 20, 21, 22, 2], [0, 23, 24, 2], [0, 11, 2]]),
        ([[]], 5, []),
    ],
)
def test_pack_whole_documents_table(docs, block_size, expected):
    blocks = pack_documents(docs, block_size, BOS, EOS)
    assert [block.input_ids for block in blocks] == expected
    assert all(block.word_ids is None for block in blocks)


def test_pack_tracks_doc_ids_and_block_unique_word_ids():
    blocks = pack_documents([[10, 11, 12], [13, 14]], 16, BOS, EOS, doc_word_ids=[[0, 0, 1], [0, 1]])
    assert blocks == [
        PackedBlock(
            input_ids=[0, 10, 11, 12, 2, 0, 13, 14, 2],
            doc_ids=[-1, 0, 0, 0, -1, -1, 1, 1, -1],
            word_ids=[-1, 0, 0, 1, -1, -1, 2, 3, -1],
        )
    ]


def test_long_document_is_cut_at_word_boundaries_when_possible():
    doc = list(range(100, 110))
    words = [0, 0, 1, 1, 1, 2, 3, 3, 3, 3]
    blocks = pack_documents([doc], 6, BOS, EOS, doc_word_ids=[words])
    assert [block.input_ids[1:-1] for block in blocks] == [
        [100, 101],
        [102, 103, 104, 105],
        [106, 107, 108, 109],
    ]
    too_long_word = pack_documents([doc[:6]], 5, BOS, EOS, doc_word_ids=[[0] * 6])
    assert [len(block.input_ids) for block in too_long_word] == [5, 5]


@pytest.mark.parametrize(("seed", "block_size"), [(0, 32), (1, 64), (2, 128), (3, 7)])
def test_pack_invariants_without_crossing(seed, block_size):
    docs, words = _random_docs(300, seed=seed)
    blocks = pack_documents(docs, block_size, BOS, EOS, doc_word_ids=words)
    expected = [(doc, token) for doc, tokens in enumerate(docs) for token in tokens]
    assert _tokens_in_order(blocks) == expected
    assert all(0 < len(block.input_ids) <= block_size for block in blocks)
    for doc, where in _doc_pieces(blocks).items():
        if len(where) > 1:  # only an over-long document may be split: consecutive blocks of its own
            assert len(docs[doc]) > block_size - 2
            assert where == list(range(where[0], where[0] + len(where)))
            assert all(set(blocks[i].doc_ids) == {-1, doc} for i in where)
    for block in blocks:  # each document piece is wrapped in its own <s> ... </s>
        assert len(block.input_ids) == len(block.doc_ids) == len(block.word_ids or [])
        starts = [i for i, doc in enumerate(block.doc_ids) if doc >= 0 and block.doc_ids[i - 1] != doc]
        assert all(block.input_ids[i - 1] == BOS for i in starts)
        assert block.input_ids[-1] == EOS


@pytest.mark.parametrize("block_size", [16, 50, 512])
def test_pack_across_documents_yields_full_blocks(block_size):
    docs, words = _random_docs(300, seed=5)
    blocks = pack_documents(docs, block_size, BOS, EOS, cross_documents=True, doc_word_ids=words)
    wrapped = sum(len(doc) + 2 for doc in docs if doc)
    assert len(blocks) == wrapped // block_size
    assert all(len(block.input_ids) == block_size for block in blocks)
    kept = pack_documents(docs, block_size, BOS, EOS, cross_documents=True, keep_remainder=True)
    assert sum(len(block.input_ids) for block in kept) == wrapped
    expected = [(doc, token) for doc, tokens in enumerate(docs) for token in tokens]
    assert _tokens_in_order(kept) == expected


def test_word_ids_restart_in_each_block_when_crossing():
    blocks = pack_documents(
        [[10, 11, 12, 13]], 3, BOS, EOS, cross_documents=True, doc_word_ids=[[0, 0, 1, 2]]
    )
    assert [block.word_ids for block in blocks] == [[-1, 0, 0], [0, 1, -1]]


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"block_size": 2}, ConfigError),
        ({"doc_word_ids": [[0]]}, DataError),
        ({"doc_word_ids": [[0, 1], [0, 0, 0]]}, DataError),
        ({"doc_word_ids": [[0, -1], [0]]}, DataError),
    ],
)
def test_pack_bad_arguments_raise(kwargs, error):
    arguments = {"block_size": 8} | kwargs
    with pytest.raises(error):
        pack_documents([[10, 11], [12]], bos_id=BOS, eos_id=EOS, **arguments)


# --------------------------------------------------------------------------- collate


def test_collate_pads_to_the_longest_block():
    blocks = pack_documents(
        [[10, 11, 12], [13, 14, 15, 16, 17]], 7, BOS, EOS, doc_word_ids=[[0, 1, 1], [0] * 5]
    )
    batch = collate_blocks(blocks, PAD)
    assert set(batch) == {"input_ids", "attention_mask", "special_tokens_mask", "word_ids"}
    assert batch["input_ids"].tolist() == [[0, 10, 11, 12, 2, 1, 1], [0, 13, 14, 15, 16, 17, 2]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1, 1, 0, 0], [1] * 7]
    assert batch["special_tokens_mask"].tolist() == [
        [True, False, False, False, True, True, True],
        [True, False, False, False, False, False, True],
    ]
    assert batch["word_ids"].tolist() == [[-1, 0, 1, 1, -1, -1, -1], [-1, 0, 0, 0, 0, 0, -1]]
    assert batch["input_ids"].dtype == torch.long and batch["special_tokens_mask"].dtype == torch.bool


def test_collate_without_word_ids_and_errors():
    batch = collate_blocks(pack_documents([[10], [11, 12]], 4, BOS, EOS), PAD)
    assert "word_ids" not in batch
    assert batch["input_ids"].shape == (2, 4)
    with pytest.raises(DataError):
        collate_blocks([], PAD)
    mixed = [PackedBlock([0, 10, 2], [-1, 0, -1], [-1, 0, -1]), PackedBlock([0, 11, 2], [-1, 1, -1])]
    with pytest.raises(DataError):
        collate_blocks(mixed, PAD)
