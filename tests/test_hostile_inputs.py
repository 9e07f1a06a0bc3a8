"""Hostile inputs through the real CLI: nothing is misread silently, every bad value fails early.

Each case checks what a user would meet: the exit code (1 for bad input, 2 for a bad option),
one ``error:`` line naming the file (and line), no traceback, inputs unchanged byte for byte and
nothing written outside ``-o``.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

import nertool.data.lines
from nertool.cli.commands import app
from nertool.data.readers import read_sentences
from nertool.predict.readers import iter_units

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "nertool" / "resources" / "sample"
BAD = Path(__file__).resolve().parent / "data" / "bad"
runner = CliRunner()


def error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("error:")]


def one_error(result, *words: str) -> str:
    """The single ``error:`` line of a failed command (exit 1), holding every one of ``words``."""
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    [message] = error_lines(result.output)
    for word in words:
        assert word in message, message
    return message


def usage_error(result, *words: str) -> str:
    """A usage error: exit 2, no traceback, the message (un-boxed, one string) holds ``words``."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    flat = " ".join(re.sub(r"[│╭╮╰╯─]", " ", result.output).split())
    for word in words:
        assert word in flat, flat
    return flat


def digest(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` and a hash of its bytes: inputs must stay as they were."""
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def with_endings(source: Path, target: Path, ending: bytes) -> Path:
    """A copy of ``source`` with every LF replaced by ``ending``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(source.read_bytes().replace(b"\n", ending))
    return target


def mixed_endings(source: Path, target: Path) -> Path:
    """A copy of ``source`` whose line ends cycle through CR, CRLF and LF.

    In this order a CR is never followed by an empty line ended by LF: that pair *is* a CRLF.
    """
    lines = source.read_bytes().split(b"\n")
    endings = [b"\r", b"\r\n", b"\n"]
    target.write_bytes(b"".join(line + endings[i % 3] for i, line in enumerate(lines[:-1])) + lines[-1])
    return target


@pytest.fixture(scope="module")
def tiny_model(tiny_run):
    """The session's tiny run (see conftest)."""
    return tiny_run


# ---------------------------------------------------------------- line endings: read, not misread


@pytest.mark.parametrize("kind", ["cr", "mixed"])
def test_cr_only_and_mixed_endings_read_the_same_sentences_as_lf(tmp_path, kind):
    lf = SAMPLE / "de" / "train.tsv"
    other = tmp_path / f"{kind}.tsv"
    if kind == "cr":
        with_endings(lf, other, b"\r")
    else:
        mixed_endings(lf, other)
    assert b"\r" in other.read_bytes()
    expected = list(read_sentences(lf))
    assert len(expected) > 100
    assert list(read_sentences(other)) == expected  # tokens, tags and start lines
    lf_result = runner.invoke(app, ["data", "inspect", str(lf)])
    other_result = runner.invoke(app, ["data", "inspect", str(other)])
    assert other_result.exit_code == 0, other_result.output
    assert f"│ {len(expected)} " in other_result.output
    table = [line for line in other_result.output.splitlines() if "│" in line]
    assert table == [line for line in lf_result.output.splitlines() if "│" in line]


def test_cr_only_corpus_folder_trains_on_every_sentence(tmp_path):
    """A whole corpus saved with CR line ends: the same counts per language and split as the LF one."""
    corpus = tmp_path / "corpus"
    for path in SAMPLE.rglob("*.tsv"):
        with_endings(path, corpus / path.relative_to(SAMPLE), b"\r")
    before = digest(corpus)
    lf = runner.invoke(app, ["data", "inspect", str(SAMPLE)])
    cr = runner.invoke(app, ["data", "inspect", str(corpus)])
    assert cr.exit_code == 0, cr.output
    rows = [line for line in cr.output.splitlines() if "│" in line]
    assert rows == [line for line in lf.output.splitlines() if "│" in line]
    assert digest(corpus) == before


@pytest.mark.slow
@pytest.mark.parametrize("ending", [b"\r", b"\r\n"])
def test_predict_reads_cr_and_crlf_text_like_lf(tiny_model, tmp_path, ending):
    lf = tmp_path / "lf" / "in.txt"
    lf.parent.mkdir()
    lf.write_text("Angela Merkel besuchte Paris .\n\nDer Rhein fließt durch Köln .\n", encoding="utf-8")
    other = with_endings(lf, tmp_path / "other" / "in.txt", ending)
    before = digest(tmp_path)
    outputs = []
    for source in (lf, other):
        out = tmp_path / f"{source.parent.name}.conll"
        result = runner.invoke(
            app, ["predict", str(tiny_model), str(source), "-o", str(out), "--output-format", "conll"]
        )
        assert result.exit_code == 0, result.output
        outputs.append(out.read_text(encoding="utf-8"))
    assert outputs[0] == outputs[1] and "Rhein\t" in outputs[0]
    assert len(list(iter_units([str(other)]))) == 3  # the empty line is a unit too
    assert [(u.line, u.words) for u in iter_units([str(other)])] == [
        (u.line, u.words) for u in iter_units([str(lf)])
    ]
    assert {k: v for k, v in digest(tmp_path).items() if k in before} == before


def test_bad_byte_in_cr_only_file_names_the_right_line():
    result = runner.invoke(app, ["data", "inspect", str(BAD / "in_cr_non_utf8.tsv")])
    one_error(result, "in_cr_non_utf8.tsv:3:", "byte 21")


# ---------------------------------------------------------------- JSONL field types


@pytest.mark.parametrize(
    ("name", "line", "field"),
    [
        ("in_tokens_string.jsonl", 2, "'tokens'"),
        ("in_tokens_number.jsonl", 3, "'tokens'"),
        ("in_tags_int.jsonl", 2, "'ner_tags'"),
        ("in_token_item_int.jsonl", 3, "'tokens'"),
    ],
)
def test_jsonl_field_of_the_wrong_type_names_file_line_and_field(name, line, field):
    before = (BAD / name).read_bytes()
    result = runner.invoke(app, ["data", "inspect", str(BAD / name)])
    one_error(result, f"{name}:{line}:", field)
    assert (BAD / name).read_bytes() == before


def test_string_tokens_are_never_letters(tmp_path):
    """``"tokens": "Berlin"`` with a six-letter tag string once read as six one-letter words."""
    path = tmp_path / "letters.jsonl"
    path.write_text('{"tokens": "Berlin", "ner_tags": "OOOOOO"}\n', encoding="utf-8")
    one_error(runner.invoke(app, ["data", "inspect", str(path)]), "letters.jsonl:1:", "'tokens'", "list")


def test_predict_jsonl_tokens_string_is_an_error(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text('{"tokens": ["ok"]}\n{"tokens": "Berlin"}\n', encoding="utf-8")
    units = iter_units([str(path)])
    next(units)
    with pytest.raises(Exception, match=r"in\.jsonl:2: .*tokens"):
        next(units)


# ---------------------------------------------------------------- option values (exit 2, before work)


@pytest.mark.parametrize(
    "args",
    [
        ["data", "inspect", "sample", "--format", "bogus"],
        ["evaluate", "no-such-model", "--data", "sample", "--format", "bogus"],
        ["compare", "a", "b", "--data", "sample", "--format", "bogus"],
    ],
)
def test_unknown_format_is_a_usage_error(args):
    usage_error(runner.invoke(app, args), "--format", "bogus", "token_tag")


@pytest.mark.parametrize(
    "args",
    [
        ["evaluate", "no-such-model", "--data", "sample", "--split", "bogus"],
        ["evaluate", "no-such-model", "--data", "sample", "--split", "test,bogus"],
        ["compare", "a", "b", "--data", "sample", "--split", "bogus"],
    ],
)
def test_unknown_split_is_a_usage_error(args):
    usage_error(runner.invoke(app, args), "--split", "bogus", "validation")


@pytest.mark.parametrize(
    ("option", "value", "word"),
    [
        ("--input-format", "bogus", "conll"),
        ("--output-format", "bogus", "spans-tsv"),
        ("--text-mode", "bogus", "paragraph"),
        ("--encoding", "utf-9", "unknown encoding"),
        ("--device", "bogus", "unknown device"),
        ("--device", "cuda:x", "unknown device"),
        ("--batch-size", "0", "--batch-size"),
        ("--max-tokens", "-5", "--max-tokens"),
    ],
)
def test_bad_predict_option_fails_before_the_model_loads(tmp_path, option, value, word):
    source = tmp_path / "in.txt"
    source.write_text("Berlin\n", encoding="utf-8")
    # the model does not exist: a usage error proves the option was checked first
    usage_error(runner.invoke(app, ["predict", str(tmp_path / "no-model"), str(source), option, value]), word)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.txt"]


def test_cuda_without_a_cuda_device_is_one_clear_usage_error(monkeypatch, tmp_path):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    source = tmp_path / "in.txt"
    source.write_text("Berlin\n", encoding="utf-8")
    for device in ("cuda", "cuda:0"):
        result = runner.invoke(app, ["predict", str(tmp_path / "no-model"), str(source), "--device", device])
        usage_error(result, "--device", "no CUDA device is available")


def test_missing_predict_input_fails_before_the_model_loads(tmp_path):
    result = runner.invoke(app, ["predict", str(tmp_path / "no-model"), str(tmp_path / "missing.txt")])
    one_error(result, "missing.txt", "no such file")


# ---------------------------------------------------------------- language codes


@pytest.mark.parametrize("languages", ["../../x", "de,../x", "a/b", "de fr", "x" * 33, "..", "de,,"])
def test_language_that_is_not_a_code_writes_nothing(tmp_path, languages):
    report = tmp_path / "a" / "b" / "REP"
    result = runner.invoke(
        app, ["evaluate", "no-such-model", "--data", "sample", "--languages", languages, "-o", str(report)]
    )
    if languages == "de,,":  # empty items are dropped: a valid list, so the (missing) model is the error
        one_error(result, "no-such-model")
    else:
        usage_error(result, "--languages", "not a language code")
    assert list(tmp_path.iterdir()) == [], "nothing may be written, least of all outside -o"


def test_inspect_and_compare_check_languages_too(tmp_path):
    usage_error(
        runner.invoke(app, ["data", "inspect", "sample", "--languages", "../de"]), "not a language code"
    )
    usage_error(
        runner.invoke(app, ["compare", "a", "b", "--data", "sample", "--languages", "de/.."]),
        "not a language code",
    )


def test_corpus_folder_whose_name_is_not_a_code_is_skipped_with_a_warning(tmp_path):
    corpus = tmp_path / "corpus"
    (corpus / "de").mkdir(parents=True)
    (corpus / "my data").mkdir()
    (corpus / "de" / "train.tsv").write_bytes((SAMPLE / "de" / "train.tsv").read_bytes())
    (corpus / "my data" / "train.tsv").write_bytes((SAMPLE / "fr" / "train.tsv").read_bytes())
    result = runner.invoke(app, ["data", "inspect", str(corpus)])
    assert result.exit_code == 0, result.output
    flat = " ".join(result.output.split())
    assert "my data" in flat and "not a language code" in flat
    rows = [line for line in result.output.splitlines() if "│ train" in line]
    assert len(rows) == 1 and "de" in rows[0]


def test_corpus_folder_with_no_language_folders_is_an_error(tmp_path):
    (tmp_path / "empty").mkdir()
    one_error(
        runner.invoke(app, ["data", "inspect", str(tmp_path / "empty")]), "empty", "no language folders"
    )


# ---------------------------------------------------------------- recipe numbers and languages


RECIPE_BASE = {"model": 'name = "scratch:tiny"\nmax_length = 32', "data": "max_train_samples = 8"}


@pytest.mark.parametrize(
    ("table", "body", "key"),
    [
        ("train", "epochs = inf", "train.epochs"),
        ("train", "epochs = nan", "train.epochs"),
        ("train", "learning_rate = nan", "train.learning_rate"),
        ("train", "batch_size = -8", "train.batch_size"),
        ("train", "warmup_ratio = 1.5", "train.warmup_ratio"),
        ("train", "max_grad_norm = nan", "train.max_grad_norm"),
        ("train", "weight_decay = -inf", "train.weight_decay"),
        ("data", "fractions = { de = -0.5 }", "data.fractions"),
        ("data", "fractions = { de = 0.0 }", "data.fractions"),
        ("data", "fractions = { de = 2.0 }", "data.fractions"),
        ("data", 'fractions = { "../x" = 0.5 }', "data.fractions"),
        ("data", 'train_languages = ["../../x"]', "data.train_languages"),
        ("data", 'eval_languages = ["de", "a b"]', "data.eval_languages"),
        ("transfer", 'sources = [["de", "../fr"]]', "transfer.sources"),
        ("transfer", 'target_language = "x/y"', "transfer.target_language"),
        ("pretrain", 'languages = [""]', "pretrain.languages"),
        ("model", "max_length = 0", "model.max_length"),
        ("model", "max_length = 100000000", "model.max_length"),
    ],
)
def test_out_of_range_recipe_value_fails_before_training(tmp_path, table, body, key):
    tables = dict(RECIPE_BASE)
    tables[table] = "\n".join(line for line in (tables.get(table, ""), body) if line)
    if table == "model" and body.startswith("max_length"):
        tables[table] = 'name = "scratch:tiny"\n' + body
    recipe = tmp_path / "bad.toml"
    recipe.write_text("".join(f"[{name}]\n{text}\n" for name, text in tables.items()), encoding="utf-8")
    before = recipe.read_bytes()
    out = tmp_path / "run"
    result = runner.invoke(app, ["train", str(recipe), "-o", str(out)])
    one_error(result, "bad.toml", key)
    assert not out.exists(), "the recipe must be refused before anything is written"
    assert recipe.read_bytes() == before


# ---------------------------------------------------------------- files the system refuses


def test_unreadable_data_file_is_one_line(tmp_path, monkeypatch):
    path = tmp_path / "locked.tsv"
    path.write_text("Berlin\tB-LOC\n", encoding="utf-8")
    path.chmod(0)
    if os.geteuid() == 0:  # root reads chmod 000 files: make the open fail as it would for a user

        def refuse(name, *args, **kwargs):
            raise PermissionError(errno.EACCES, "Permission denied", str(name))

        monkeypatch.setattr(nertool.data.lines, "open", refuse, raising=False)
    try:
        result = runner.invoke(app, ["data", "inspect", str(path)])
        one_error(result, "locked.tsv", "Permission denied")
    finally:
        path.chmod(0o644)


def test_folder_where_a_data_file_belongs(tmp_path):
    """Fails as root too: a corpus language folder whose split 'file' is a folder, and a folder input."""
    corpus = tmp_path / "corpus"
    (corpus / "de" / "train.tsv").mkdir(parents=True)
    one_error(runner.invoke(app, ["data", "inspect", str(corpus)]), "no language folders")
    (tmp_path / "recipe-folder.toml").mkdir()
    one_error(
        runner.invoke(app, ["train", str(tmp_path / "recipe-folder.toml")]), "recipe-folder.toml", "folder"
    )


def test_dangling_symlink_as_data_file(tmp_path):
    link = tmp_path / "gone.tsv"
    link.symlink_to(tmp_path / "deleted.tsv")
    one_error(runner.invoke(app, ["data", "inspect", str(link)]), "gone.tsv", "symbolic link")


def test_dangling_symlink_as_predict_input(tmp_path):
    link = tmp_path / "gone.txt"
    link.symlink_to(tmp_path / "deleted.txt")
    one_error(runner.invoke(app, ["predict", str(tmp_path / "model"), str(link)]), "gone.txt")


def test_output_folder_that_is_a_file(tmp_path):
    recipe = tmp_path / "r.toml"
    recipe.write_text('[model]\nname = "scratch:tiny"\n[data]\nmax_train_samples = 8\n', encoding="utf-8")
    taken = tmp_path / "taken"
    taken.write_text("keep me\n", encoding="utf-8")
    one_error(runner.invoke(app, ["train", str(recipe), "-o", str(taken)]), "taken")
    assert taken.read_text(encoding="utf-8") == "keep me\n"


def test_unreadable_recipe_is_one_line(tmp_path, monkeypatch):
    recipe = tmp_path / "r.toml"
    recipe.write_text("[train]\nepochs = 1\n", encoding="utf-8")

    def refuse(self, *args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_text", refuse)
    one_error(runner.invoke(app, ["train", str(recipe)]), "r.toml", "Permission denied", "permissions")


# ---------------------------------------------------------------- the error boundary itself


class SafetensorError(Exception):
    """Stands in for ``safetensors_rust.SafetensorError`` (matched by name: no heavy import)."""


def _pydantic_error() -> Exception:
    from pydantic import BaseModel

    class Settings(BaseModel):
        size: int

    try:
        Settings.model_validate({"size": "big"})
    except Exception as error:
        return error
    raise AssertionError("unreachable")


LEAKS = [
    (
        OSError(errno.ENOSPC, "No space left on device", "/runs/x/model.safetensors"),
        ["model.safetensors", "free space"],
    ),
    (IsADirectoryError(errno.EISDIR, "Is a directory", "/data/de"), ["/data/de", "folder"]),
    (FileExistsError(errno.EEXIST, "File exists", "/runs/x"), ["/runs/x", "already exists"]),
    (PermissionError(errno.EACCES, "Permission denied", "/x/y.tsv"), ["/x/y.tsv", "permissions"]),
    (json.JSONDecodeError("Expecting value", "{", 1), ["invalid JSON"]),
    (UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"), ["utf-8", "invalid start byte"]),
    (SafetensorError("header too large"), ["safetensors", "header too large"]),
    (_pydantic_error(), ["invalid setting size"]),
]


@pytest.mark.parametrize(("error", "words"), LEAKS, ids=lambda value: type(value).__name__)
def test_leaked_standard_errors_become_one_line(monkeypatch, error, words):
    def leak(*args, **kwargs):
        raise error

    monkeypatch.setattr("nertool.workflows.inspection.inspect_source", leak)
    one_error(runner.invoke(app, ["data", "inspect", "sample"]), *words)


def test_a_bug_is_one_line_naming_the_debug_switch(monkeypatch):
    def bug(*args, **kwargs):
        raise ZeroDivisionError("division by zero\nsecond line")

    monkeypatch.setattr("nertool.workflows.inspection.inspect_source", bug)
    monkeypatch.delenv("NERTOOL_DEBUG", raising=False)
    message = one_error(
        runner.invoke(app, ["data", "inspect", "sample"]), "internal error", "ZeroDivisionError"
    )
    assert "NERTOOL_DEBUG=1" in message and "second line" in message
    monkeypatch.setenv("NERTOOL_DEBUG", "1")
    result = runner.invoke(app, ["data", "inspect", "sample"])
    assert isinstance(result.exception, ZeroDivisionError), "NERTOOL_DEBUG=1 lets the traceback through"


def test_interrupt_is_exit_130(monkeypatch):
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("nertool.workflows.inspection.inspect_source", interrupt)
    result = runner.invoke(app, ["data", "inspect", "sample"])
    assert result.exit_code == 130 and "interrupted" in result.output


def test_pretraining_text_with_cr_only_endings_is_one_document_per_line(tmp_path):
    """Raw pre-training text saved with CR line ends must not collapse into one document."""
    from nertool.pretrain.text import _file_documents

    lf, cr = tmp_path / "lf.txt", tmp_path / "cr.txt"
    lf.write_bytes(b"Angela Merkel besuchte Paris .\nDie Bahn streikt .\r\nRoma vince\n")
    cr.write_bytes(lf.read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r"))
    assert _file_documents(cr) == _file_documents(lf)
    assert len(_file_documents(cr)) == 3
