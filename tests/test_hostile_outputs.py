"""Hostile output paths through the CLI: inputs, links, FIFOs, devices, full disks, busy or used run folders.

Every case checks the promise a user relies on: the command either writes where it was told
without harming anything else, or fails with exit 1 and one ``error:`` line, leaving the inputs
byte for byte as they were and no temporary file behind.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import pathlib
import socket
import stat
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from nertool import files
from nertool.cli.commands import app
from nertool.errors import DataError
from nertool.files import safe_child, write_text
from nertool.run_folder import LOCK, claim_run_folder
from nertool.workflows.evaluate import write_evaluation_report
from nertool.workflows.training_data import SAMPLE_DIR

runner = CliRunner()

LINES = ["Angela Merkel besuchte Paris .", "Die Deutsche Bank in Frankfurt .", "", "Berlin"]
RECIPE = """
seed = 3
[model]
name = "scratch:tiny"
max_length = 64
[data]
source = "sample"
train_languages = ["de"]
eval_languages = ["de"]
max_train_samples = 16
max_eval_samples = 8
[train]
epochs = 1
batch_size = 8
learning_rate = 0.003
"""


@pytest.fixture(scope="module")
def run_dir(tiny_run: Path) -> Path:
    """The session's tiny run (see conftest); tests that need a run to damage copy it."""
    return tiny_run


@pytest.fixture()
def text_input(tmp_path: Path) -> Path:
    path = tmp_path / "in.txt"
    path.write_text("\n".join(LINES) + "\n", encoding="utf-8")
    return path


@pytest.fixture()
def recipe_file(tmp_path: Path) -> Path:
    path = tmp_path / "recipe.toml"
    path.write_text(RECIPE, encoding="utf-8")
    return path


