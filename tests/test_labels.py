"""IOB2 tags: parsing, orphan repair, spans, and the one LabelMap between strings and ids."""

from __future__ import annotations

import pytest

from nertool.errors import LabelError
from nertool.labels import (
    LabelMap,
    Span,
    canonical_order,
    entity_type,
    iob1_to_iob2,
    iob2_issues,
    is_iob2_tag,
    parse_tag,
    repair_iob2,
    tags_to_spans,
)

# ---------------------------------------------------------------- parse_tag


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("O", ("O", None)),
        ("B-PER", ("B", "PER")),
        ("I-LOC", ("I", "LOC")),
        ("B-DATE", ("B", "DATE")),
        ("I-geo_loc", ("I", "geo_loc")),
        ("B-X.1", ("B", "X.1")),
    ],
)
def test_parse_tag_accepts_iob2(tag: str, expected: tuple[str, str | None]) -> None:
    assert parse_tag(tag) == expected
    assert is_iob2_tag(tag)
    assert entity_type(tag) == expected[1]


@pytest.mark.parametrize(
    "tag", ["PER", "B_PER", "b-per", "B-", "-PER", "o", "", " O", "O ", "E-PER", "S-LOC", "B-PER X"]
)
def test_parse_tag_rejects_everything_else(tag: str) -> None:
    with pytest.raises(LabelError, match="not IOB2"):
        parse_tag(tag)
    assert not is_iob2_tag(tag)


def test_parse_tag_error_quotes_the_tag() -> None:
    with pytest.raises(LabelError) as caught:
        parse_tag("B_PER")
    assert "'B_PER'" in str(caught.value)


# ---------------------------------------------------------------- issues, repair, IOB1

REPAIR_CASES = [
    ([], [], []),
    (["O", "B-PER", "I-PER"], ["O", "B-PER", "I-PER"], []),
    (["I-PER"], ["B-PER"], [0]),
    (["O", "I-PER", "I-PER"], ["O", "B-PER", "I-PER"], [1]),
    (["B-PER", "I-LOC"], ["B-PER", "B-LOC"], [1]),
    (["I-PER", "I-LOC", "I-LOC"], ["B-PER", "B-LOC", "I-LOC"], [0, 1]),
    (["B-PER", "O", "I-PER"], ["B-PER", "O", "B-PER"], [2]),
    (["B-PER", "B-PER", "I-PER"], ["B-PER", "B-PER", "I-PER"], []),
]


@pytest.mark.parametrize(("tags", "repaired", "issue_indices"), REPAIR_CASES)
def test_iob2_issues_and_repair(tags: list[str], repaired: list[str], issue_indices: list[int]) -> None:
    assert [issue.index for issue in iob2_issues(tags)] == issue_indices
    assert repair_iob2(tags) == repaired
    assert iob2_issues(repaired) == []
    assert repair_iob2(repaired) == repaired


def test_repair_does_not_modify_its_input() -> None:
    tags = ["O", "I-PER"]
    repair_iob2(tags)
    assert tags == ["O", "I-PER"]


def test_issue_message_names_the_previous_tag() -> None:
    [start] = iob2_issues(["I-PER"])
    [after] = iob2_issues(["B-LOC", "I-PER"])
    assert "'I-PER' follows '<start>'" in start.problem
    assert "'I-PER' follows 'B-LOC'" in after.problem


def test_iob2_issues_rejects_malformed_tags() -> None:
    with pytest.raises(LabelError):
        iob2_issues(["O", "PER"])


@pytest.mark.parametrize(
    ("iob1", "iob2"),
    [
        (["I-PER", "I-PER", "O", "I-LOC"], ["B-PER", "I-PER", "O", "B-LOC"]),
        (["I-PER", "B-PER", "I-PER"], ["B-PER", "B-PER", "I-PER"]),  # two adjacent PER entities
        (["I-ORG", "I-LOC"], ["B-ORG", "B-LOC"]),
        (["O", "O"], ["O", "O"]),
    ],
)
def test_iob1_to_iob2(iob1: list[str], iob2: list[str]) -> None:
    assert iob1_to_iob2(iob1) == iob2


# ---------------------------------------------------------------- spans

