"""Prediction input/output: readers for each format, decoding errors, entities, atomic writers."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest

from nertool.errors import DataError
from nertool.predict.readers import (
    Entity,
    Unit,
    entities_for,
    expand_inputs,
    format_of,
    iter_units,
    tag_unit,
    unit_from_text,
    unit_from_tokens,
)
from nertool.predict.writers import SPANS_TSV_HEADER, open_writer

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def _write(path: Path, data: bytes) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return str(path)


def _texts(units: list[Unit]) -> list[str]:
    return [unit.text for unit in units]


# ---------------------------------------------------------------- text input


def test_text_lines_keep_empty_lines_as_units(tmp_path: Path) -> None:
    source = _write(tmp_path / "in.txt", b"Angela Merkel\n\nin Paris.\n")
    units = list(iter_units([source]))
    assert _texts(units) == ["Angela Merkel", "", "in Paris."]
    assert [unit.line for unit in units] == [1, 2, 3]
    assert [unit.id for unit in units] == [f"{source}:1", f"{source}:2", f"{source}:3"]
    assert units[1].words == () and units[1].starts == ()
    assert units[2].words == ("in", "Paris", ".")
    assert (units[2].starts, units[2].ends) == ((0, 3, 8), (2, 8, 9))


def test_last_line_without_newline_is_read(tmp_path: Path) -> None:
    source = _write(tmp_path / "in.txt", b"one\ntwo")
    assert _texts(list(iter_units([source]))) == ["one", "two"]


def test_paragraph_mode(tmp_path: Path) -> None:
    source = _write(tmp_path / "in.txt", b"\nFirst line\nsame paragraph\n  \n\nSecond\n")
    units = list(iter_units([source], text_mode="paragraph"))
    assert _texts(units) == ["First line\nsame paragraph", "Second"]
    assert [unit.line for unit in units] == [2, 6]
    assert units[0].starts[2] == len("First line\n")


def test_file_mode(tmp_path: Path) -> None:
    source = _write(tmp_path / "in.txt", b"Berlin\r\n\r\nRome\r\n")
    units = list(iter_units([source], text_mode="file"))
    assert len(units) == 1
    assert units[0].text == "Berlin\n\nRome"
    assert units[0].words == ("Berlin", "Rome") and units[0].starts == (0, 8)
    assert units[0].id == f"{source}:1"


def test_crlf_is_not_part_of_the_text(tmp_path: Path) -> None:
    source = _write(tmp_path / "in.txt", b"Lyon est belle\r\nNice\r\n")
    assert _texts(list(iter_units([source]))) == ["Lyon est belle", "Nice"]


def test_utf8_bom_is_dropped_and_offsets_start_after_it(tmp_path: Path) -> None:
    source = _write(tmp_path / "in.txt", "\ufeffMünchen liegt\nin Bayern\n".encode())
    units = list(iter_units([source]))
    assert units[0].text == "München liegt"
    assert units[0].starts == (0, 8)


def test_other_encoding(tmp_path: Path) -> None:
    source = _write(tmp_path / "in.txt", "Zürich\n".encode("latin-1"))
    assert _texts(list(iter_units([source], encoding="latin-1"))) == ["Zürich"]


def test_utf16_is_decoded_across_line_chunks(tmp_path: Path) -> None:
    source = _write(tmp_path / "in.txt", "Köln\nBonn\n".encode("utf-16"))
    assert _texts(list(iter_units([source], encoding="utf-16"))) == ["Köln", "Bonn"]


# ---------------------------------------------------------------- decoding errors


def test_invalid_utf8_names_file_line_and_byte_offset(tmp_path: Path) -> None:
    source = _write(tmp_path / "bad.txt", b"ok\nalso ok\nbad \xff here\n")
    units = iter_units([source])
    assert next(units).text == "ok"
    with pytest.raises(DataError) as caught:
        list(units)
    message = str(caught.value)
    assert message.startswith(f"{source}:3: ")
    assert "byte offset 15" in message and "0xff" in message and "--encoding" in message
    assert caught.value.line == 3 and caught.value.path == source


def test_truncated_sequence_at_end_of_file(tmp_path: Path) -> None:
    source = _write(tmp_path / "cut.txt", b"abc\nde\xe2\x82")
    with pytest.raises(DataError, match=r"cut\.txt:2: .*byte offset 6"):
        list(iter_units([source]))


def test_bom_counts_in_byte_offsets(tmp_path: Path) -> None:
    source = _write(tmp_path / "bom.txt", b"\xef\xbb\xbfab\xc3(\n")
    with pytest.raises(DataError, match=r"bom\.txt:1: .*byte offset 5"):
        list(iter_units([source]))


def test_unknown_encoding_fails_before_reading(tmp_path: Path) -> None:
    source = _write(tmp_path / "in.txt", b"x\n")
    with pytest.raises(DataError, match="unknown encoding 'utf-9'"):
        iter_units([source], encoding="utf-9")


# ---------------------------------------------------------------- CoNLL and JSONL input


def test_conll_first_column_docstart_and_sentences(tmp_path: Path) -> None:
    text = "-DOCSTART- -X- O O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\n\n\nPeter NNP B-NP B-PER\n"
    source = _write(tmp_path / "in.conll", text.encode())
    units = list(iter_units([source]))
    assert [unit.words for unit in units] == [("EU", "rejects"), ("Peter",)]
    assert [unit.line for unit in units] == [3, 7]
    assert units[0].text == "EU rejects" and units[0].starts == (0, 3) and units[0].ends == (2, 10)


def test_conll_tab_columns_keep_tokens_as_given(tmp_path: Path) -> None:
    source = _write(tmp_path / "in.tsv", b"de:Berlin\tB-LOC\nNew York\tB-LOC\r\n")
    (unit,) = iter_units([source])
    assert unit.words == ("de:Berlin", "New York")
    assert unit.text == "de:Berlin New York" and unit.starts == (0, 10)


def test_conll_index_column_is_skipped(tmp_path: Path) -> None:
    source = _write(tmp_path / "in.conllu", b"0\tJilguero\tB-PER\n1\tdel\tI-PER\n\n0\tREDIRECCION\tO\n")
    assert [unit.words for unit in iter_units([source])] == [("Jilguero", "del"), ("REDIRECCION",)]


def test_conll_token_only_numbers_are_tokens(tmp_path: Path) -> None:
    source = _write(tmp_path / "in.conll", b"1\tO\n2\tO\n")
    assert [unit.words for unit in iter_units([source])] == [("1", "2")]


def test_jsonl_text_and_tokens(tmp_path: Path) -> None:
    lines = ['{"text": "Hallo Welt"}', "", '{"tokens": ["New", "York"], "text": "ignored"}']
    source = _write(tmp_path / "in.jsonl", "\n".join(lines).encode())
    units = list(iter_units([source]))
    assert [unit.words for unit in units] == [("Hallo", "Welt"), ("New", "York")]
    assert [unit.line for unit in units] == [1, 3]
    assert units[1].text == "New York"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"text": "x"', "invalid JSON"),
        ('["text"]', '"text" string or a "tokens" list'),
        ('{"text": 3}', '"text" string or a "tokens" list'),
        ('{"tokens": ["a", ""]}', "non-empty strings"),
        ('{"tokens": ["a\\tb"]}', "without tabs"),
    ],
)
def test_bad_jsonl_line_names_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    source = _write(tmp_path / "in.jsonl", ('{"text": "fine"}\n' + line + "\n").encode())
    with pytest.raises(DataError, match=message) as caught:
        list(iter_units([source]))
    assert str(caught.value).startswith(f"{source}:2: ")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.jsonl", "jsonl"),
        ("a.CONLL", "conll"),
        ("a.tsv", "conll"),
        ("a.iob", "conll"),
        ("a.txt", "text"),
        ("-", "text"),
    ],
)
def test_auto_format_by_extension(name: str, expected: str) -> None:
    assert format_of(name, "auto") == expected
    assert format_of(name, "jsonl") == "jsonl"


def test_forced_format_overrides_extension(tmp_path: Path) -> None:
    source = _write(tmp_path / "in.txt", b"EU B-ORG\nrejects O\n")
    assert [unit.words for unit in iter_units([source], input_format="conll")] == [("EU", "rejects")]


# ---------------------------------------------------------------- paths and stdin


def test_folder_recursion_is_sorted_filtered_and_skips_hidden(tmp_path: Path) -> None:
    for name in ["b.txt", "a/z.txt", "a/b/c.txt", "a-b.txt", "notes.md", ".hidden/x.txt", "a/.swp.txt"]:
        _write(tmp_path / name, f"{name}\n".encode())
    sources = expand_inputs([str(tmp_path)])
    relative = [Path(source).relative_to(tmp_path).as_posix() for source in sources]
    assert relative == ["a/b/c.txt", "a/z.txt", "a-b.txt", "b.txt"]
    assert _texts(list(iter_units([str(tmp_path)]))) == relative


def test_missing_path_and_empty_folder_fail_early(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file or folder"):
        iter_units([str(tmp_path / "nope.txt")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds no files ending in"):
        iter_units([str(tmp_path / "empty")])
    with pytest.raises(DataError, match="no input given"):
        iter_units([])


def test_same_input_twice_is_an_error(tmp_path: Path) -> None:
    source = _write(tmp_path / "in.txt", b"x\n")
    with pytest.raises(DataError, match="more than once"):
        iter_units([str(tmp_path), source])
    with pytest.raises(DataError, match="more than once"):
        iter_units(["-", "-"])


def test_unknown_choices_are_errors(tmp_path: Path) -> None:
    source = _write(tmp_path / "in.txt", b"x\n")
    with pytest.raises(DataError, match="unknown input format 'xml'"):
        iter_units([source], input_format="xml")  # type: ignore[arg-type]
    with pytest.raises(DataError, match="unknown text mode"):
        iter_units([source], text_mode="page")  # type: ignore[arg-type]


def test_stdin(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"Rom\r\n\nWien\n")))
    source = _write(tmp_path / "in.txt", b"Oslo\n")
    units = list(iter_units([source, "-"]))
    assert _texts(units) == ["Oslo", "Rom", "", "Wien"]
    assert [unit.id for unit in units[1:]] == ["-:1", "-:2", "-:3"]
    assert units[1].source == "-"


def test_reading_is_lazy(tmp_path: Path) -> None:
    first = _write(tmp_path / "a.txt", b"ok\n")
    second = _write(tmp_path / "b.txt", b"\xff\n")
    units = iter_units([first, second])
    assert next(units).text == "ok"  # the bad second file is not touched yet
    with pytest.raises(DataError, match=r"b\.txt:1"):
        next(units)


# ---------------------------------------------------------------- entities


def test_multi_word_entity_offsets_are_exact() -> None:
    unit = unit_from_text("Gestern  sprach Angela   Merkel in New\u00a0York.", "-", 1)
    tags = ["O", "O", "B-PER", "I-PER", "O", "B-LOC", "I-LOC", "O"]
    entities = entities_for(unit, tags, [1.0, 1.0, 0.9, 0.6, 1.0, 0.81234, 0.7, 1.0])
    assert entities == (
        Entity(16, 31, "PER", "Angela   Merkel", 0.75),
        Entity(35, 43, "LOC", "New\u00a0York", 0.7562),
    )
    assert all(unit.text[e.start : e.end] == e.text for e in entities)


def test_orphan_inside_tag_starts_an_entity() -> None:
    unit = unit_from_tokens(["in", "Paris", "und", "Lyon", "Nord"], "x.conll", 4)
    entities = entities_for(unit, ["O", "I-LOC", "O", "I-LOC", "B-LOC"], [0.5, 0.25, 1, 0.5, 0.125])
    assert entities == (
        Entity(3, 8, "LOC", "Paris", 0.25),
        Entity(13, 17, "LOC", "Lyon", 0.5),
        Entity(18, 22, "LOC", "Nord", 0.125),
    )


def test_entity_type_change_inside_run_splits() -> None:
    unit = unit_from_text("Siemens Berlin", "-", 1)
    entities = entities_for(unit, ["B-ORG", "I-LOC"], [1.0, 1.0])
    assert [(e.label, e.text) for e in entities] == [("ORG", "Siemens"), ("LOC", "Berlin")]


def test_entities_of_cjk_characters() -> None:
    unit = unit_from_text("我住在北京。", "-", 1)
    entities = entities_for(unit, ["O", "O", "O", "B-LOC", "I-LOC", "O"], [1.0] * 6)
    assert entities == (Entity(3, 5, "LOC", "北京", 1.0),)


def test_mismatched_lengths_are_rejected() -> None:
    unit = unit_from_text("a b", "-", 1)
    with pytest.raises(ValueError, match="2 words but 1 tags"):
        entities_for(unit, ["O"], [1.0])


# ---------------------------------------------------------------- writers


def _tagged() -> list:
    first = unit_from_text("Angela Merkel besuchte Köln.", "in.txt", 1)
    second = unit_from_text("", "in.txt", 2)
    return [
        tag_unit(first, ["B-PER", "I-PER", "O", "B-LOC", "O"], [0.9, 0.7, 1.0, 0.6, 1.0]),
        tag_unit(second, [], []),
    ]


def test_jsonl_writer(tmp_path: Path) -> None:
    target = tmp_path / "out" / "pred.jsonl"
    with open_writer(str(target), "jsonl") as writer:
        for tagged in _tagged():
            writer.write(tagged)
    records = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]
    assert records[0] == {
        "id": "in.txt:1",
        "text": "Angela Merkel besuchte Köln.",
        "tokens": ["Angela", "Merkel", "besuchte", "Köln", "."],
        "tags": ["B-PER", "I-PER", "O", "B-LOC", "O"],
        "entities": [
            {"start": 0, "end": 13, "label": "PER", "text": "Angela Merkel", "score": 0.8},
            {"start": 23, "end": 27, "label": "LOC", "text": "Köln", "score": 0.6},
        ],
    }
    assert records[1] == {"id": "in.txt:2", "text": "", "tokens": [], "tags": [], "entities": []}
    assert "Köln" in target.read_text(encoding="utf-8")  # not \u-escaped
    assert writer.units_written == 2 and writer.entities_written == 2


def test_jsonl_escapes_unicode_line_separators(tmp_path: Path) -> None:
    unit = unit_from_text("a\u2028b", "-", 1)
    target = tmp_path / "p.jsonl"
    with open_writer(str(target), "jsonl") as writer:
        writer.write(tag_unit(unit, ["O", "O"], [1.0, 1.0]))
    content = target.read_text(encoding="utf-8")
    assert len(content.splitlines()) == 1
    assert json.loads(content)["text"] == "a\u2028b"


def test_conll_writer(tmp_path: Path) -> None:
    target = tmp_path / "pred.conll"
    with open_writer(str(target), "conll") as writer:
        for tagged in _tagged():
            writer.write(tagged)
    expected = "Angela\tB-PER\nMerkel\tI-PER\nbesuchte\tO\nKöln\tB-LOC\n.\tO\n\n\n"
    assert target.read_text(encoding="utf-8") == expected


def test_spans_tsv_writer(tmp_path: Path) -> None:
    unit = unit_from_text("New\tYork", "a\tb.txt", 1)
    target = tmp_path / "pred.tsv"
    with open_writer(str(target), "spans-tsv") as writer:
        for tagged in [*_tagged(), tag_unit(unit, ["B-LOC", "I-LOC"], [1.0, 1.0])]:
            writer.write(tagged)
    assert target.read_text(encoding="utf-8") == (
        SPANS_TSV_HEADER + "in.txt:1\t0\t13\tPER\tAngela Merkel\n"
        "in.txt:1\t23\t27\tLOC\tKöln\n"
        "a\\tb.txt:1\t0\t8\tLOC\tNew\\tYork\n"
    )


def test_writer_is_atomic_on_exception(tmp_path: Path) -> None:
    target = tmp_path / "pred.jsonl"
    with pytest.raises(RuntimeError, match="model crashed"), open_writer(str(target), "jsonl") as writer:
        writer.write(_tagged()[0])
        assert not target.exists()  # nothing at the path while writing
        raise RuntimeError("model crashed")
    assert list(tmp_path.iterdir()) == []


def test_failed_run_keeps_the_previous_output(tmp_path: Path) -> None:
    target = tmp_path / "pred.conll"
    target.write_text("old\n", encoding="utf-8")
    with pytest.raises(KeyboardInterrupt), open_writer(str(target), "conll") as writer:
        writer.write(_tagged()[0])
        raise KeyboardInterrupt
    assert target.read_text(encoding="utf-8") == "old\n"
    assert list(tmp_path.iterdir()) == [target]


def test_writer_to_a_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="is a folder"), open_writer(str(tmp_path), "jsonl"):
        pass


@pytest.mark.parametrize("path", [None, "-"])
def test_writer_to_stdout(path: str | None, capsys: pytest.CaptureFixture[str]) -> None:
    with open_writer(path, "spans-tsv") as writer:
        writer.write(_tagged()[0])
    assert capsys.readouterr().out == SPANS_TSV_HEADER + (
        "in.txt:1\t0\t13\tPER\tAngela Merkel\nin.txt:1\t23\t27\tLOC\tKöln\n"
    )


def test_unknown_output_format() -> None:
    with pytest.raises(DataError, match="unknown output format 'xml'"):
        open_writer("x", "xml")  # type: ignore[arg-type]


# ---------------------------------------------------------------- real data


@pytest.mark.skipif(not DATA.exists(), reason="shared data folder not present")
@pytest.mark.parametrize(
    ("relative", "first_words"),
    [
        ("conll2003/en/validation.txt", ("CRICKET", "-", "LEICESTERSHIRE", "TAKE")),
        ("wikiann/es/validation.conllu", ("'", "''", "México", "''")),
        ("kind/it/wikinews/validation.tsv", ("Ricercatori", "britannici", "scoprono", "il")),
    ],
)
def test_real_conll_files_read_as_token_units(relative: str, first_words: tuple[str, ...]) -> None:
    unit = next(iter_units([str(DATA / relative)], input_format="conll"))
    assert unit.words[:4] == first_words
    assert all(unit.text[s:e] == w for w, s, e in zip(unit.words, unit.starts, unit.ends, strict=True))


def test_named_file_is_read_whatever_its_extension(tmp_path: Path) -> None:
    source = _write(tmp_path / "notes.md", b"Genf\n")
    assert _texts(list(iter_units([source]))) == ["Genf"]