def snapshot(*roots: Path) -> dict[str, str]:
    """sha256 of every file under ``roots`` (a file root counts as itself)."""
    found = {}
    for root in roots:
        paths = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for path in paths:
            found[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def one_error(result, *needles: str) -> str:
    """Exit 1, no traceback, exactly one ``error:`` line, the last on stderr, naming every needle."""
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert result.stderr.strip().splitlines()[-1] == errors[0]
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


def temporaries(folder: Path) -> list[Path]:
    return [p for p in folder.rglob(".*") if p.name.endswith((".part", ".partial"))]


def predict(run_dir: Path, *args: str):
    return runner.invoke(app, ["-q", "predict", str(run_dir), *args])


# ------------------------------------------------------------------ outputs that are inputs


@pytest.mark.parametrize("alias", ["same", "symlink", "hardlink", "dotted"])
def test_output_that_is_the_input_is_refused_before_the_model_loads(tmp_path, text_input, alias):
    output = {
        "same": text_input,
        "symlink": tmp_path / "link.jsonl",
        "hardlink": tmp_path / "hard.jsonl",
        "dotted": tmp_path / "." / "in.txt",
    }[alias]
    if alias == "symlink":
        output.symlink_to(text_input)
    elif alias == "hardlink":
        os.link(text_input, output)
    before = snapshot(tmp_path)
    # No model folder at all: the refusal must come first, so nothing is loaded for nothing.
    result = predict(tmp_path / "no-such-run", str(text_input), "-o", str(output))
    one_error(result, "same file as input", str(output))
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("where", ["out.jsonl", "deeper/out.jsonl"])
def test_output_inside_an_input_folder_is_refused(run_dir, tmp_path, where):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("Angela Merkel\n", encoding="utf-8")
    (docs / "b.txt").write_text("Paris\n", encoding="utf-8")
    before = snapshot(tmp_path)
    result = predict(run_dir, str(docs), "-o", str(docs / where))
    one_error(result, "inside input folder", str(docs))
    assert snapshot(tmp_path) == before and not (docs / "deeper").exists()


# ------------------------------------------------------------------ links, FIFOs and devices


def test_symlink_output_writes_its_target_and_keeps_the_link(run_dir, tmp_path, text_input):
    target = tmp_path / "real.jsonl"
    target.write_text("old\n", encoding="utf-8")
    link = tmp_path / "out.jsonl"
    link.symlink_to(target)
    dangling = tmp_path / "new.jsonl"
    dangling.symlink_to(tmp_path / "made-by-predict.jsonl")
    before = snapshot(text_input)
    for output in (link, dangling):
        result = predict(run_dir, str(text_input), "-o", str(output))
        assert result.exit_code == 0, result.output
        assert output.is_symlink()
    assert os.readlink(link) == str(target)
    assert os.readlink(dangling) == str(tmp_path / "made-by-predict.jsonl")
    for written in (target, tmp_path / "made-by-predict.jsonl"):
        assert len(written.read_text(encoding="utf-8").splitlines()) == len(LINES)
    assert snapshot(text_input) == before and not temporaries(tmp_path)


def test_fifo_output_is_written_in_place_and_stays_a_fifo(run_dir, tmp_path, text_input):
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    # A reader opened first (non-blocking) lets the command open the FIFO; the few records fit
    # in the pipe's buffer, so nothing waits and a broken writer cannot hang the test.
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        result = predict(run_dir, str(text_input), "-o", str(fifo))
        received = b""
        while chunk := _read_available(reader):
            received += chunk
    finally:
        os.close(reader)
    assert result.exit_code == 0, result.output
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    records = [json.loads(line) for line in received.decode("utf-8").splitlines()]
    assert [r["text"] for r in records] == LINES
    assert not temporaries(tmp_path)


def _read_available(handle: int) -> bytes:
    try:
        return os.read(handle, 65536)
    except BlockingIOError:
        return b""


@pytest.mark.parametrize("device", ["/dev/null", "/dev/stdout"])
def test_device_output_is_written_not_replaced(run_dir, tmp_path, text_input, device):
    if not os.path.exists(device):
        pytest.skip(f"{device} does not exist here")
    before = os.lstat(device)
    result = predict(run_dir, str(text_input), "-o", device)
    assert result.exit_code == 0, result.output
    after = os.lstat(device)
    assert (after.st_mode, after.st_ino, after.st_rdev) == (before.st_mode, before.st_ino, before.st_rdev)
    assert not [p for p in Path("/dev").glob(".*.part")]


def test_stdout_as_output_path_carries_only_predictions(run_dir, tmp_path, text_input):
    """``-o /dev/stdout`` with stdout redirected to a file: no progress bar or summary in the records."""
    import subprocess
    import sys

    captured = tmp_path / "captured.jsonl"
    with captured.open("wb") as stdout:
        done = subprocess.run(
            [sys.executable, "-m", "nertool", "predict", str(run_dir), str(text_input), "-o", "/dev/stdout"],
            stdout=stdout,
            stderr=subprocess.PIPE,
            timeout=300,
        )
    assert done.returncode == 0, done.stderr
    lines = captured.read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(LINES)
    assert all(json.loads(line)["text"] == text for line, text in zip(lines, LINES, strict=True))


def test_full_device_is_one_error_line(run_dir, text_input):
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full here")
    result = predict(run_dir, str(text_input), "-o", "/dev/full")
    one_error(result, "/dev/full", "No space left on device")
    assert stat.S_ISCHR(os.lstat("/dev/full").st_mode)


# ------------------------------------------------------------------ file modes


def test_existing_output_keeps_its_mode_and_a_new_one_gets_the_umask(run_dir, tmp_path, text_input):
    private = tmp_path / "private.jsonl"
    private.write_text("old\n", encoding="utf-8")
    private.chmod(0o600)
    fresh = tmp_path / "fresh.jsonl"
    old_mask = os.umask(0o022)
    try:
        for output in (private, fresh):
            assert predict(run_dir, str(text_input), "-o", str(output)).exit_code == 0
        write_text(tmp_path / "report" / "new.md", "x\n")
        (tmp_path / "kept.md").write_text("old\n")
        (tmp_path / "kept.md").chmod(0o640)
        write_text(tmp_path / "kept.md", "new\n")
    finally:
        os.umask(old_mask)
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "report" / "new.md").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "kept.md").stat().st_mode) == 0o640
    assert (tmp_path / "kept.md").read_text() == "new\n"


# ------------------------------------------------------------------ a full disk


class FullDisk:
    """A stream whose disk fills up: on ``write``, or on the ``close`` that flushes (every time)."""

    def __init__(self, stream, fails_on: str):
        self.stream, self.fails_on = stream, fails_on

    def write(self, text: str) -> int:
        if self.fails_on == "write" and text:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return self.stream.write(text)

    def close(self) -> None:
        self.stream.close()
        if self.fails_on == "close":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.fixture(params=["write", "close"])
def full_disk(request, monkeypatch) -> str:
    real = files._open_stream
    monkeypatch.setattr(files, "_open_stream", lambda handle: FullDisk(real(handle), request.param))
    return request.param


def test_full_disk_during_predict_leaves_no_temporary(run_dir, tmp_path, text_input, full_disk):
    output = tmp_path / "out.jsonl"
    output.write_text("previous predictions\n", encoding="utf-8")
    before = snapshot(tmp_path)
    result = predict(run_dir, str(text_input), "-o", str(output))
    one_error(result, str(output), "No space left on device")
    assert snapshot(tmp_path) == before and not temporaries(tmp_path)


