"""Checkpoints under attack: killed mid-write, truncated, corrupted, from another model; and
decisions (skip a non-finite step) that two processes must take together."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nertool.cli.commands import app
from nertool.config import load_recipe
from nertool.train.checkpoint import BOUNDARIES_PER_SAVE, KILL_ENV, MANIFEST, write_manifest
from nertool.workflows.train import train_run

RECIPE = """
seed = 11
[model]
name = "{model}"
max_length = 64
[data]
source = "sample"
train_languages = ["de"]
eval_languages = ["de"]
max_train_samples = {samples}
{eval_samples}[train]
epochs = {epochs}
batch_size = 8
learning_rate = 0.003
evals_per_epoch = {evals}
log_every = 1
"""

pytestmark = pytest.mark.slow  # every test here trains (the base run at least), some in subprocesses

QUIET = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}


def write_recipe(
    path: Path, model: str, samples: int, epochs: int = 1, evals: int = 1, eval_samples: int | None = None
) -> Path:
    limit = f"max_eval_samples = {eval_samples}\n" if eval_samples else ""
    text = RECIPE.format(model=model, samples=samples, epochs=epochs, evals=evals, eval_samples=limit)
    path.write_text(text)
    return path


def nertool(
    *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "nertool", "-q", *args],
        env={**os.environ, **QUIET, "PYTHONUNBUFFERED": "1", **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def snapshot(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def step_losses(run: Path) -> dict[int, float]:
    records = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in records if "loss" in r}


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> tuple[Path, Path]:
    """A finished scratch:tiny run (its checkpoint is what the attacks damage) and its recipe."""
    folder = tmp_path_factory.mktemp("base")
    recipe = write_recipe(folder / "recipe.toml", "scratch:tiny", samples=16)
    train_run(load_recipe(recipe), folder / "run")
    return recipe, folder / "run"


@pytest.fixture
def victim(base, tmp_path) -> tuple[Path, Path]:
    recipe, run = base
    shutil.copytree(run, tmp_path / "run")
    return recipe, tmp_path / "run"


def resume_refused(recipe: Path, run: Path, *words: str) -> str:
    """``--resume`` must exit 1 with one line naming the checkpoint, and touch nothing in it."""
    before = snapshot(run / "checkpoint"), (run / "train_log.jsonl").read_bytes()
    result = CliRunner().invoke(app, ["-q", "train", str(recipe), "-o", str(run), "--resume"])
    output = result.output.strip()
    assert result.exit_code == 1, output
    assert "Traceback" not in output and len(output.splitlines()) == 1, output
    assert str(run / "checkpoint") in output and "rerun without --resume" in output, output
    for word in words:
        assert word in output, output
    assert (snapshot(run / "checkpoint"), (run / "train_log.jsonl").read_bytes()) == before
    return output


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def test_an_intact_checkpoint_resumes(victim):
    recipe, run = victim
    result = CliRunner().invoke(app, ["-q", "train", str(recipe), "-o", str(run), "--resume"])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    "name", ["optimizer.bin", "model.safetensors", "scheduler.bin", "tokenizer/tokenizer.json"]
)
def test_a_truncated_file_is_refused(victim, name):
    recipe, run = victim
    truncate(run / "checkpoint" / name)
    resume_refused(recipe, run, name, "bytes")


def test_a_same_size_corruption_is_refused(victim):
    recipe, run = victim
    path = run / "checkpoint" / "random_states_0.pkl"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    resume_refused(recipe, run, "random_states_0.pkl", "sha256")


def test_a_corrupt_loop_state_is_refused(victim):
    recipe, run = victim
    (run / "checkpoint" / "loop_state.json").write_text("{not json")
    resume_refused(recipe, run, "loop_state.json")


def reseal(run: Path) -> None:
    """Rewrite the manifest to match the files: a damaged checkpoint that looks sealed."""
    manifest = json.loads((run / "checkpoint" / MANIFEST).read_text())
    summary = {"labels": manifest["labels"], "parameters": manifest["parameters"]}
    write_manifest(run / "checkpoint", manifest["step"], summary)


@pytest.mark.parametrize("text", ["{not json", '{"step": 2}', "[]"])
def test_a_sealed_but_malformed_loop_state_is_refused(victim, text):
    recipe, run = victim
    (run / "checkpoint" / "loop_state.json").write_text(text)
    reseal(run)
    resume_refused(recipe, run, "loop_state.json")


@pytest.mark.parametrize("name", ["optimizer.bin", "scheduler.bin", "model.safetensors"])
def test_a_sealed_but_malformed_state_file_is_refused(victim, name):
    recipe, run = victim
    (run / "checkpoint" / name).write_bytes(b"this is not a pickle nor safetensors")
    reseal(run)
    resume_refused(recipe, run, "cannot load it")


def test_a_checkpoint_without_manifest_is_refused(victim):
    recipe, run = victim
    (run / "checkpoint" / MANIFEST).unlink()
    resume_refused(recipe, run, MANIFEST)


def test_a_checkpoint_of_another_model_size_is_refused(victim, tmp_path):
    recipe, run = victim
    other = tmp_path / "small.toml"
    other.write_text(recipe.read_text().replace("scratch:tiny", "scratch:small"))
    resume_refused(other, run, "shape", "another model")


def test_a_checkpoint_with_other_labels_is_refused(victim):
    recipe, run = victim
    manifest = json.loads((run / "checkpoint" / MANIFEST).read_text())
    labels = [*manifest["labels"][:-1], "B-ZZZ"]
    write_manifest(
        run / "checkpoint", manifest["step"], {"labels": labels, "parameters": manifest["parameters"]}
    )
    resume_refused(recipe, run, "labels", "B-ZZZ")


# ------------------------------------------------------------------ killed at every boundary


@pytest.fixture(scope="module")
def kill_reference(base, tmp_path_factory) -> tuple[Path, Path]:
    """An uninterrupted run that writes three checkpoints, from the saved base model (Unigram
    tokenizer training is not bit-for-bit repeatable across processes)."""
    folder = tmp_path_factory.mktemp("kill")
    recipe = write_recipe(
        folder / "recipe.toml", str(base[1] / "model"), samples=24, evals=3, eval_samples=8
    )
    reference = folder / "reference"
    done = CliRunner().invoke(app, ["-q", "train", str(recipe), "-o", str(reference)])
    assert done.exit_code == 0, done.output
    return recipe, reference


# 24 samples in batches of 8, three evaluations in the one epoch: checkpoints at steps 1, 2 and 3.
# Every boundary of the second save (a save with a checkpoint before it and training after it):
# the run resumes from the checkpoint of step 1 until the new one is renamed into place (the 6th
# boundary of a save), then from that of step 2. In the first save, one boundary: a sealed but
# unpublished checkpoint with none before it, so the run starts over.
FIRST = {4: 0}
SECOND = {BOUNDARIES_PER_SAVE + k: 1 if k < 6 else 2 for k in range(1, BOUNDARIES_PER_SAVE + 1)}


def resumed_from(before: list[str], after: list[str]) -> int:
    """The last step whose logged training record survived the resume verbatim (timings make a
    rerun's records differ), i.e. the checkpoint the resumed run continued from; 0 if none."""
    kept = set(after)
    return max((json.loads(line)["step"] for line in before if line in kept and '"loss"' in line), default=0)


@pytest.mark.parametrize(("boundary", "checkpoint_step"), sorted({**FIRST, **SECOND}.items()))
def test_a_kill_at_any_boundary_resumes_to_the_uninterrupted_curve(
    kill_reference, tmp_path, boundary, checkpoint_step
):
    recipe, reference = kill_reference
    run = tmp_path / "run"
    killed = nertool("train", str(recipe), "-o", str(run), env={KILL_ENV: str(boundary)})
    assert killed.returncode == -9, killed.stdout + killed.stderr
    before = (run / "train_log.jsonl").read_text().splitlines()
    # The kill needs a process of its own; the resume runs the same command in this one.
    resumed = CliRunner().invoke(app, ["-q", "train", str(recipe), "-o", str(run), "--resume"])
    assert resumed.exit_code == 0, resumed.output
    assert resumed_from(before, (run / "train_log.jsonl").read_text().splitlines()) == checkpoint_step
    # The float noise of CPU kernels run to run (see test_reliability): close, step by step.
    expected, got = step_losses(reference), step_losses(run)
    assert set(got) == set(expected), "every step is logged exactly once"
    for step, loss in expected.items():
        assert got[step] == pytest.approx(loss, rel=0.05, abs=2e-3), f"step {step}"
    assert json.loads((run / "checkpoint" / "loop_state.json").read_text())["step"] == max(expected)
    assert not [p.name for p in run.iterdir() if p.name.startswith(".checkpoint")]


# ------------------------------------------------------------------ two processes agree


def run_group(command: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    """Run a launcher in its own process group, so a hang ends with all its workers killed."""
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        pytest.fail(f"the two processes hung (killed after {timeout} s): {stdout}{stderr}"[-4000:])
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def test_a_non_finite_loss_on_one_rank_is_skipped_by_both(base, tmp_path):
    recipe = write_recipe(tmp_path / "recipe.toml", str(base[1] / "model"), samples=48, epochs=1)
    run, prints = tmp_path / "run", tmp_path / "weights"
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"]
    command += ["-m", "nertool", "-q", "train", str(recipe), "-o", str(run)]
    hooks = {
        "NERTOOL_TEST_NAN_RANK": "1",
        "NERTOOL_TEST_NAN_STEP": "2",
        "NERTOOL_TEST_WEIGHTS_OUT": str(prints),
    }
    done = run_group(command, {**os.environ, **QUIET, **hooks}, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    records = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
    skipped = [r for r in records if "non-finite" in r.get("warning", "")]
    assert [r["step"] for r in skipped] == [2]
    rank0, rank1 = ((prints / f"rank-{i}.sha256").read_text() for i in (0, 1))
    assert rank0 == rank1, "both processes must end with the same weights"
    state = json.loads((run / "checkpoint" / "loop_state.json").read_text())
    assert state["nonfinite_steps"] == 1
    metrics = json.loads((run / "metrics.json").read_text())
    f1 = metrics["languages"]["de"]["test"]["f1"]
    assert 0.0 <= f1 <= 1.0


PRETRAIN_RECIPE = """
seed = 5
[model]
name = "scratch:tiny"
vocab_size = 600
max_length = 64
[train]
batch_size = 8
learning_rate = 0.002
log_every = 1
[pretrain]
text = ["sample"]
steps = 3
block_size = 64
heldout_fraction = 0.1
eval_every = 3
"""


def test_a_pretraining_checkpoint_with_a_truncated_optimizer_is_refused(tmp_path):
    recipe, run = tmp_path / "mlm.toml", tmp_path / "mlm"
    recipe.write_text(PRETRAIN_RECIPE)
    first = CliRunner().invoke(app, ["-q", "pretrain", str(recipe), "-o", str(run)])
    assert first.exit_code == 0, first.output
    truncate(run / "checkpoint" / "optimizer.bin")
    before = snapshot(run / "checkpoint")
    result = CliRunner().invoke(app, ["-q", "pretrain", str(recipe), "-o", str(run), "--resume"])
    output = result.output.strip()
    assert result.exit_code == 1 and len(output.splitlines()) == 1 and "Traceback" not in output, output
    assert str(run / "checkpoint") in output and "optimizer.bin" in output, output
    assert snapshot(run / "checkpoint") == before
