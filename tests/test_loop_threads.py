"""The thread policy: ``--threads`` reaches torch on every computing command; without it,
OMP_NUM_THREADS, else the physical cores the process may use (affinity, cgroup quota)."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from typer.testing import CliRunner

from nertool import threads
from nertool.cli.commands import app

TRAIN_TOML = 'seed = 7\n[model]\nname = "scratch:tiny"\n[data]\nsource = "sample"\n'
METRICS = {"languages": {"de": {"test": {"f1": 0.5, "sentences": 3}}}}


@pytest.fixture(autouse=True)
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def seen_threads(monkeypatch, job: str, result: object) -> list[int]:
    seen: list[int] = []

    def stub(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return result

    monkeypatch.setattr(f"nertool.workflows.jobs.{job}", stub)
    monkeypatch.setattr("nertool.cli.render.print_metrics", lambda *a, **k: None)
    monkeypatch.setattr("nertool.cli.render.print_pretrain", lambda *a, **k: None)
    return seen


@pytest.mark.parametrize(
    ("command", "job", "result"),
    [
        (["train", "{recipe}"], "train_job", SimpleNamespace(metrics=METRICS)),
        (["demo", "-o", "{tmp}/demo"], "demo_job", SimpleNamespace(metrics=METRICS)),
        (["pretrain", "{recipe}", "-o", "{tmp}/p"], "pretrain_job", SimpleNamespace(history=[])),
    ],
)
def test_threads_option_reaches_torch(monkeypatch, tmp_path: Path, command, job, result) -> None:
    recipe = tmp_path / "tiny.toml"
    recipe.write_text(TRAIN_TOML, encoding="utf-8")
    seen = seen_threads(monkeypatch, job, result)
    args = [part.format(recipe=recipe, tmp=tmp_path) for part in command]
    for wanted in (3, 1):
        outcome = CliRunner().invoke(app, [*args, "--threads", str(wanted)])
        assert outcome.exit_code == 0, outcome.output
        assert seen[-1] == wanted


def test_threads_must_be_positive(tmp_path: Path) -> None:
    outcome = CliRunner().invoke(app, ["demo", "-o", str(tmp_path), "--threads", "0"])
    assert outcome.exit_code == 2


def test_precedence_option_then_environment_then_cores(monkeypatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "5")
    assert threads.chosen_threads(2) == 2
    assert threads.chosen_threads() == 5
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.setattr(threads, "default_threads", lambda: 7)
    assert threads.chosen_threads() == 7


def test_hyper_threads_of_one_core_count_once(tmp_path: Path) -> None:
    for cpu, siblings in {0: "0,2", 1: "1,3", 2: "0,2", 3: "1,3"}.items():
        topology = tmp_path / f"cpu{cpu}" / "topology"
        topology.mkdir(parents=True)
        (topology / "thread_siblings_list").write_text(siblings + "\n")
    assert threads.physical_cores({0, 1, 2, 3}, tmp_path) == 2
    assert threads.physical_cores({0, 2}, tmp_path) == 1


def test_cgroup_quota_is_read_from_v2_then_v1(tmp_path: Path) -> None:
    v2, v1 = tmp_path / "cpu.max", tmp_path / "v1"
    v2.write_text("150000 100000\n")
    assert threads.cgroup_cpu_quota(v2, v1) == 1.5
    v2.write_text("max 100000\n")
    assert threads.cgroup_cpu_quota(v2, v1) is None
    v2.unlink()
    v1.mkdir()
    (v1 / "cpu.cfs_quota_us").write_text("300000")
    (v1 / "cpu.cfs_period_us").write_text("100000")
    assert threads.cgroup_cpu_quota(v2, v1) == 3.0
    (v1 / "cpu.cfs_quota_us").write_text("-1")
    assert threads.cgroup_cpu_quota(v2, v1) is None


def test_default_is_capped_by_the_quota_and_shared_by_local_processes(monkeypatch) -> None:
    monkeypatch.setattr(threads, "allowed_cpus", lambda: {0, 1, 2, 3, 4, 5, 6, 7})
    monkeypatch.setattr(threads, "physical_cores", lambda cpus: len(cpus))
    monkeypatch.setattr(threads, "cgroup_cpu_quota", lambda: 2.5)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    assert threads.default_threads() == 3
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    assert threads.default_threads() == 1


def test_tokenizer_threads_are_off_inside_and_restored(monkeypatch) -> None:
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "true")
    with threads.tokenizer_threads_off():
        assert os.environ["TOKENIZERS_PARALLELISM"] == "false"
    assert os.environ["TOKENIZERS_PARALLELISM"] == "true"
