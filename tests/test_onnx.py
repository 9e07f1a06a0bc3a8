"""The ONNX path: ``nertool export`` writes a folder whose graph tags exactly as the torch model
does, refuses to overwrite what is not its own, leaves nothing behind when it fails, and the
ONNX backend refuses hostile or mismatched folders with one line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from nertool.cli.commands import app
from nertool.errors import DataError, ModelError
from nertool.model.export import export_onnx
from nertool.model.onnx_backend import MANIFEST, ONNX_FILE, require
from nertool.predict import Tagger, unit_from_tokens
from nertool.predict.prefetch import prefetched

SENTENCES = [
    ("Angela", "Merkel", "besuchte", "Paris", "."),
    ("Der", "Rhein", "fließt", "durch", "Basel", "und", "Köln", "."),
    ("Zürich",),
    ("Ein", "sehr", "langer", "Satz", "mit", "vielen", "Wörtern", "über", "die", "Union", "in", "Brüssel")
    * 6,
]


@pytest.fixture(scope="module")
def exported(tiny_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the shared run with its ONNX exports (fp32 at RUN/onnx, int8 at RUN/onnx-int8)."""
    run = tmp_path_factory.mktemp("onnx") / "run"
    shutil.copytree(tiny_run, run)
    export_onnx(run)
    export_onnx(run, quantize=True)
    return run


def tags(run: Path, **load: Any) -> list[list[str]]:
    tagger = Tagger.load(run, device="cpu", **load)
    units = [unit_from_tokens(list(s), "t", i + 1) for i, s in enumerate(SENTENCES)]
    return [list(t.tags) for t in tagger.tag_units(units)]


def test_export_writes_a_checked_self_contained_folder(exported: Path) -> None:
    folder = exported / "onnx"
    manifest = json.loads((folder / MANIFEST).read_text())
    assert (folder / ONNX_FILE).is_file() and (folder / "config.json").is_file()
    assert manifest["quantized"] is False and manifest["max_abs_logit_diff"] <= manifest["tolerance"]
    assert not list(folder.glob("*.safetensors"))  # torch weights stay behind
    assert not list(exported.glob(".*partial"))


def test_onnx_backend_tags_exactly_as_torch(exported: Path) -> None:
    assert tags(exported, backend="onnx") == tags(exported, backend="torch")
    assert tags(exported / "onnx", backend="onnx") == tags(exported, backend="torch")  # the folder itself


def test_int8_export_is_found_with_quantize_and_records_its_agreement(exported: Path) -> None:
    manifest = json.loads((exported / "onnx-int8" / MANIFEST).read_text())
    assert manifest["quantized"] is True and 0.0 <= manifest["int8_tag_agreement"] <= 1.0
    assert Tagger.load(exported, device="cpu", quantized=True, backend="onnx").engine.backend == "onnx"
    with pytest.raises(ModelError, match="full-precision ONNX export"):
        Tagger.load(exported / "onnx", device="cpu", quantized=True, backend="onnx")


def test_auto_takes_onnx_only_where_an_export_exists(exported: Path, tiny_run: Path) -> None:
    assert Tagger.load(exported, device="cpu", backend="auto").engine.backend == "onnx"
    assert Tagger.load(tiny_run, device="cpu", backend="auto").engine.backend == "torch"


def test_onnx_without_an_export_names_the_command(tiny_run: Path) -> None:
    with pytest.raises(ModelError, match=r"nertool export .* --format onnx"):
        Tagger.load(tiny_run, device="cpu", backend="onnx")


def test_torch_backend_on_an_onnx_folder_says_so(exported: Path) -> None:
    with pytest.raises(ModelError, match="use --backend onnx"):
        Tagger.load(exported / "onnx", device="cpu", backend="torch")


def test_export_refuses_what_it_must_not_replace(exported: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="already exists"):
        export_onnx(exported)
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(DataError, match="not an ONNX export"):
        export_onnx(exported, foreign, overwrite=True)
    assert (foreign / "notes.txt").read_text() == "keep me"
    with pytest.raises(DataError, match="model folder it exports"):
        export_onnx(exported, exported / "model", overwrite=True)
    file = tmp_path / "file"
    file.write_text("x")
    with pytest.raises(DataError, match="is a file"):
        export_onnx(exported, file)