def test_full_disk_during_the_evaluation_report_is_one_line(run_dir, tmp_path, full_disk):
    report = tmp_path / "report"
    data = SAMPLE_DIR / "de" / "test.tsv"
    before = snapshot(SAMPLE_DIR)
    result = runner.invoke(app, ["-q", "evaluate", str(run_dir), "--data", str(data), "-o", str(report)])
    one_error(result, str(report), "No space left on device")
    assert not temporaries(report) and not [p for p in report.rglob("*") if p.is_file()]
    assert snapshot(SAMPLE_DIR) == before


# ------------------------------------------------------------------ run folders: locks


def test_a_busy_run_folder_fails_at_once_naming_the_holder(recipe_file, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    holder = {"pid": os.getpid(), "host": socket.gethostname()}
    (run / LOCK).write_text(json.dumps(holder), encoding="utf-8")
    before = snapshot(run, recipe_file)
    result = runner.invoke(app, ["-q", "train", str(recipe_file), "-o", str(run)])
    one_error(result, str(run), f"process {os.getpid()} on {socket.gethostname()}")
    assert snapshot(run, recipe_file) == before and sorted(p.name for p in run.iterdir()) == [LOCK]


def test_a_stale_lock_is_taken_over_with_a_warning(recipe_file, tmp_path):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    run = tmp_path / "run"
    run.mkdir()
    (run / LOCK).write_text(json.dumps({"pid": gone.pid, "host": socket.gethostname()}), encoding="utf-8")
    (run / "metrics.json").write_text("{}\n", encoding="utf-8")  # stops it right after the lock
    result = runner.invoke(app, ["train", str(recipe_file), "-o", str(run)])
    one_error(result, "finished run")
    squashed = "".join(result.stderr.split())  # the log line may be wrapped to the terminal width
    assert "stalelock" in squashed and f"process{gone.pid}on" in squashed
    assert not (run / LOCK).exists() and (run / "metrics.json").read_text() == "{}\n"


def test_only_the_main_rank_takes_the_lock(tmp_path, monkeypatch):
    run = tmp_path / "run"
    run.mkdir()
    lock = json.dumps({"pid": os.getpid(), "host": socket.gethostname()})
    (run / LOCK).write_text(lock, encoding="utf-8")
    (run / "metrics.json").write_text("{}\n", encoding="utf-8")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    with claim_run_folder(run, "train"):
        pass
    assert (run / LOCK).read_text(encoding="utf-8") == lock


# ------------------------------------------------------------------ run folders: contents


@pytest.mark.slow
def test_a_finished_run_needs_overwrite_or_resume(recipe_file, tmp_path):
    run = tmp_path / "run"
    (run / "model").mkdir(parents=True)
    (run / "model" / "old-weights.bin").write_bytes(b"old")
    (run / "metrics.json").write_text('{"old": true}\n', encoding="utf-8")
    (run / "notes.txt").write_text("mine\n", encoding="utf-8")
    before, recipe_before = snapshot(run, recipe_file), snapshot(recipe_file)
    refused = runner.invoke(app, ["-q", "train", str(recipe_file), "-o", str(run)])
    one_error(refused, str(run), "--overwrite")
    both = runner.invoke(app, ["-q", "train", str(recipe_file), "-o", str(run), "--resume", "--overwrite"])
    one_error(both, "--resume", "--overwrite")
    assert snapshot(run, recipe_file) == before and not (run / LOCK).exists()

    result = runner.invoke(app, ["-q", "train", str(recipe_file), "-o", str(run), "--overwrite"])
    assert result.exit_code == 0, result.output
    assert "languages" in json.loads((run / "metrics.json").read_text(encoding="utf-8"))
    assert not (run / "model" / "old-weights.bin").exists() and (run / "model" / "config.json").is_file()
    assert (run / "notes.txt").read_text(encoding="utf-8") == "mine\n"  # not nertool's: kept
    assert not (run / LOCK).exists() and snapshot(recipe_file) == recipe_before


@pytest.mark.parametrize("finished", ["metrics.json", "seed-1/metrics.json", "model/config.json"])
def test_every_kind_of_finished_run_is_noticed(recipe_file, tmp_path, finished):
    run = tmp_path / "run"
    (run / finished).parent.mkdir(parents=True, exist_ok=True)
    (run / finished).write_text("{}\n", encoding="utf-8")
    one_error(runner.invoke(app, ["-q", "train", str(recipe_file), "-o", str(run)]), "finished run")


def test_foreign_files_stop_pretrain_and_transfer(tmp_path):
    recipe = tmp_path / "r.toml"
    recipe.write_text(
        RECIPE + '[pretrain]\ntext = ["sample"]\nlanguages = ["fr"]\nsteps = 1\nblock_size = 64\n'
        '[transfer]\nsources = ["de"]\n',
        encoding="utf-8",
    )
    for command in ("pretrain", "transfer"):
        out = tmp_path / command
        out.mkdir()
        (out / "thesis.tex").write_text("years of work\n", encoding="utf-8")
        before = snapshot(out)
        result = runner.invoke(app, ["-q", command, str(recipe), "-o", str(out)])
        one_error(result, str(out), "thesis.tex", "--overwrite")
        assert snapshot(out) == before and not (out / LOCK).exists()


def test_a_transfer_folder_is_resumed_without_flags(tmp_path):
    out = tmp_path / "transfer"
    (out / "runs" / "de").mkdir(parents=True)
    (out / "runs" / "de" / "metrics.json").write_text("{}\n", encoding="utf-8")
    (out / "config.toml").write_text("seed = 1\n", encoding="utf-8")
    (out / "transfer.json").write_text("{}\n", encoding="utf-8")
    before = snapshot(out)
    with claim_run_folder(out, "transfer"):
        assert (out / LOCK).is_file()
    assert snapshot(out) == before and not (out / LOCK).exists()


# ------------------------------------------------------------------ outputs that cannot be folders


@pytest.mark.parametrize("kind", ["file", "under-a-file"])
def test_output_folder_that_is_a_file_is_one_line(run_dir, recipe_file, tmp_path, kind):
    somefile = tmp_path / "somefile"
    somefile.write_text("precious\n", encoding="utf-8")
    output = somefile if kind == "file" else somefile / "sub"
    data = str(SAMPLE_DIR / "de" / "test.tsv")
    before = snapshot(tmp_path)
    for args in (["train", str(recipe_file)], ["evaluate", str(run_dir), "--data", data]):
        result = runner.invoke(app, ["-q", *args, "-o", str(output)])
        one_error(result, str(output))
    assert snapshot(tmp_path) == before


def test_output_folder_without_permission_is_one_line(run_dir, recipe_file, tmp_path, monkeypatch):
    denied = tmp_path / "locked" / "run"
    real_mkdir = pathlib.Path.mkdir

    def mkdir(self, *args, **kwargs):
        if self == denied:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "mkdir", mkdir)
    data = str(SAMPLE_DIR / "de" / "test.tsv")
    for args in (["train", str(recipe_file)], ["evaluate", str(run_dir), "--data", data]):
        result = runner.invoke(app, ["-q", *args, "-o", str(denied)])
        one_error(result, str(denied), "Permission denied")


