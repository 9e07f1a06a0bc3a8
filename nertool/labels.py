"""Labels: one ``LabelMap`` from tag names to ids, IOB2 checks and repairs, tags to spans.

Strings live everywhere outside the model; ids exist only at the model boundary, and they
always go through one ``LabelMap`` so that training and evaluation cannot disagree.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from nertool.errors import LabelError

OUTSIDE = "O"
# Target id of positions that carry no label: cross-entropy skips them (token classification and MLM).
IGNORE_INDEX = -100
_TAG_RE = re.compile(r"^(?P<prefix>[BI])-(?P<type>[A-Za-z0-9_.]+)$")
_TYPE_RE = re.compile(r"^[A-Za-z0-9_.]+$")
# What a type may be renamed to: an upper-case name (the convention of every shipped corpus), so a
# map to ``"B-"``, ``"per"`` or ``"B-PER"`` (a tag, not a type) is refused rather than half-applied.
_TARGET_TYPE_RE = re.compile(r"^[A-Z][A-Z0-9_]*$")


def parse_tag(tag: str) -> tuple[str, str | None]:
    """Split ``B-PER`` into (``B``, ``PER``); ``O`` gives (``O``, None).

    Raises ``LabelError`` for anything that is not IOB2-shaped (``PER``, ``B_PER``, ``b-per``).
    """
    if tag == OUTSIDE:
        return OUTSIDE, None
    match = _TAG_RE.match(tag)
    if match is None:
        raise LabelError(
            f"tag {tag!r} is not IOB2: expected 'O', 'B-TYPE' or 'I-TYPE' (upper-case B/I, a hyphen)"
        )
    return match["prefix"], match["type"]


def is_iob2_tag(tag: str) -> bool:
    """True where ``tag`` is ``O`` or ``B-X``/``I-X``."""
    try:
        parse_tag(tag)
    except LabelError:
        return False
    return True


def entity_type(tag: str) -> str | None:
    """The type of a tag (``PER`` for ``I-PER``), None for ``O``."""
    return parse_tag(tag)[1]


def check_type_map(mapping: Mapping[str, str]) -> None:
    """A label map renames entity types (``PERSON`` → ``PER``) or drops them (``MISC`` → ``O``).

    Keys are types as files write them (the part after ``B-``); values are ``O`` or an upper-case
    type. Raises ``LabelError`` naming the first bad entry.
    """
    for source, target in mapping.items():
        if not _TYPE_RE.match(source):
            raise LabelError(f"{source!r} is not an entity type: write the type without B-/I- (e.g. MISC)")
        if target != OUTSIDE and not _TARGET_TYPE_RE.match(target):
            raise LabelError(
                f"{source} is mapped to {target!r}, which is not an entity type: map to O (drop it) "
                "or to an upper-case type without B-/I- such as PER"
            )


@dataclass(frozen=True)
class TagIssue:
    """One IOB2 problem found in a sentence: position and what is wrong."""

    index: int
    tag: str
    problem: str


def iob2_issues(tags: Sequence[str]) -> list[TagIssue]:
    """Orphan ``I-X`` tags (not after ``B-X``/``I-X``) in a sequence of valid tags."""
    issues = []
    previous_type: str | None = None
    for index, tag in enumerate(tags):
        prefix, kind = parse_tag(tag)
        if prefix == "I" and kind != previous_type:
            issues.append(
                TagIssue(index, tag, f"'{tag}' follows '{tags[index - 1] if index else '<start>'}'")
            )
        previous_type = kind
    return issues


def repair_iob2(tags: Sequence[str]) -> list[str]:
    """Turn every orphan ``I-X`` into ``B-X`` (the conventional reading of such a tag)."""
    repaired = list(tags)
    for issue in iob2_issues(tags):
        repaired[issue.index] = "B-" + issue.tag[2:]
    return repaired


def iob1_to_iob2(tags: Sequence[str]) -> list[str]:
    """IOB1 (``B-`` only between two adjacent entities of one type) to IOB2.

    In IOB1 an entity starts with ``I-`` unless it touches a previous entity of the same type;
    that is exactly an orphan ``I-`` in IOB2 terms, so conversion is the same repair.
    """
    return repair_iob2(tags)


@dataclass(frozen=True)
class Span:
    """An entity over words ``[start, end)`` with its type."""

    start: int
    end: int
    label: str


def tags_to_spans(tags: Sequence[str]) -> list[Span]:
    """Entity spans of a tag sequence; an orphan ``I-X`` starts a new entity."""
    spans: list[Span] = []
    start, kind = -1, None
    for index, tag in enumerate([*tags, OUTSIDE]):
        prefix, tag_type = parse_tag(tag)
        continues = prefix == "I" and tag_type == kind
        if kind is not None and not continues:
            spans.append(Span(start, index, kind))
            kind = None
        if prefix in ("B", "I") and not continues:
            start, kind = index, tag_type
    return spans


def canonical_order(types: Iterable[str]) -> list[str]:
    """``O`` then ``B-X``, ``I-X`` for each type in sorted order: the one documented label order."""
    names = [OUTSIDE]
    for kind in sorted(set(types)):
        names += [f"B-{kind}", f"I-{kind}"]
    return names


@dataclass(frozen=True)
class LabelMap:
    """Tag names and their ids, in canonical order; the only place ids are made."""

    names: tuple[str, ...]

    @classmethod
    def from_tags(cls, tags: Iterable[str]) -> LabelMap:
        """Every type seen in ``tags`` gets both its ``B-`` and ``I-`` label."""
        types = {kind for tag in tags if (kind := entity_type(tag)) is not None}
        return cls(tuple(canonical_order(types)))

    @classmethod
    def from_id2label(cls, id2label: dict[int, str] | dict[str, str]) -> LabelMap:
        """Rebuild from a model config's ``id2label`` (keys may be strings after JSON)."""
        ordered = sorted(((int(k), v) for k, v in id2label.items()), key=lambda kv: kv[0])
        return cls(tuple(name for _, name in ordered))

    def __len__(self) -> int:
        return len(self.names)

    @property
    def types(self) -> list[str]:
        """Entity types, sorted."""
        return sorted({kind for name in self.names if (kind := entity_type(name)) is not None})

    @property
    def id2label(self) -> dict[int, str]:
        return dict(enumerate(self.names))

    @property
    def label2id(self) -> dict[str, int]:
        return {name: index for index, name in enumerate(self.names)}

    def encode(self, tags: Sequence[str]) -> list[int]:
        """Tag names to ids; an unknown tag is an error, never a silent ``O``."""
        lookup = self.label2id
        try:
            return [lookup[tag] for tag in tags]
        except KeyError as missing:
            raise LabelError(
                f"label {missing.args[0]} is unknown to the model (it knows {', '.join(self.names)}); "
                "train on data with this label or map it to a known one"
            ) from None

    def decode(self, ids: Iterable[int]) -> list[str]:
        return [self.names[i] for i in ids]

    def check_covers(self, tags: Iterable[str], where: str) -> None:
        """Raise ``LabelError`` naming ``where`` if any tag in ``tags`` is unknown here."""
        unknown = sorted(set(tags) - set(self.names))
        if unknown:
            raise LabelError(
                f"{where}: labels {', '.join(unknown)} are unknown to the model "
                f"(it knows {', '.join(self.names)}); use a model trained with these labels"
            )

    def inside_of(self, label_id: int) -> int:
        """The ``I-`` id for the type of ``label_id`` (``O`` stays ``O``): for all-subword labels."""
        name = self.names[label_id]
        kind = entity_type(name)
        return label_id if kind is None else self.label2id[f"I-{kind}"]
