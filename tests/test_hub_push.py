"""``nertool push`` and ``train.push_to_hub`` against a stub of ``huggingface_hub.HfApi`` (no network)."""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path
from types import SimpleNamespace

import huggingface_hub
import pytest
from huggingface_hub import ModelCard
from huggingface_hub.errors import HfHubHTTPError
from typer.testing import CliRunner

from nertool.cli.commands import app
from nertool.config import build_recipe, dump_recipe
from nertool.errors import ConfigError
from nertool.hub.push import HubError
from nertool.workflows.runs import push_run, share_run

runner = CliRunner()
METRICS = {
    "languages": {"de": {"test": {"precision": 0.5, "recall": 0.25, "f1": 0.3333, "sentences": 4}}},
    "best_step": 3,
    "train_sentences": {"de": 10},
}


class StubApi:
    """Records what would be sent to the Hub; ``create_repo`` adds the account's namespace."""

    calls: list[tuple[str, dict]]

    def __init__(self, token=None, fail: Exception | None = None):
        self.calls, self.fail = [], fail

    def create_repo(self, repo_id, **kwargs):
        self.calls.append(("create_repo", {"repo_id": repo_id, **kwargs}))
        if self.fail is not None:
            raise self.fail
        return SimpleNamespace(repo_id=repo_id if "/" in repo_id else f"me/{repo_id}")

    def upload_folder(self, **kwargs):
        self.calls.append(("upload_folder", kwargs))


def make_run(root: Path, **train) -> Path:
    """A finished run folder as ``train`` leaves it, with a checkpoint and a leftover temporary file."""
    recipe = build_recipe({"data": {"source": "sample"}, "train": train})
    (root / "model").mkdir(parents=True)
    (root / "config.toml").write_text(dump_recipe(recipe))
    (root / "metrics.json").write_text(json.dumps(METRICS))
    config = {"architectures": ["XLMRobertaForTokenClassification"], "id2label": {"0": "O", "1": "B-PER"}}
    (root / "model" / "config.json").write_text(json.dumps(config))
    (root / "model" / "model.safetensors").write_bytes(b"weights")
    (root / "model" / ".README.md.abc.part").write_text("half a card")
    (root / "checkpoint").mkdir()
    (root / "checkpoint" / "optimizer.bin").write_bytes(b"state")
    return root


