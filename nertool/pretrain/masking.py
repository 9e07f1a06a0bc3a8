"""Masked-language-model building blocks for ``nertool pretrain``: token masking and sequence packing.

Everything here is pure and model-independent (ints and tensors in, ints and tensors out), so the
objective can be checked statistically in fast tests and the training loop stays a short sequence
of calls: ``pack_documents`` → ``collate_blocks`` → ``mask_tokens`` → model → loss.

Masking follows BERT/RoBERTa: a share ``mlm_probability`` of the eligible subwords is chosen; of
those, 80% become ``<mask>``, 10% a random ordinary token, 10% stay as they are, so the model
cannot learn that only ``<mask>`` positions matter. With word ids, whole words are chosen together
(the 80/10/10 split is still drawn per subword, as in BERT's whole-word-masking release), because a
model that sees ``Bund▁esre<mask>`` learns to finish words rather than to use context.
"""

from __future__ import annotations

import torch

from nertool.errors import ConfigError, DataError
from nertool.labels import IGNORE_INDEX

MASK_SHARE = 0.8  # of the chosen subwords: replaced by <mask>
RANDOM_SHARE = 0.1  # of the chosen subwords: replaced by a random ordinary token; the rest are kept
_SPECIALS_PER_DOCUMENT = 2  # <s> ... </s>

WordKey = tuple[int, int] | None  # (document index, word index inside it); None for specials


# ---------------------------------------------------------------------------------------------
# Masking
# ---------------------------------------------------------------------------------------------


