"""Hostile and broken model folders: their code never runs, and each fails in one line.

A model folder is input like any other: ``predict``, ``evaluate`` and ``train`` (``model.name``)
read folders from anywhere. A folder whose config asks transformers to import its Python must
be refused without asking (transformers would ask on standard input, which a pipe answers), and
a truncated, malformed or mismatched folder must give one line naming it, never a traceback.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from nertool.cli.commands import app
from nertool.errors import ModelError
from nertool.model.build import load_trained, masked_lm, save_model

runner = CliRunner()
EVIL_AUTO_MAP = {"AutoModelForTokenClassification": "evil.EvilModel", "AutoConfig": "evil.EvilConfig"}
EVIL_CODE = """\
from pathlib import Path
Path({marker!r}).write_text("the folder's code ran")
from transformers import PretrainedConfig, XLMRobertaForTokenClassification
class EvilConfig(PretrainedConfig):
    model_type = "evil-unknown"
class EvilModel(XLMRobertaForTokenClassification):
    config_class = EvilConfig
"""


@pytest.fixture(scope="module")
def trained(tiny_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's tiny run without its checkpoint; every test works on a copy of it."""
    folder = tmp_path_factory.mktemp("hostile") / "run"
    shutil.copytree(tiny_run, folder)
    shutil.rmtree(folder / "checkpoint", ignore_errors=True)
    return folder


def copy_run(trained: Path, tmp_path: Path, mutate: Callable[[Path], None]) -> Path:
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    mutate(run / "model")
    return run