@pytest.fixture
def logged_in(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_test_token")


@pytest.fixture
def logged_out(monkeypatch, tmp_path):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("HF_TOKEN_PATH", str(tmp_path / "hf-home" / "token"))


def uploaded_files(call: dict) -> list[str]:
    """The files ``upload_folder`` would send: those under the folder no ignore pattern matches."""
    folder = Path(call["folder_path"])
    names = [str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()]
    return sorted(n for n in names if not any(fnmatch.fnmatch(n, pat) for pat in call["ignore_patterns"]))


def test_push_uploads_the_model_folder_with_its_card(tmp_path, logged_in):
    run = make_run(tmp_path / "run")
    api = StubApi()
    result = push_run(run, "ner-de", private=True, api=api)
    (create, created), (upload, sent) = api.calls
    assert create == "create_repo" and created == {"repo_id": "ner-de", "private": True, "exist_ok": True}
    assert upload == "upload_folder" and sent["repo_id"] == "me/ner-de"
    assert Path(sent["folder_path"]) == run / "model"
    assert uploaded_files(sent) == ["README.md", "config.json", "model.safetensors"]  # no checkpoint
    assert result.url == "https://huggingface.co/me/ner-de"
    card = ModelCard.load(run / "model" / "README.md")
    assert card.data.model_name == "me/ner-de" and 'model="me/ner-de"' in card.text


def test_push_keeps_a_card_edited_by_hand(tmp_path, logged_in):
    run = make_run(tmp_path / "run")
    push_run(run, "me/a", api=StubApi())
    card = run / "model" / "README.md"
    card.write_text(card.read_text() + "\nLicence: ask me.\n")
    push_run(run, "me/b", api=StubApi())
    assert "Licence: ask me." in card.read_text() and ModelCard.load(card).data.model_name == "me/a"


def test_push_of_a_model_folder_itself(tmp_path, logged_in):
    run = make_run(tmp_path / "run")
    api = StubApi()
    push_run(run / "model", "me/x", api=api)
    assert Path(api.calls[1][1]["folder_path"]) == run / "model"


def test_not_logged_in_is_one_line(tmp_path, logged_out):
    run = make_run(tmp_path / "run")
    result = runner.invoke(app, ["push", str(run), "me/x"])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "hf auth login" in lines[0] and "HF_TOKEN" in lines[0]


def test_a_refused_token_is_one_line(tmp_path, logged_in, monkeypatch):
    import httpx2

    request = httpx2.Request("POST", "https://huggingface.co/api/repos/create")
    refused = HfHubHTTPError("401 Unauthorized", response=httpx2.Response(401, request=request))
    monkeypatch.setattr(huggingface_hub, "HfApi", lambda token=None: StubApi(token, fail=refused))
    result = runner.invoke(app, ["push", str(make_run(tmp_path / "run")), "me/x", "--private"])
    assert result.exit_code == 1
    assert len(result.output.strip().splitlines()) == 1 and "HTTP 401" in result.output
    assert "hf auth login" in result.output


def test_cli_push_succeeds_against_the_stub(tmp_path, logged_in, monkeypatch):
    api = StubApi()
    monkeypatch.setattr(huggingface_hub, "HfApi", lambda token=None: api)
    result = runner.invoke(app, ["push", str(make_run(tmp_path / "run")), "me/x", "--private"])
    assert result.exit_code == 0, result.output
    assert api.calls[0][1]["private"] is True and "https://huggingface.co/me/x" in result.output


@pytest.mark.parametrize("folder", ["empty", "missing"])
def test_a_run_without_model_is_one_line(tmp_path, folder, logged_in):
    run = tmp_path / folder
    if folder == "empty":
        run.mkdir()
    result = runner.invoke(app, ["push", str(run), "me/x"])
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1
    assert "no model here" in result.output


def test_a_bad_repo_id_is_refused_before_the_hub(tmp_path, logged_in):
    with pytest.raises(ConfigError, match="not a Hub repository id"):
        push_run(make_run(tmp_path / "run"), "two words", api=StubApi())


# ------------------------------------------------------------------ train.push_to_hub


def test_push_to_hub_uploads_at_the_end_of_a_run(tmp_path, logged_in, monkeypatch):
    run = make_run(tmp_path / "run", push_to_hub=True, hub_private=True)
    api = StubApi()
    monkeypatch.setattr(huggingface_hub, "HfApi", lambda token=None: api)
    recipe = build_recipe({"data": {"source": "sample"}, "train": {"push_to_hub": True, "hub_private": True}})
    result = share_run(run, recipe, SimpleNamespace(is_main_process=True))
    assert result is not None and result.repo_id == "me/run"  # true: named after the run folder
    assert api.calls[0][1] == {"repo_id": "run", "private": True, "exist_ok": True}
    assert ModelCard.load(run / "model" / "README.md").data.model_name == "me/run"


def test_without_push_to_hub_only_the_card_is_written(tmp_path, logged_out):
    run = make_run(tmp_path / "run")
    assert share_run(run, build_recipe({}), SimpleNamespace(is_main_process=True)) is None
    assert (run / "model" / "README.md").is_file()


def test_push_to_hub_checks_the_login_before_training(tmp_path, logged_out):
    from nertool.workflows.train import train_run

    recipe = build_recipe({"train": {"push_to_hub": "me/x"}})
    with pytest.raises(HubError, match="not logged in"):
        train_run(recipe, tmp_path / "run")
    assert not (tmp_path / "run" / "config.toml").exists()


def test_push_to_hub_is_refused_for_seeds_and_transfer(tmp_path, logged_in):
    from nertool.workflows.train import train_seeds
    from nertool.workflows.transfer import run_transfer

    recipe = build_recipe({"train": {"push_to_hub": "me/x", "seeds": [1, 2]}})
    with pytest.raises(ConfigError, match="seed-<n>"):
        train_seeds(recipe, tmp_path / "seeds")
    with pytest.raises(ConfigError, match="runs/<languages>"):
        run_transfer(recipe, tmp_path / "transfer")


@pytest.mark.parametrize("value", ["two words", "", "a/b/c"])
def test_push_to_hub_must_be_a_repo_id(value):
    with pytest.raises(ConfigError, match=r"train\.push_to_hub"):
        build_recipe({"train": {"push_to_hub": value}})