# ------------------------------------------------------------------ names built from data


@pytest.mark.parametrize("name", ["../escape.conll", "..", "", "a/b.conll", "a\\b", "nul\0.conll"])
def test_safe_child_refuses_names_that_leave_the_folder(tmp_path, name):
    with pytest.raises(DataError, match="outside"):
        safe_child(tmp_path / "report", name)


def test_safe_child_refuses_a_link_out_of_the_folder(tmp_path):
    report = tmp_path / "report"
    report.mkdir()
    (report / "de-test.conll").symlink_to(tmp_path / "elsewhere.conll")
    with pytest.raises(DataError, match="outside"):
        safe_child(report, "de-test.conll")
    assert safe_child(report, "fr-test.conll") == report / "fr-test.conll"


def test_report_names_from_languages_cannot_escape(tmp_path):
    evaluation = SimpleNamespace(language="../../escaped", split="test")
    with pytest.raises(DataError, match="outside"):
        write_evaluation_report(tmp_path / "a" / "report", {}, [evaluation])  # type: ignore[list-item]
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["metrics.json"]


def test_transfer_run_folders_named_from_languages_cannot_escape(tmp_path):
    from nertool.workflows.transfer import _check_run_folders

    out = tmp_path / "transfer"
    fine = SimpleNamespace(run_dir=out / "runs" / "de+fr")
    _check_run_folders(out, [fine])  # type: ignore[list-item]
    for bad in (out / "runs" / "..", out / "runs" / "a" / "b", tmp_path / "elsewhere"):
        with pytest.raises(DataError, match="outside"):
            _check_run_folders(out, [fine, SimpleNamespace(run_dir=bad)])  # type: ignore[list-item]
