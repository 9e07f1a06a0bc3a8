"""The CPU training kernels: dropout from integer draws and eager training attention.

What must hold: the drop rate and expectation of real dropout; gradients only through kept
elements; attention equal to transformers' sdpa when no element is dropped (forward and
backward, with padding); evaluation untouched; the stock model back after the run, an exception
included; a CPU ``Loop`` trains through them and stays reproducible."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import torch
from test_loop_lean import LossReporter, labelled_features
from tiny_models import tiny_token_classifier

from nertool.train import cpu_kernels
from nertool.train.cpu_kernels import ATTENTION, FastDropout, cpu_training_kernels, dropout_mask, fast_dropout
from nertool.train.loop import Loop, LoopSettings


def dropout_classifier(p: float = 0.1, seed: int = 0) -> Any:
    """The tiny two-layer XLM-R token classifier with dropout ``p`` everywhere."""
    return tiny_token_classifier(vocab_size=60, hidden_size=16, num_labels=3, seed=seed, dropout=p)


def padded_batch() -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(5)
    ids = torch.randint(5, 60, (3, 9), generator=generator)
    mask = torch.ones(3, 9, dtype=torch.long)
    mask[1, 6:] = 0
    mask[2, 3:] = 0
    ids[mask == 0] = 1
    labels = torch.randint(0, 3, (3, 9), generator=generator).masked_fill(mask == 0, -100)
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


@pytest.mark.parametrize("p", [0.1, 0.5])
def test_the_mask_drops_p_of_the_elements_and_the_scale_keeps_the_expectation(p: float) -> None:
    torch.manual_seed(0)
    keep, scale = dropout_mask(torch.Size([400, 1000]), p, torch.device("cpu"))
    assert keep.dtype == torch.bool and keep.shape == (400, 1000)
    assert abs((1 - keep.float().mean().item()) - p) < 0.005
    threshold = round(p * 32768)
    assert scale == pytest.approx(1 / (1 - threshold / 32768))
    torch.manual_seed(0)
    again, _ = dropout_mask(torch.Size([400, 1000]), p, torch.device("cpu"))
    following, _ = dropout_mask(torch.Size([400, 1000]), p, torch.device("cpu"))
    assert torch.equal(keep, again) and not torch.equal(again, following)  # seeded, and fresh per call


def test_every_position_of_an_odd_sized_tensor_gets_its_own_draw() -> None:
    torch.manual_seed(1)
    keep, _ = dropout_mask(torch.Size([7, 13, 3]), 0.5, torch.device("cpu"))  # 273: not a multiple of 4
    assert keep.shape == (7, 13, 3) and 0 < int(keep.sum()) < keep.numel()


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_gradients_pass_only_through_kept_elements_scaled(dtype: torch.dtype) -> None:
    torch.manual_seed(2)
    x = (torch.rand(64, 50) + 0.5).to(dtype).requires_grad_()  # no zeros: a zero output means dropped
    grad = torch.randn(64, 50).to(dtype)
    y = fast_dropout(x, 0.3)
    y.backward(grad)
    kept = y != 0
    scale = 32768 / (32768 - round(0.3 * 32768))
    assert y.dtype == dtype and x.grad is not None and 0.6 < kept.float().mean().item() < 0.8
    assert torch.equal(y, torch.where(kept, x.detach() * scale, torch.zeros((), dtype=dtype)))
    assert torch.equal(x.grad, torch.where(kept, grad * scale, torch.zeros((), dtype=dtype)))


def keep_everything(shape: torch.Size, p: float, device: torch.device) -> tuple[torch.Tensor, float]:
    return torch.ones(shape, dtype=torch.bool, device=device), 1.0


def test_with_nothing_dropped_training_attention_equals_sdpa_forward_and_backward(monkeypatch) -> None:
    """Every dropout site keeps everything: the swapped model in training mode must compute what
    stock sdpa computes with dropout off, padding mask included, gradients included."""
    ours = dropout_classifier(0.1)
    stock = copy.deepcopy(ours)
    for module in stock.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0  # the attention modules pass their dropout's p to sdpa
    monkeypatch.setattr(cpu_kernels, "dropout_mask", keep_everything)
    batch = padded_batch()
    with cpu_training_kernels(ours):
        ours.train()
        assert ours.config._attn_implementation == ATTENTION
        loss = ours(**batch).loss
        loss.backward()
    stock.train()
    stock_loss = stock(**batch).loss
    stock_loss.backward()
    assert loss.item() == pytest.approx(stock_loss.item(), abs=1e-6)
    for (name, a), b in zip(ours.named_parameters(), stock.parameters(), strict=True):
        assert a.grad is not None and b.grad is not None, name
        assert torch.allclose(a.grad, b.grad, atol=1e-6), name


def test_every_dropout_site_draws_while_training_and_evaluation_is_untouched(monkeypatch) -> None:
    model = dropout_classifier(0.1)
    batch = {k: v for k, v in padded_batch().items() if k != "labels"}
    model.eval()
    with torch.no_grad():
        before = model(**batch).logits
    draws: list[torch.Size] = []
    real = cpu_kernels.dropout_mask

    def counting(shape: torch.Size, p: float, device: torch.device) -> tuple[torch.Tensor, float]:
        draws.append(shape)
        return real(shape, p, device)

    monkeypatch.setattr(cpu_kernels, "dropout_mask", counting)
    with cpu_training_kernels(model), torch.no_grad():
        model.train()
        trained = model(**batch).logits
        sites = len(draws)
        model.eval()
        evaluated = model(**batch).logits
    # embeddings, per layer: attention weights + two hidden dropouts, and the classifier
    assert sites == 1 + 2 * 3 + 1 and len(draws) == sites  # evaluation draws nothing
    assert (3, 2, 9, 9) in draws  # the attention weights: batch, heads, queries, keys
    assert torch.equal(evaluated, before) and not torch.allclose(trained, before)


def test_the_stock_model_comes_back_after_an_error_and_on_disk(tmp_path: Path) -> None:
    model = dropout_classifier(0.1)
    with pytest.raises(RuntimeError, match="mid-run"), cpu_training_kernels(model):
        assert all(type(m) is FastDropout for m in model.modules() if isinstance(m, torch.nn.Dropout))
        model.save_pretrained(tmp_path / "during")
        raise RuntimeError("mid-run")
    assert model.config._attn_implementation == "sdpa"
    assert not any(type(m) is FastDropout for m in model.modules())
    saved = json.loads((tmp_path / "during" / "config.json").read_text())
    assert ATTENTION not in json.dumps(saved)  # a model saved mid-run loads anywhere


def test_other_attention_implementations_are_left_alone() -> None:
    model = dropout_classifier(0.1)
    model.config._attn_implementation = "eager"
    with cpu_training_kernels(model):
        assert model.config._attn_implementation == "eager"
    with cpu_training_kernels(model, enabled=False):
        assert not any(type(m) is FastDropout for m in model.modules())


def train_with_dropout(tmp_path: Path, monkeypatch) -> tuple[list[float], int, Any]:
    draws = []
    real = cpu_kernels.dropout_mask

    def counting(shape: torch.Size, p: float, device: torch.device) -> tuple[torch.Tensor, float]:
        draws.append(shape)
        return real(shape, p, device)

    monkeypatch.setattr(cpu_kernels, "dropout_mask", counting)
    settings = LoopSettings(epochs=1, batch_size=6, learning_rate=3e-3, seed=4, log_every=1)
    reporter = LossReporter()
    loop = Loop(dropout_classifier(0.1), labelled_features(24), settings, tmp_path, reporter=reporter)
    loop.run()
    return reporter.losses, len(draws), loop.accelerator.unwrap_model(loop.model)


@pytest.mark.slow  # trains two tiny models
def test_a_cpu_loop_trains_through_the_kernels_reproducibly_and_hands_back_a_stock_model(
    tmp_path: Path, monkeypatch
) -> None:
    losses, draws, model = train_with_dropout(tmp_path / "a", monkeypatch)
    again, _, _ = train_with_dropout(tmp_path / "b", monkeypatch)
    assert draws == 4 * 8  # four steps of 6 from 24 sentences, eight dropout sites each
    assert losses == again and all(torch.isfinite(torch.tensor(losses)))
    assert model.config._attn_implementation == "sdpa"
    assert not any(type(m) is FastDropout for m in model.modules())
