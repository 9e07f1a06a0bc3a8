"""A randomly initialised XLM-R token classifier small enough to train in a test, without dropout
(dropout masks depend on the padded shape; without it padded and unpadded runs compute the same)."""

from __future__ import annotations

from typing import Any

import torch


def tiny_token_classifier(
    *, vocab_size: int, hidden_size: int, num_labels: int, seed: int = 0, dropout: float = 0.0
) -> Any:
    from transformers import XLMRobertaConfig, XLMRobertaForTokenClassification

    torch.manual_seed(seed)
    config = XLMRobertaConfig(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=2 * hidden_size,
        max_position_embeddings=80,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
        pad_token_id=1,
        num_labels=num_labels,
    )
    return XLMRobertaForTokenClassification(config)


class QuadraticModel(torch.nn.Module):
    """A model whose loss pulls its one weight matrix towards zero: finite, cheap, deterministic.

    With ``by_mask`` the loss is scaled by the batch's share of real positions, so it depends on
    the batch (padding, bucket widths) as a real model's does.
    """

    def __init__(self, by_mask: bool = False):
        super().__init__()
        self.by_mask = by_mask
        self.weight = torch.nn.Parameter(torch.ones(2, 2))
        self.config = type("Config", (), {"pad_token_id": 0})()

    def forward(self, input_ids: Any, attention_mask: Any, labels: Any = None) -> Any:
        loss = (self.weight**2).sum()
        if self.by_mask:
            loss = loss * attention_mask.float().mean()
        return type("Output", (), {"loss": loss})()