SPAN_CASES = [
    ([], []),
    (["O", "O"], []),
    (["B-PER"], [Span(0, 1, "PER")]),
    (["B-PER", "I-PER", "O"], [Span(0, 2, "PER")]),
    (["O", "B-LOC", "I-LOC", "I-LOC"], [Span(1, 4, "LOC")]),  # entity at the very end
    (["O", "I-PER", "I-PER"], [Span(1, 3, "PER")]),  # orphan I- starts an entity
    (["I-PER"], [Span(0, 1, "PER")]),
    (["B-PER", "B-PER"], [Span(0, 1, "PER"), Span(1, 2, "PER")]),  # adjacent B-
    (["I-PER", "I-LOC"], [Span(0, 1, "PER"), Span(1, 2, "LOC")]),  # type change inside
    (["B-PER", "I-PER", "I-LOC", "I-LOC"], [Span(0, 2, "PER"), Span(2, 4, "LOC")]),
    (["B-ORG", "O", "I-ORG"], [Span(0, 1, "ORG"), Span(2, 3, "ORG")]),
    (
        ["B-PER", "I-PER", "B-ORG", "I-ORG", "O", "B-LOC"],
        [Span(0, 2, "PER"), Span(2, 4, "ORG"), Span(5, 6, "LOC")],
    ),
]


@pytest.mark.parametrize(("tags", "spans"), SPAN_CASES)
def test_tags_to_spans(tags: list[str], spans: list[Span]) -> None:
    assert tags_to_spans(tags) == spans


@pytest.mark.parametrize(("tags", "spans"), SPAN_CASES)
def test_spans_of_repaired_tags_are_the_same(tags: list[str], spans: list[Span]) -> None:
    assert tags_to_spans(repair_iob2(tags)) == spans


# ---------------------------------------------------------------- LabelMap


def test_canonical_order() -> None:
    expected = ["O", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-PER", "I-PER"]
    assert canonical_order(["PER", "LOC", "PER", "ORG"]) == expected
    assert canonical_order([]) == ["O"]


@pytest.mark.parametrize(
    "tags",
    [
        ["B-PER", "O", "I-LOC", "B-ORG"],
        ["I-ORG", "B-LOC", "O", "I-PER", "I-PER"],
        ["B-PER", "B-ORG", "B-LOC"],  # I- labels exist even when unseen
    ],
)
def test_label_map_from_tags_is_canonical_whatever_the_order(tags: list[str]) -> None:
    label_map = LabelMap.from_tags(tags)
    assert label_map.names == ("O", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-PER", "I-PER")
    assert label_map.types == ["LOC", "ORG", "PER"]
    assert len(label_map) == 7


def test_label_map_ids_round_trip() -> None:
    label_map = LabelMap.from_tags(["B-PER", "I-LOC"])
    assert label_map.id2label == {0: "O", 1: "B-LOC", 2: "I-LOC", 3: "B-PER", 4: "I-PER"}
    assert label_map.label2id == {v: k for k, v in label_map.id2label.items()}
    tags = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "O"]
    assert label_map.encode(tags) == [0, 3, 4, 1, 2, 0]
    assert label_map.decode(label_map.encode(tags)) == tags


def test_label_map_only_outside() -> None:
    label_map = LabelMap.from_tags(["O", "O"])
    assert label_map.names == ("O",)
    assert label_map.types == []


def test_encode_unknown_label_is_an_error_naming_it() -> None:
    label_map = LabelMap.from_tags(["B-PER"])
    with pytest.raises(LabelError) as caught:
        label_map.encode(["O", "B-MISC"])
    assert "B-MISC" in str(caught.value)
    assert "B-PER" in str(caught.value)  # says what the model knows


def test_check_covers_names_where_and_what() -> None:
    label_map = LabelMap.from_tags(["B-PER"])
    label_map.check_covers(["O", "B-PER", "I-PER"], "dev.tsv")
    with pytest.raises(LabelError) as caught:
        label_map.check_covers(["B-LOC", "O", "I-DATE"], "dev.tsv")
    assert str(caught.value).startswith("dev.tsv:")
    assert "B-LOC, I-DATE" in str(caught.value)


def test_from_id2label_with_string_keys_sorts_numerically() -> None:
    names = canonical_order(["A", "B", "C", "D", "E", "F"])  # 13 labels: "10" < "2" as strings
    from_json = {str(i): name for i, name in reversed(list(enumerate(names)))}
    assert LabelMap.from_id2label(from_json).names == tuple(names)
    assert LabelMap.from_id2label(dict(enumerate(names))).names == tuple(names)


def test_from_id2label_round_trips_a_label_map() -> None:
    label_map = LabelMap.from_tags(["B-PER", "B-ORG", "B-LOC"])
    assert LabelMap.from_id2label(label_map.id2label) == label_map


@pytest.mark.parametrize(
    ("name", "inside"),
    [("O", "O"), ("B-PER", "I-PER"), ("I-PER", "I-PER"), ("B-LOC", "I-LOC"), ("I-ORG", "I-ORG")],
)
def test_inside_of(name: str, inside: str) -> None:
    label_map = LabelMap.from_tags(["B-PER", "B-ORG", "B-LOC"])
    assert label_map.inside_of(label_map.label2id[name]) == label_map.label2id[inside]