def test_a_failed_export_leaves_the_old_one_and_no_partial_folder(
    exported: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "export"
    export_onnx(exported, target)
    before = (target / ONNX_FILE).read_bytes()

    def crash(*args: Any, **kwargs: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("nertool.model.export.copy_model_files", crash)
    with pytest.raises(OSError):
        export_onnx(exported, target, overwrite=True)
    assert (target / ONNX_FILE).read_bytes() == before  # the complete earlier export is untouched
    assert [p.name for p in tmp_path.iterdir()] == ["export"]  # no .export.partial left behind


def test_an_export_whose_logits_differ_is_refused(
    exported: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("nertool.model.export.TOLERANCE", -1.0)  # no graph can pass
    with pytest.raises(ModelError, match="does not export faithfully"):
        export_onnx(exported, tmp_path / "strict")
    assert not (tmp_path / "strict").exists()


def test_a_hostile_onnx_folder_is_refused_before_any_code_runs(exported: Path, tmp_path: Path) -> None:
    folder = tmp_path / "hostile"
    shutil.copytree(exported / "onnx", folder)
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoConfig": "evil.Config"}
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "evil.py").write_text("raise SystemExit('folder code ran')\n")
    with pytest.raises(ModelError):
        Tagger.load(folder, device="cpu", backend="onnx")


def test_a_damaged_graph_is_one_line(exported: Path, tmp_path: Path) -> None:
    folder = tmp_path / "damaged"
    shutil.copytree(exported / "onnx", folder)
    (folder / ONNX_FILE).write_bytes(b"not a graph")
    with pytest.raises(ModelError, match="not a loadable ONNX model"):
        Tagger.load(folder, device="cpu", backend="onnx")


def test_missing_package_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    real = importlib.import_module

    def fake(name: str, *args: Any) -> Any:
        if name == "onnxruntime":
            raise ImportError(name)
        return real(name, *args)

    monkeypatch.setattr(importlib, "import_module", fake)
    with pytest.raises(ModelError, match=r"pip install 'nertool\[onnx\]'"):
        require("onnxruntime", "the ONNX backend")


def test_cli_export_then_predict_with_onnx(exported: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    runner = CliRunner()
    out_dir = tmp_path / "cli-export"
    done = runner.invoke(app, ["export", str(exported), "-o", str(out_dir)])
    assert done.exit_code == 0, done.output
    text = tmp_path / "in.txt"
    text.write_text("Angela Merkel besuchte Paris .\n\nZürich\n", encoding="utf-8")
    outputs = {}
    for backend, model in (("onnx", out_dir), ("torch", exported)):
        target = tmp_path / f"{backend}.jsonl"
        done = runner.invoke(app, ["predict", str(model), str(text), "-o", str(target), "--backend", backend])
        assert done.exit_code == 0, done.output
        outputs[backend] = [json.loads(line)["tags"] for line in target.read_text().splitlines()]
    assert outputs["onnx"] == outputs["torch"] and len(outputs["onnx"]) == 3  # every line, the empty one too


def test_prefetch_keeps_order_raises_in_order_and_stops_its_worker() -> None:
    assert list(prefetched(iter(range(50)))) == list(range(50))

    def failing() -> Any:
        yield 1
        raise ValueError("line 2: bad")

    seen = []
    with pytest.raises(ValueError, match="line 2"):
        for item in prefetched(failing()):
            seen.append(item)
    assert seen == [1]
    closed = []

    def endless() -> Any:
        try:
            n = 0
            while True:
                yield n
                n += 1
        finally:
            closed.append(True)

    for item in prefetched(endless()):
        if item == 3:
            break
    assert closed == [True]  # the consumer stopped early: the worker closed the generator


# ------------------------------------------------------------- the torch-free ONNX path

WATCHED = ("torch", "transformers")
CHILD = """
import sys
from nertool.cli.commands import main
sys.argv = ["nertool", *sys.argv[1:]]
try:
    main()
except SystemExit as done:
    code = done.code
print("LOADED", [name for name in {watched!r} if name in sys.modules])
"""


def run_cli_child(*argv: str) -> str:
    import subprocess
    import sys

    code = CHILD.format(watched=WATCHED)
    done = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_onnx_predict_never_imports_torch_or_transformers(exported: Path, tmp_path: Path) -> None:
    """Most of a predict process's start-up was importing these; the ONNX path needs neither."""
    text = tmp_path / "in.conll"
    text.write_text("Angela\nMerkel\nbesuchte\nParis\n\nZürich\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    printed = run_cli_child("predict", str(exported / "onnx"), str(text), "-o", str(out), "--backend", "onnx")
    assert "LOADED []" in printed
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["tags"] for r in records] == tags_of_words(
        exported, [["Angela", "Merkel", "besuchte", "Paris"], ["Zürich"]]
    )


def tags_of_words(run: Path, sentences: list[list[str]]) -> list[list[str]]:
    return [list(t) for t in Tagger.load(run, device="cpu", backend="torch").tag_words(sentences)]


def test_the_manifest_tokenizer_is_the_one_transformers_loads(exported: Path) -> None:
    from nertool.model.build import load_tokenizer
    from nertool.model.features import encode, flatten
    from nertool.model.onnx_backend import load_rust_tokenizer

    folder = exported / "onnx"
    record = json.loads((folder / MANIFEST).read_text())["tokenizer"]
    rust, loaded = load_rust_tokenizer(folder, record), load_tokenizer(str(folder))
    assert rust is not None and len(rust) == len(loaded) and rust.pad_token_id == loaded.pad_token_id
    words = [list(s) for s in SENTENCES] + [["", " ", "\u200b", "x\u0301", "ＡＢＣ", "ǅ"]]
    assert [f.input_ids for f in flatten(encode(words, rust, max_length=64))] == [
        f.input_ids for f in flatten(encode(words, loaded, max_length=64))
    ]
    for token in ("▁", "<unk>", "no-such-piece-anywhere"):
        assert rust.convert_tokens_to_ids(token) == loaded.convert_tokens_to_ids(token)


def test_a_tokenizer_file_that_would_tokenize_otherwise_is_not_trusted(
    exported: Path, tmp_path: Path
) -> None:
    """Where transformers' tokenizer differs from its tokenizer.json, its own backend is saved beside it."""
    from tokenizers import Tokenizer, normalizers

    from nertool.model.build import load_tokenizer
    from nertool.model.onnx_backend import RUST_TOKENIZER, rust_tokenizer_record

    folder = tmp_path / "copy"
    shutil.copytree(exported / "onnx", folder)
    tokenizer = load_tokenizer(str(folder))
    assert rust_tokenizer_record(tokenizer, folder)["file"] == "tokenizer.json"
    tokenizer.backend_tokenizer.normalizer = normalizers.Lowercase()
    record = rust_tokenizer_record(tokenizer, folder)
    assert record["file"] == RUST_TOKENIZER
    saved = Tokenizer.from_file(str(folder / RUST_TOKENIZER))
    assert saved.encode("ABC Paris").ids == tokenizer.backend_tokenizer.encode("ABC Paris").ids


def test_an_export_without_a_tokenizer_entry_still_loads(exported: Path, tmp_path: Path) -> None:
    folder = tmp_path / "older"
    shutil.copytree(exported / "onnx", folder)
    manifest = json.loads((folder / MANIFEST).read_text())
    del manifest["tokenizer"]
    (folder / MANIFEST).write_text(json.dumps(manifest))
    assert tags(folder, backend="onnx") == tags(exported, backend="torch")


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda m, c: m["tokenizer"].update(file="../../../etc/passwd"), "tokenizer entry is damaged"),
        (lambda m, c: m["tokenizer"].update(pad_token_id="1"), "tokenizer entry is damaged"),
        (lambda m, c: m["tokenizer"].update(file="missing.json"), "not a loadable tokenizer"),
        (lambda m, c: c.update(max_position_embeddings="514"), "not a positive integer"),
        (lambda m, c: c.update(vocab_size=True), "not a positive integer"),
        (lambda m, c: c.pop("id2label"), "no id2label"),
        (lambda m, c: c.update(id2label={"0": "O", "5": "B-PER"}), "not the numbers"),
        (lambda m, c: c.update(model_type="evil"), None),  # read as data: nothing is built from it
    ],
)
def test_a_damaged_export_is_one_line(
    exported: Path, tmp_path: Path, damage: Any, message: str | None
) -> None:
    folder = tmp_path / "damaged"
    shutil.copytree(exported / "onnx", folder)
    manifest = json.loads((folder / MANIFEST).read_text())
    config = json.loads((folder / "config.json").read_text())
    damage(manifest, config)
    (folder / MANIFEST).write_text(json.dumps(manifest))
    (folder / "config.json").write_text(json.dumps(config))
    if message is None:
        assert tags(folder, backend="onnx") == tags(exported, backend="torch")
        return
    with pytest.raises(ModelError, match=message):
        Tagger.load(folder, device="cpu", backend="onnx")


def test_a_tokenizer_file_that_is_not_a_tokenizer_is_one_line(exported: Path, tmp_path: Path) -> None:
    folder = tmp_path / "garbled"
    shutil.copytree(exported / "onnx", folder)
    (folder / "tokenizer.json").write_text('{"version": "1.0", "model": 7}')
    with pytest.raises(ModelError, match="not a loadable tokenizer"):
        Tagger.load(folder, device="cpu", backend="onnx")


def test_threads_reach_the_backend_that_computes(exported: Path) -> None:
    import torch

    before = torch.get_num_threads()
    try:
        onnx = Tagger.load(exported, device="cpu", backend="onnx", threads=2)
        assert onnx.model.get_session_options().intra_op_num_threads == 2
        Tagger.load(exported, device="cpu", backend="torch", threads=1)
        assert torch.get_num_threads() == 1
        torch.set_num_threads(3)  # no count given: the ONNX session follows torch's
        assert (
            Tagger.load(exported, device="cpu", backend="onnx")
            .model.get_session_options()
            .intra_op_num_threads
            == 3
        )
    finally:
        torch.set_num_threads(before)
