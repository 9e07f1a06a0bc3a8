"""GraphedStep: eager equivalence, per-shape bookkeeping and the on-device skip (CPU); graphs on CUDA."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch
from tiny_models import tiny_token_classifier

from nertool.train.graphs import GraphedStep, graphs_supported, make_graph_optimizer, shape_key
from nertool.train.loop import optimizer_groups

LABELS = 5


def tiny_model(seed: int = 0) -> Any:
    return tiny_token_classifier(vocab_size=100, hidden_size=32, num_labels=LABELS, seed=seed).train()


def batch_of(width: int, rows: int = 4, seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(5, 100, (rows, width), generator=generator)
    attention = torch.ones_like(input_ids)
    attention[0, width // 2 :] = 0  # one padded row
    input_ids[attention == 0] = 1
    labels = torch.randint(0, LABELS, (rows, width), generator=generator)
    labels[attention == 0] = -100
    return {"input_ids": input_ids, "attention_mask": attention, "labels": labels}


def plain_steps(model: Any, batches: list[dict[str, torch.Tensor]], lr: float = 1e-2) -> list[float]:
    """The reference: AdamW, clipping, step, scheduler, zero_grad, exactly as a textbook loop."""
    from transformers import get_linear_schedule_with_warmup

    optimizer = torch.optim.AdamW(optimizer_groups(model, 0.01), lr=lr)
    scheduler = get_linear_schedule_with_warmup(optimizer, 2, len(batches))
    losses = []
    for batch in batches:
        loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
        losses.append(float(loss.detach()))
    return losses


class Recorder:
    """A capture seam: counts captures and replays the step eagerly (what a graph replay computes)."""

    def __init__(self) -> None:
        self.captures = 0

    def __call__(self, step: Any) -> Any:
        self.captures += 1
        return step


def graphed(model: Any, capture: Any, **kwargs: Any) -> tuple[GraphedStep, Any]:
    from transformers import get_linear_schedule_with_warmup

    optimizer = make_graph_optimizer(optimizer_groups(model, 0.01), lr=kwargs.pop("lr", 1e-2))
    scheduler = get_linear_schedule_with_warmup(optimizer, 2, kwargs.pop("total", 8))
    return GraphedStep(model, optimizer, max_grad_norm=1.0, capture=capture, **kwargs), scheduler


def run_graphed(step: GraphedStep, scheduler: Any, batches: list[dict[str, torch.Tensor]]) -> list[float]:
    losses = []
    for batch in batches:
        losses.append(step(batch))
        scheduler.step()
    return [float(loss) for loss in losses]


@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step()`")
def test_the_graph_optimizer_is_fused_with_a_tensor_lr_per_group_that_the_scheduler_moves() -> None:
    optimizer, scheduler = graphed(tiny_model(), Recorder())[0].optimizer, None
    groups = optimizer.param_groups
    assert all(isinstance(g["lr"], torch.Tensor) for g in groups)
    assert groups[0]["lr"] is not groups[1]["lr"]
    assert optimizer.defaults["fused"] is True
    assert optimizer.defaults["capturable"] is False  # CPU
    from transformers import get_linear_schedule_with_warmup

    lr = groups[0]["lr"]
    scheduler = get_linear_schedule_with_warmup(optimizer, 2, 8)
    scheduler.step()
    assert groups[0]["lr"] is lr and float(lr) == pytest.approx(0.5e-2)


def test_graphed_steps_give_the_weights_of_plain_steps() -> None:
    batches = [batch_of(16, seed=i) for i in range(3)] + [batch_of(32, seed=i) for i in range(3, 8)]
    reference, model = tiny_model(), tiny_model()
    expected = plain_steps(reference, batches)
    recorder = Recorder()
    step, scheduler = graphed(model, recorder, warmup_steps=1, total=len(batches))
    losses = run_graphed(step, scheduler, batches)
    assert recorder.captures == 2  # one per width, after its warm-up step
    assert losses == pytest.approx(expected, abs=1e-5)
    for (name, a), b in zip(reference.named_parameters(), model.parameters(), strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4, msg=name)
    assert all(p.grad is None for p in model.parameters())


def test_a_replay_reads_the_new_batch_not_the_captured_one() -> None:
    model = tiny_model()
    frozen = copy.deepcopy(model)
    step, _ = graphed(model, Recorder(), warmup_steps=0, lr=0.0)
    losses = [float(step(batch_of(16, seed=i))) for i in range(3)]
    with torch.no_grad():
        expected = [float(frozen(**batch_of(16, seed=i)).loss) for i in range(3)]
    assert losses == pytest.approx(expected, abs=1e-6)
    assert len(set(losses)) == 3


def test_one_capture_per_shape_after_its_warmup_and_eager_past_max_graphs() -> None:
    recorder = Recorder()
    step, _ = graphed(tiny_model(), recorder, warmup_steps=2, max_graphs=2)
    widths = [16, 16, 32, 16, 32, 48, 32, 48, 48, 64, 48]
    for i, width in enumerate(widths):
        step(batch_of(width, seed=i))
    assert recorder.captures == 2
    assert [dict((name, shape) for name, shape, _ in key)["input_ids"] for key in step.captured_shapes] == [
        (4, 16),
        (4, 32),
    ]


def test_shape_key_tells_batches_apart_by_shape_and_dtype() -> None:
    a, b = batch_of(16), batch_of(16, seed=3)
    assert shape_key(a) == shape_key(b)
    assert shape_key(a) != shape_key(batch_of(32))
    assert shape_key(a) != shape_key({**a, "labels": a["labels"].int()})


@pytest.mark.parametrize("captured", [False, True])
def test_a_non_finite_loss_skips_the_update_on_the_device(captured: bool) -> None:
    model = tiny_model()
    step, scheduler = graphed(model, Recorder(), warmup_steps=0 if captured else 10**6)
    step(batch_of(16, seed=0))
    scheduler.step()  # off the warm-up's zero learning rate
    before = copy.deepcopy(model.state_dict())
    steps_before = [s["step"].clone() for s in step.optimizer.state.values()]
    poisoned = batch_of(16, seed=1)
    with torch.no_grad():
        model.classifier.bias.add_(float("nan"))
    loss = step(poisoned)
    with torch.no_grad():
        model.classifier.bias.copy_(before["classifier.bias"])
    assert not torch.isfinite(loss)
    assert int(step.skipped()) == 1
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert [s["step"] for s in step.optimizer.state.values()] == steps_before
    step(batch_of(16, seed=2))
    assert int(step.skipped()) == 1
    assert not torch.equal(before["classifier.weight"], model.classifier.weight)


def test_without_cuda_graphs_are_not_supported_and_every_step_is_eager() -> None:
    assert not graphs_supported(torch.device("cpu"))
    step, _ = graphed(tiny_model(), None, warmup_steps=0)
    for i in range(3):
        step(batch_of(16, seed=i))
    assert step.captured_shapes == []


# ---------------------------------------------------------------- CUDA

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@cuda
@pytest.mark.parametrize("dtype", [None, torch.bfloat16])
def test_graph_and_eager_steps_agree_on_cuda(dtype: torch.dtype | None) -> None:
    from nertool.train.graphs import cuda_capture

    batches = [batch_of(16 * (1 + i % 2), rows=8, seed=i) for i in range(12)]
    eager_model, graph_model = tiny_model().cuda(), tiny_model().cuda()
    runs = []
    for model, capture, max_graphs in ((eager_model, None, 0), (graph_model, cuda_capture, 16)):
        step, scheduler = graphed(model, capture, warmup_steps=2, max_graphs=max_graphs, total=12)
        step.autocast_dtype = dtype
        runs.append((step, run_graphed(step, scheduler, batches)))
    (eager, eager_losses), (graph, graph_losses) = runs
    assert len(graph.captured_shapes) == 2 and eager.captured_shapes == []
    assert graph_losses == pytest.approx(eager_losses, abs=1e-3)
    probe = batch_of(16, rows=8, seed=99)
    with torch.no_grad():
        a = eager_model.eval()(**{k: v.cuda() for k, v in probe.items()}).logits
        b = graph_model.eval()(**{k: v.cuda() for k, v in probe.items()}).logits
    assert float((a - b).abs().max()) <= 1e-3