def mask_tokens(
    input_ids: torch.Tensor,
    special_mask: torch.Tensor,
    *,
    mask_token_id: int,
    vocab_size: int,
    n_special: int,
    mlm_probability: float = 0.15,
    generator: torch.Generator,
    word_ids: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Corrupt a batch for the MLM objective; return ``(inputs, labels)`` as new tensors.

    ``input_ids`` (batch, seq) long; ``special_mask`` (batch, seq) bool, True where a position must
    never be chosen (``<s>``, ``</s>``, padding). ``word_ids`` (batch, seq) long, -1 at specials,
    switches on whole-word masking: ids only need to be unique within a row (as
    ``collate_blocks`` gives them). Random replacements are drawn from ``[n_special, vocab_size)``
    so the model is never fed a stray ``<pad>`` or ``</s>``. All randomness comes from
    ``generator`` (which must live on the tensors' device), so a seed fixes the result; the inputs
    are never modified.
    """
    _check_mask_args(input_ids, special_mask, word_ids, mlm_probability)
    _check_vocab_args(mask_token_id, vocab_size, n_special)
    chosen = _choose_positions(special_mask, mlm_probability, generator, word_ids)  # (batch, seq) bool
    labels = input_ids.masked_fill(~chosen, IGNORE_INDEX)  # (batch, seq)
    inputs = _corrupt_chosen(input_ids, chosen, mask_token_id, vocab_size, n_special, generator)
    return inputs, labels


def _check_mask_args(
    input_ids: torch.Tensor, special_mask: torch.Tensor, word_ids: torch.Tensor | None, probability: float
) -> None:
    """Reject shapes and dtypes that would otherwise broadcast silently into wrong masks."""
    if input_ids.dim() != 2:
        raise DataError(f"input_ids must be (batch, seq); got shape {tuple(input_ids.shape)}")
    if special_mask.shape != input_ids.shape or special_mask.dtype != torch.bool:
        raise DataError(
            f"special_mask must be a bool tensor of shape {tuple(input_ids.shape)}; "
            f"got {special_mask.dtype} {tuple(special_mask.shape)}"
        )
    if word_ids is not None and word_ids.shape != input_ids.shape:
        raise DataError(
            f"word_ids must have the shape of input_ids {tuple(input_ids.shape)}; got {tuple(word_ids.shape)}"
        )
    if not 0.0 <= probability <= 1.0:
        raise ConfigError(f"mlm_probability must lie in [0, 1]; got {probability}: use e.g. 0.15")


def _check_vocab_args(mask_token_id: int, vocab_size: int, n_special: int) -> None:
    """The random-replacement range must be non-empty and the mask id a real vocabulary entry."""
    if not 0 <= n_special < vocab_size:
        raise ConfigError(
            f"need 0 <= n_special < vocab_size to draw random replacements; got n_special={n_special}, "
            f"vocab_size={vocab_size}"
        )
    if not 0 <= mask_token_id < vocab_size:
        raise ConfigError(f"mask_token_id {mask_token_id} is outside the vocabulary [0, {vocab_size})")


def _choose_positions(
    special_mask: torch.Tensor, probability: float, generator: torch.Generator, word_ids: torch.Tensor | None
) -> torch.Tensor:
    """Bool (batch, seq): the positions the model must predict; specials are never among them."""
    eligible = ~special_mask  # (batch, seq)
    if word_ids is None:
        draw = torch.rand(special_mask.shape, generator=generator, device=special_mask.device)
        return eligible & (draw < probability)
    eligible &= word_ids >= 0
    n_words = max(int(word_ids.max().item()) + 1, 1) if word_ids.numel() else 1
    word_draw = torch.rand(
        (special_mask.shape[0], n_words), generator=generator, device=special_mask.device
    )  # (batch, n_words): one draw per word and row, shared by all of the word's subwords
    word_chosen = torch.gather(word_draw < probability, 1, word_ids.clamp(min=0).long())  # (batch, seq)
    return eligible & word_chosen


def _corrupt_chosen(
    input_ids: torch.Tensor,
    chosen: torch.Tensor,
    mask_token_id: int,
    vocab_size: int,
    n_special: int,
    generator: torch.Generator,
) -> torch.Tensor:
    """Apply the 80/10/10 split to the chosen positions of a copy of ``input_ids``."""
    device = input_ids.device
    action = torch.rand(input_ids.shape, generator=generator, device=device)  # (batch, seq)
    to_mask = chosen & (action < MASK_SHARE)
    to_random = chosen & (action >= MASK_SHARE) & (action < MASK_SHARE + RANDOM_SHARE)
    random_ids = torch.randint(
        n_special, vocab_size, input_ids.shape, generator=generator, device=device, dtype=input_ids.dtype
    )  # (batch, seq)
    inputs = input_ids.masked_fill(to_mask, mask_token_id)  # a new tensor: the caller's stays intact
    return torch.where(to_random, random_ids, inputs)


def mlm_stats(
    inputs_before: torch.Tensor,
    inputs_after: torch.Tensor,
    labels: torch.Tensor,
    *,
    special_mask: torch.Tensor,
    mask_token_id: int,
) -> dict[str, float]:
    """Shares that show whether masking behaves as configured, for tests and training logs.

    ``share_chosen`` is over eligible (non-special) positions; ``share_masked``,
    ``share_replaced`` and ``share_kept`` are over chosen positions. A random replacement that
    happens to draw the original id counts as kept, since the model sees the original token.
    The two ``n_*`` error counts must be zero: chosen specials, changed unchosen positions.
    """
    chosen = labels != IGNORE_INDEX  # (batch, seq)
    masked = chosen & (inputs_after == mask_token_id)
    kept = chosen & ~masked & (inputs_after == inputs_before)
    replaced = chosen & ~masked & ~kept
    n_eligible = int((~special_mask).sum())
    n_chosen = int(chosen.sum())
    return {
        "n_eligible": float(n_eligible),
        "n_chosen": float(n_chosen),
        "share_chosen": n_chosen / max(n_eligible, 1),
        "share_masked": int(masked.sum()) / max(n_chosen, 1),
        "share_replaced": int(replaced.sum()) / max(n_chosen, 1),
        "share_kept": int(kept.sum()) / max(n_chosen, 1),
        "n_chosen_special": float(int((chosen & special_mask).sum())),
        "n_changed_unchosen": float(int((~chosen & (inputs_after != inputs_before)).sum())),
    }