def snapshot(folder: Path) -> dict[str, str]:
    """Every file's bytes (hashed) and mode, to prove a failed command left the folder alone."""
    return {
        str(path.relative_to(folder)): f"{stat.S_IMODE(path.stat().st_mode):o}:"
        + (hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir")
        for path in sorted(folder.rglob("*"))
    }


def edit_config(model: Path, **changes: object) -> None:
    config = json.loads((model / "config.json").read_text())
    config.update(changes)
    (model / "config.json").write_text(json.dumps(config))


def make_evil(model: Path, marker: Path, model_type: str) -> None:
    edit_config(model, auto_map=EVIL_AUTO_MAP, model_type=model_type)
    (model / "evil.py").write_text(EVIL_CODE.format(marker=str(marker)))


def nertool(*args: str, stdin: str) -> subprocess.CompletedProcess[str]:
    """The real command as a user runs it, with a real pipe on standard input."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.run(
        [sys.executable, "-m", "nertool", "-q", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def one_error_line(stderr: str) -> str:
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: ")
    return lines[0]


# ------------------------------------------------------------------ the folder's code never runs


@pytest.mark.parametrize("model_type", ["evil-unknown", "xlm-roberta"])
def test_predict_never_runs_or_asks_about_a_folders_code(trained, tmp_path, model_type):
    marker = tmp_path / "marker"
    run = copy_run(trained, tmp_path, lambda model: make_evil(model, marker, model_type))
    before = snapshot(run)
    result = nertool("predict", str(run), "-", stdin="y\nAngela Merkel\n")
    assert not marker.exists(), "the model folder's Python ran"
    assert result.returncode == 1, result.stderr
    line = one_error_line(result.stderr)
    assert str(run / "model") in line and "model.trust_remote_code" in line
    assert "Do you wish" not in result.stdout + result.stderr
    assert result.stdout == ""
    assert snapshot(run) == before


def test_evaluate_never_runs_a_folders_code(trained, tmp_path):
    marker = tmp_path / "marker"
    run = copy_run(trained, tmp_path, lambda model: make_evil(model, marker, "evil-unknown"))
    result = nertool("evaluate", str(run), "--data", "sample", stdin="y\ny\ny\n")
    assert not marker.exists(), "the model folder's Python ran"
    assert result.returncode == 1, result.stderr
    line = one_error_line(result.stderr)
    assert str(run / "model") in line and "model.trust_remote_code" in line


def test_tokenizer_auto_map_is_refused_too(trained, tmp_path):
    def evil_tokenizer(model: Path) -> None:
        config = json.loads((model / "tokenizer_config.json").read_text())
        config["auto_map"] = {"AutoTokenizer": ["evil.EvilTokenizer", None]}
        (model / "tokenizer_config.json").write_text(json.dumps(config))

    run = copy_run(trained, tmp_path, evil_tokenizer)
    result = runner.invoke(app, ["predict", str(run), "-"], input="Angela Merkel\n")
    assert result.exit_code == 1
    line = one_error_line(result.stderr)
    assert "tokenizer_config.json" in line and "model.trust_remote_code" in line


def test_train_from_an_evil_folder_names_the_recipe_key(trained, tmp_path):
    marker = tmp_path / "marker"
    run = copy_run(trained, tmp_path, lambda model: make_evil(model, marker, "xlm-roberta"))
    recipe = tmp_path / "r.toml"
    recipe.write_text(
        f'[model]\nname = "{run}"\nmax_length = 64\n[data]\nsource = "sample"\n'
        'max_train_samples = 8\neval_languages = ["de"]\n[train]\nepochs = 1\n'
    )
    result = runner.invoke(app, ["train", str(recipe), "-o", str(tmp_path / "out")], input="y\n")
    assert not marker.exists()
    assert result.exit_code == 1
    assert "model.trust_remote_code = true" in one_error_line(result.stderr)


def test_masked_lm_refuses_an_evil_folder(trained, tmp_path):
    marker = tmp_path / "marker"
    run = copy_run(trained, tmp_path, lambda model: make_evil(model, marker, "evil-unknown"))
    with pytest.raises(ModelError, match=r"model\.trust_remote_code"):
        masked_lm(str(run))
    assert not marker.exists()


# ------------------------------------------------------------------ broken folders: one line


def truncate_weights(model: Path) -> None:
    file = model / "model.safetensors"
    file.write_bytes(file.read_bytes()[: file.stat().st_size // 2])


def replace_with_folder(name: str) -> Callable[[Path], None]:
    """A folder where a file should be: unreadable even as root, where chmod 000 is not."""

    def mutate(model: Path) -> None:
        (model / name).unlink()
        (model / name).mkdir()

    return mutate


def drop_classifier(model: Path) -> None:
    weights = load_file(str(model / "model.safetensors"))
    save_file(
        {k: v for k, v in weights.items() if not k.startswith("classifier.")}, model / "model.safetensors"
    )


BROKEN = {
    "truncated weights": (truncate_weights, "model.safetensors is truncated or corrupt; retrain or restore"),
    "empty weights": (lambda m: (m / "model.safetensors").write_bytes(b""), "model.safetensors is truncated"),
    "config not JSON": (
        lambda m: (m / "config.json").write_text('{"model_type": '),
        "config.json:1: not valid JSON",
    ),
    "config a list": (lambda m: (m / "config.json").write_text("[1, 2]"), "config.json: not a JSON object"),
    "tokenizer config not JSON": (
        lambda m: (m / "tokenizer_config.json").write_text("{"),
        "tokenizer_config.json:1",
    ),
    "weights missing": (lambda m: (m / "model.safetensors").unlink(), "model.safetensors"),
    "weights a folder": (replace_with_folder("model.safetensors"), "model.safetensors"),
    "config a folder": (replace_with_folder("config.json"), "no config.json"),
    "no tokenizer": (lambda m: (m / "tokenizer.json").unlink(), "no tokenizer vocabulary"),
    "other shape": (
        lambda m: edit_config(m, hidden_size=256, intermediate_size=512),
        "do not fit config.json",
    ),
    "other label count": (
        lambda m: edit_config(m, id2label={"0": "O", "1": "B-PER", "2": "I-PER"}),
        "classifier.bias: (7,) saved, (3,) by the config",
    ),
    "classifier missing": (drop_classifier, "lack 2 tensors"),
    "config value of wrong type": (lambda m: edit_config(m, hidden_size="big"), "hidden_size"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_model_folder_is_one_line(trained, tmp_path, case):
    mutate, needle = BROKEN[case]
    run = copy_run(trained, tmp_path, mutate)
    before = snapshot(run)
    result = runner.invoke(app, ["predict", str(run), "-"], input="Angela Merkel\n")
    assert result.exit_code == 1, result.output
    line = one_error_line(result.stderr)
    assert str(run) in line and needle in line
    assert result.stdout == ""
    assert snapshot(run) == before


def test_truncated_weights_message_names_the_file_and_the_fix(trained, tmp_path):
    run = copy_run(trained, tmp_path, truncate_weights)
    result = runner.invoke(app, ["evaluate", str(run), "--data", "sample"])
    assert result.exit_code == 1
    line = one_error_line(result.stderr)
    assert f"{run / 'model' / 'model.safetensors'}: model.safetensors is truncated or corrupt" in line
    assert line.endswith("retrain or restore it")


def test_folder_without_config_is_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    result = runner.invoke(app, ["predict", str(tmp_path / "empty"), "-"], input="x\n")
    assert result.exit_code == 1
    assert str(tmp_path / "empty") in one_error_line(result.stderr)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
@pytest.mark.parametrize("name", ["model.safetensors", "config.json"])
def test_unreadable_model_file_is_one_line(trained, tmp_path, name):
    run = copy_run(trained, tmp_path, lambda model: (model / name).chmod(0))
    try:
        result = runner.invoke(app, ["predict", str(run), "-"], input="x\n")
    finally:
        (run / "model" / name).chmod(0o644)
    assert result.exit_code == 1
    assert name in one_error_line(result.stderr)


def test_recipe_pointing_at_a_mismatched_folder_is_one_line(trained, tmp_path):
    run = copy_run(trained, tmp_path, lambda m: edit_config(m, hidden_size=256, intermediate_size=512))
    recipe = tmp_path / "r.toml"
    recipe.write_text(
        f'[model]\nname = "{run}"\nmax_length = 64\n[data]\nsource = "sample"\n'
        'max_train_samples = 8\neval_languages = ["de"]\n[train]\nepochs = 1\n'
    )
    result = runner.invoke(app, ["train", str(recipe), "-o", str(tmp_path / "out")])
    assert result.exit_code == 1
    line = one_error_line(result.stderr)
    assert str(run / "model") in line and "roberta.embeddings" in line and "(128,) saved, (256,)" in line


def test_a_healthy_copy_still_loads(trained, tmp_path):
    """The checks above refuse only what is wrong: the untouched folder predicts."""
    run = copy_run(trained, tmp_path, lambda model: None)
    result = runner.invoke(app, ["predict", str(run), "-"], input="Angela Merkel\n")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.splitlines()[0])["text"] == "Angela Merkel"
    model, _, labels = load_trained(run)
    assert len(labels) == model.config.num_labels


# ------------------------------------------------------------------ file modes


def test_trained_model_files_get_the_umask_mode(trained):
    mask = os.umask(0o022)
    os.umask(mask)
    for file in (trained / "model").iterdir():
        assert stat.S_IMODE(file.stat().st_mode) == 0o666 & ~mask, file.name


def test_save_model_follows_a_stricter_umask(trained, tmp_path):
    model, tokenizer, _ = load_trained(trained)
    previous = os.umask(0o027)
    try:
        save_model(model, tokenizer, tmp_path / "saved")
    finally:
        os.umask(previous)
    modes = {file.name: stat.S_IMODE(file.stat().st_mode) for file in (tmp_path / "saved").iterdir()}
    assert "model.safetensors" in modes
    assert set(modes.values()) == {0o640}, modes
