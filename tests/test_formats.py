"""Local file readers: format sniffing, every format on real files, and hand-written bad inputs."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from nertool.data.readers import FORMATS, ReadReport, Sentence, read_sentences, sniff_format
from nertool.errors import DataError

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
BAD = Path(__file__).resolve().parent / "data" / "bad"
needs_data = pytest.mark.skipif(not DATA.exists(), reason="real data folder ../shared/data is absent")


def read_all(path: Path, **kwargs: object) -> tuple[list[Sentence], ReadReport]:
    report = ReadReport(str(path))
    sentences = list(read_sentences(path, report=report, **kwargs))  # type: ignore[arg-type]
    return sentences, report


def data_error(path: Path, **kwargs: object) -> DataError:
    with pytest.raises(DataError) as caught:
        read_all(path, **kwargs)
    return caught.value


def assert_points_at(error: DataError, path: Path, line: int | None) -> None:
    """The message names the file and, where there is one, the line."""
    assert path.name in str(error)
    assert error.path == str(path)
    assert error.line == line
    if line is not None:
        assert f"{path.name}:{line}:" in str(error)


# ---------------------------------------------------------------- sniffing on small hand-made files

SNIFF_CASES = [
    ("Berlin\tB-LOC\nist\tO\n", ".tsv", "token_tag"),
    ("Berlin B-LOC\nist O\n", ".txt", "token_tag"),
    ("de:Berlin\tB-LOC\nde:ist\tO\n", ".tsv", "panx"),
    ("de:Berlin\tB-LOC\nist\tO\n", ".tsv", "token_tag"),  # one unprefixed token: not PAN-X
    ("0\tBerlin\tB-LOC\n1\tist\tO\n", ".conllu", "idx_token_tag"),
    ("Berlin NNP I-NP B-LOC\nist VBZ I-VP O\n", ".txt", "conll"),
    ("-DOCSTART- -X- -X- O\n\nBerlin NNP I-NP B-LOC\n", ".txt", "conll"),
    ('{"tokens": ["Berlin"], "ner_tags": ["B-LOC"]}\n', ".json", "jsonl"),
    ("anything at all\n", ".jsonl", "jsonl"),  # the extension decides
]


@pytest.mark.parametrize(("text", "suffix", "expected"), SNIFF_CASES)
def test_sniff_format(tmp_path: Path, text: str, suffix: str, expected: str) -> None:
    path = tmp_path / f"file{suffix}"
    path.write_text(text, encoding="utf-8")
    assert sniff_format(path) == expected


def test_formats_lists_auto_and_every_reader() -> None:
    assert set(FORMATS) == {"auto", "token_tag", "panx", "idx_token_tag", "conll", "jsonl"}


# ---------------------------------------------------------------- reading each format, small files

READ_CASES = [
    ("token_tag", "Anna\tB-PER\nlacht\tO\n\nRom\tB-LOC\n"),
    ("panx", "de:Anna\tB-PER\nde:lacht\tO\n\nde:Rom\tB-LOC\n"),
    ("idx_token_tag", "0\tAnna\tB-PER\n1\tlacht\tO\n\n0\tRom\tB-LOC\n"),
    ("conll", "-DOCSTART- -X- -X- O\n\nAnna NNP I-NP B-PER\nlacht VBZ I-VP O\n\nRom NNP I-NP B-LOC\n"),
    (
        "jsonl",
        '{"tokens": ["Anna", "lacht"], "ner_tags": ["B-PER", "O"]}\n'
        '{"tokens": ["Rom"], "ner_tags": ["B-LOC"]}\n',
    ),
]


@pytest.mark.parametrize(("file_format", "text"), READ_CASES)
@pytest.mark.parametrize("explicit", [False, True])
def test_each_format_reads_the_same_sentences(
    tmp_path: Path, file_format: str, text: str, explicit: bool
) -> None:
    path = tmp_path / ("data.jsonl" if file_format == "jsonl" else "data.txt")
    path.write_text(text, encoding="utf-8")
    sentences, report = read_all(path, file_format=file_format if explicit else "auto")
    assert [(s.tokens, s.tags) for s in sentences] == [
        (("Anna", "lacht"), ("B-PER", "O")),
        (("Rom",), ("B-LOC",)),
    ]
    assert report.file_format == file_format
    assert report.sentences == 2


def test_panx_keeps_colons_inside_tokens(tmp_path: Path) -> None:
    path = tmp_path / "panx.tsv"
    path.write_text("fr:Paris:\tB-LOC\nfr:12:30\tO\nfr:http://x.fr\tO\n", encoding="utf-8")
    [sentence], _ = read_all(path)
    assert sentence.tokens == ("Paris:", "12:30", "http://x.fr")


def test_sentence_line_is_the_first_line_of_its_block(tmp_path: Path) -> None:
    path = tmp_path / "lines.tsv"
    path.write_text("\n\na\tO\nb\tO\n\n\n\nc\tO\n", encoding="utf-8")
    sentences, _ = read_all(path)
    assert [s.line for s in sentences] == [3, 8]


def test_jsonl_skips_blank_lines_and_counts_lines(tmp_path: Path) -> None:
    path = tmp_path / "data.jsonl"
    records = [{"tokens": ["a"], "ner_tags": ["O"]}, {"tokens": ["Rom", "x"], "ner_tags": ["I-LOC", "O"]}]
    path.write_text(json.dumps(records[0]) + "\n\n" + json.dumps(records[1]) + "\n", encoding="utf-8")
    sentences, report = read_all(path)
    assert [s.line for s in sentences] == [1, 3]
    assert sentences[1].tags == ("B-LOC", "O")
    assert (report.repaired_tags, report.first_repair_line) == (1, 3)


def test_missing_file_is_a_data_error(tmp_path: Path) -> None:
    assert_points_at(data_error(tmp_path / "nope.tsv"), tmp_path / "nope.tsv", None)


def test_five_thousand_word_sentence_is_one_sentence(tmp_path: Path) -> None:
    path = tmp_path / "long.tsv"
    path.write_text(
        "".join(f"w{i}\t{'B-PER' if i % 7 == 0 else 'O'}\n" for i in range(5000)), encoding="utf-8"
    )
    [sentence], report = read_all(path)
    assert len(sentence.tokens) == len(sentence.tags) == 5000
    assert (sentence.tokens[0], sentence.tokens[-1], sentence.tags[7]) == ("w0", "w4999", "B-PER")
    assert report.sentences == 1


# ---------------------------------------------------------------- real files (../shared/data)

# (file, format, first tokens, their tags, start line of the first sentence)
REAL_FIRST = [
    ("wikiann/de/train.tsv", "panx", ("als", "Teil", "der", "Savoyer"), ("O", "O", "O", "B-LOC"), 1),
    (
        "wikiann/es/validation.conllu",
        "idx_token_tag",
        ("'", "''", "México", "''"),
        ("O", "O", "B-LOC", "O"),
        1,
    ),
    ("wikiann/pl/test.conllu", "idx_token_tag", None, None, 1),
    (
        "conll2003/en/validation.txt",
        "conll",
        ("CRICKET", "-", "LEICESTERSHIRE", "TAKE"),
        ("O", "O", "B-ORG", "O"),
        3,
    ),
    (
        "conll2003/de/validation.txt",
        "token_tag",
        ("Großer", "Foto-Wettbeweb", '"', "Nordendler"),
        ("O",) * 3 + ("B-ORG",),
        1,
    ),
    (
        "conll2002/es/validation.txt",
        "token_tag",
        ("Sao", "Paulo", "(", "Brasil"),
        ("B-LOC", "I-LOC", "O", "B-LOC"),
        1,
    ),
    ("masakhaner/luo/validation.txt", "token_tag", ("Jodak", "makono", "koro", "sieyo"), ("O",) * 4, 1),
    ("kind/it/degasperi/test.tsv", "token_tag", ("Discorso", "alla", "Dieta"), ("O", "O", "B-ORG"), 1),
]


@needs_data
@pytest.mark.parametrize(("name", "file_format", "tokens", "tags", "line"), REAL_FIRST)
def test_real_file_format_and_first_sentence(
    name: str, file_format: str, tokens: tuple[str, ...] | None, tags: tuple[str, ...] | None, line: int
) -> None:
    path = DATA / name
    assert sniff_format(path) == file_format
    first = next(iter(read_sentences(path)))
    if tokens is not None and tags is not None:
        assert first.tokens[: len(tokens)] == tokens
        assert first.tags[: len(tags)] == tags
    assert first.line == line
    assert not any(token.startswith(("de:", "es:", "pl:")) for token in first.tokens)


# (file, sentences, tokens, repaired orphan I- tags): the figures of ../shared/data/README.md
REAL_COUNTS = [
    ("wikiann/es/validation.conllu", 10_000, 64_329, 0),
    ("conll2003/en/validation.txt", 3_250, 51_362, 0),  # -DOCSTART- lines excluded
    ("conll2002/es/validation.txt", 1_915, 52_923, 1),
    ("masakhaner/hau/test.txt", 552, 16_841, 1),
    ("kind/it/wikinews/test.tsv", 2_088, 56_519, 16),
]


@needs_data
@pytest.mark.parametrize(("name", "n_sentences", "n_tokens", "repaired"), REAL_COUNTS)
def test_real_file_counts_match_the_readme(name: str, n_sentences: int, n_tokens: int, repaired: int) -> None:
    sentences, report = read_all(DATA / name)
    assert len(sentences) == report.sentences == n_sentences
    assert sum(len(s.tokens) for s in sentences) == n_tokens
    assert report.repaired_tags == repaired
    assert (report.first_repair_line is None) == (repaired == 0)
    assert all("-DOCSTART-" not in s.tokens for s in sentences)


@needs_data
def test_real_orphan_is_an_error_under_strict_tags() -> None:
    path = DATA / "masakhaner" / "hau" / "test.txt"
    _, report = read_all(path)
    error = data_error(path, strict_tags=True)
    assert_points_at(error, path, report.first_repair_line)


@needs_data
def test_panx_prefix_is_stripped_everywhere_in_a_real_file() -> None:
    sentences = list(itertools.islice(read_sentences(DATA / "wikiann" / "de" / "validation.tsv"), 2000))
    assert len(sentences) == 2000
    assert not any(token.startswith("de:") for s in sentences for token in s.tokens)


# ---------------------------------------------------------------- bad inputs (tests/data/bad)

# (file, explicit format, line the error must name, words the message must hold)
BAD_CASES = [
    ("non_utf8.tsv", "auto", 3, ["UTF-8", "byte 22"]),
    ("one_column.tsv", "auto", 3, ["found 1", "'groß'"]),
    ("one_column.tsv", "token_tag", 3, ["expected 2 columns"]),
    ("three_columns.tsv", "token_tag", 3, ["expected 2 columns", "found 3"]),
    ("tag_no_prefix.tsv", "auto", 2, ["'PER'", "IOB2"]),
    ("tag_underscore.tsv", "auto", 7, ["'B_LOC'", "IOB2"]),
    ("tag_lowercase.tsv", "auto", 1, ["'b-per'", "IOB2"]),
    ("not_json.jsonl", "auto", 2, ["JSON"]),
    ("unequal.jsonl", "auto", 3, ["equal length"]),
]


@pytest.mark.parametrize(("name", "file_format", "line", "words"), BAD_CASES)
def test_bad_input_names_file_and_line(name: str, file_format: str, line: int, words: list[str]) -> None:
    path = BAD / name
    error = data_error(path, file_format=file_format)
    assert_points_at(error, path, line)
    for word in words:
        assert word in str(error)


@pytest.mark.parametrize("name", ["empty.tsv", "blank_lines.tsv"])
def test_file_without_sentences_is_an_error(name: str) -> None:
    error = data_error(BAD / name)
    assert_points_at(error, BAD / name, None)
    assert "no sentences" in str(error)


def test_orphan_inside_is_repaired_and_counted() -> None:
    sentences, report = read_all(BAD / "orphan_inside.tsv")
    assert [s.tags for s in sentences] == [("O", "O", "B-PER", "I-PER"), ("O", "B-LOC")]
    assert (report.repaired_tags, report.first_repair_line) == (2, 3)


def test_orphan_inside_is_an_error_under_strict_tags() -> None:
    error = data_error(BAD / "orphan_inside.tsv", strict_tags=True)
    assert_points_at(error, BAD / "orphan_inside.tsv", 3)
    assert "'I-PER' follows 'O'" in str(error)


@pytest.mark.parametrize("name", ["bom.tsv", "crlf.tsv"])
def test_bom_and_crlf_read_like_plain_files(name: str) -> None:
    raw = (BAD / name).read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") or b"\r\n" in raw, "the test file lost its BOM / CRLF bytes"
    sentences, report = read_all(BAD / name)
    assert report.file_format == "token_tag"
    assert sentences[0].tokens == ("Berlin", "ist", "groß")
    assert sentences[0].tags == ("B-LOC", "O", "O")
    assert all("\r" not in t and "\ufeff" not in t for s in sentences for t in (*s.tokens, *s.tags))
    if name == "crlf.tsv":
        assert [(s.tokens, s.line) for s in sentences[1:]] == [(("Anna", "lacht"), 5)]


def test_zero_width_and_control_characters_stay_inside_tokens() -> None:
    [sentence], _ = read_all(BAD / "odd_characters.tsv")
    assert sentence.tokens == (
        "Ber\u200blin",
        "New\u00a0York",
        "bel\x07l",
        "Soft\u00adware",
        "Z\u200dW",
        "\u200b",
    )
    assert sentence.tags == ("B-LOC", "B-LOC", "O", "O", "O", "O")


def test_truncated_utf8_at_end_of_file_is_an_error() -> None:
    error = data_error(BAD / "truncated_utf8.tsv")
    assert_points_at(error, BAD / "truncated_utf8.tsv", 3)


def test_three_columns_in_a_two_column_file_is_an_error_when_sniffed() -> None:
    error = data_error(BAD / "three_columns.tsv")
    assert_points_at(error, BAD / "three_columns.tsv", 3)
