"""Every bad input through the real CLI: exit code 1, one line naming file and line, no traceback."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from nertool.cli.commands import app
from nertool.errors import TrainingError
from nertool.train.loop import Loop, LoopSettings

BAD = Path(__file__).resolve().parent / "data" / "bad"
runner = CliRunner()

# (file, line the message must name)
CLI_CASES = [
    ("non_utf8.tsv", 3),
    ("one_column.tsv", 3),
    ("three_columns.tsv", 3),
    ("tag_no_prefix.tsv", 2),
    ("tag_underscore.tsv", 7),
    ("tag_lowercase.tsv", 1),
    ("not_json.jsonl", 2),
    ("unequal.jsonl", 3),
    ("truncated_utf8.tsv", 3),
    ("in_cr_non_utf8.tsv", 3),
    ("in_tokens_string.jsonl", 2),
    ("in_tokens_number.jsonl", 3),
    ("in_tags_int.jsonl", 2),
    ("in_token_item_int.jsonl", 3),
    ("in_not_object.jsonl", 2),
]


def error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("error:")]


@pytest.mark.parametrize(("name", "line"), CLI_CASES)
def test_inspect_bad_file_is_one_error_line(name, line):
    result = runner.invoke(app, ["data", "inspect", str(BAD / name)])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    [message] = error_lines(result.output)
    assert f"{name}:{line}:" in message


@pytest.mark.parametrize("name", ["empty.tsv", "blank_lines.tsv"])
def test_file_without_sentences_is_an_error(name):
    result = runner.invoke(app, ["data", "inspect", str(BAD / name)])
    assert result.exit_code == 1
    assert "no sentences" in result.output and name in result.output


def test_orphan_inside_tag_is_repaired_with_a_warning_naming_the_line(caplog):
    result = runner.invoke(app, ["data", "inspect", str(BAD / "orphan_inside.tsv")])
    assert result.exit_code == 0, result.output
    assert "orphan_inside.tsv:3" in result.output and "repaired" in result.output


@pytest.mark.parametrize(
    "name", ["bom.tsv", "crlf.tsv", "odd_characters.tsv", "in_cr_only.tsv", "in_mixed_endings.tsv"]
)
def test_tolerated_oddities_read_cleanly(name):
    result = runner.invoke(app, ["data", "inspect", str(BAD / name)])
    assert result.exit_code == 0, result.output


def test_five_thousand_word_sentence_is_read(tmp_path):
    path = tmp_path / "long.tsv"
    path.write_text(
        "".join(f"w{i}\t{'B-PER' if i % 7 == 0 else 'O'}\n" for i in range(5000)), encoding="utf-8"
    )
    result = runner.invoke(app, ["data", "inspect", str(path)])
    assert result.exit_code == 0, result.output
    assert "5000" in result.output


def test_wrong_type_in_recipe(tmp_path):
    recipe = tmp_path / "bad.toml"
    recipe.write_text('[train]\nepochs = "many"\n')
    result = runner.invoke(app, ["train", str(recipe)])
    assert result.exit_code == 1
    assert "train.epochs" in result.output and "bad.toml" in result.output


def test_label_unknown_to_the_model_is_an_error_not_a_silent_o(tiny_run, tmp_path):
    data = tmp_path / "misc.tsv"
    data.write_text("Berlin\tB-LOC\nist\tO\nschön\tB-MISC\n", encoding="utf-8")
    report = tmp_path / "report"
    result = runner.invoke(
        app, ["evaluate", str(tiny_run), "--data", str(data), "--split", "train", "-o", str(report)]
    )
    assert result.exit_code == 1
    assert "B-MISC" in result.output and "misc.tsv" in result.output
    assert not (report / "metrics.json").exists(), "a failed evaluation must not leave a report"


class NaNLossModel(torch.nn.Module):
    """Stands in for a model whose loss blows up: the guard must skip, then stop."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(2, 2))
        self.config = type("Config", (), {"pad_token_id": 0})()

    def forward(self, input_ids, attention_mask, labels=None):
        loss = (self.weight.sum() * math.nan) if labels is not None else None
        return type("Output", (), {"loss": loss})()


@pytest.mark.slow  # the first AdamW of a session imports torch's compiler stack (seconds)
def test_non_finite_losses_skip_steps_then_abort(tmp_path):
    from nertool.model.align import Feature

    features = [Feature(i, (0, 5, 2), (-1, 0, -1), 0, 1, (-100, 1, -100)) for i in range(40)]
    settings = LoopSettings(epochs=1, batch_size=2, learning_rate=1e-3, max_nonfinite_steps=3)
    loop = Loop(NaNLossModel(), features, settings, tmp_path)
    with pytest.raises(TrainingError, match="max_nonfinite_steps"):
        loop.run()
    assert loop.state.nonfinite_steps == 4
    assert torch.equal(loop.model.weight.detach(), torch.ones(2, 2)), "a skipped step must not update weights"


@pytest.mark.parametrize(
    "args",
    [
        ["predict", "no/such/run", "x.txt", "--output-format", "xml"],
        ["predict", "no/such/run", "x.txt", "--text-mode", "page", "-o", "out.jsonl"],
        ["evaluate", "no/such/run", "--data", "no/such/data", "--split", "dev,holdout"],
    ],
)
def test_an_unknown_choice_is_a_usage_error_before_the_model_or_data_is_looked_at(args):
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "Invalid value" in result.output and "not found" not in result.output
    assert "Traceback" not in result.output
