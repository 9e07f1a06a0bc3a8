"""Label-set harmonisation: rename or drop entity types as sentences are read, and count each change.

Corpora disagree on their tag sets (CoNLL has ``MISC``, MasakhaNER ``DATE``, some files write
``PERSON``). A *type map* (``[data] label_map``, ``--label-map MISC=O``) renames a type (``PERSON``
→ ``PER``) or drops it (``MISC`` → ``O``) before anything trains on or is scored against the
sentences. A dropped entity becomes ``O`` on every one of its words, so IOB2 stays valid: what follows
it starts with ``B-`` or is ``O`` already (orphan ``I-`` tags were repaired when the file was read).

Nothing is changed silently: every renamed or dropped entity is counted per file and type in a
``LabelChanges`` log, which ends up in ``data_manifest.json`` and in the evaluation report. The same
functions serve types a model does not know at evaluation time (``data.unknown_types = "drop"``).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from nertool.labels import OUTSIDE, LabelMap, parse_tag, tags_to_spans

if TYPE_CHECKING:
    from nertool.data.readers import Sentence
    from nertool.data.sources import Corpus

log = logging.getLogger("nertool")

LABEL_MAP = "label_map"
UNKNOWN_TYPES = "unknown_types"
# What happens to a gold type the model does not know: today's error, or dropped to ``O`` (counted).
UnknownTypes = Literal["error", "drop"]


@dataclass(frozen=True)
class TypeMap:
    """A type → type (or ``O``) map and the name it was given under, for warnings (``data.label_map``)."""

    types: Mapping[str, str]
    origin: str = "data.label_map"
    rule: str = LABEL_MAP

    def __bool__(self) -> bool:
        return bool(self.types)


@dataclass(frozen=True)
class LabelChange:
    """``entities`` gold entities of ``type`` in ``file`` became ``to`` (a type, or ``O``: dropped)."""

    file: str
    type: str
    to: str
    entities: int
    rule: str

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "type": self.type,
            "to": self.to,
            "entities": self.entities,
            "rule": self.rule,
        }


@dataclass
class LabelChanges:
    """The running count of renamed and dropped entities, per (file, type, new type, rule)."""

    counts: Counter[tuple[str, str, str, str]] = field(default_factory=Counter)
    # Per map (by its origin): the map, the types found where it applied, and the sources it covered.
    # One map (``data.label_map``) may serve several corpora; it is checked against all of them.
    uses: dict[str, tuple[TypeMap, set[str], list[str]]] = field(default_factory=dict)

    def note(self, type_map: TypeMap, found: set[str], where: str) -> None:
        """Remember that ``type_map`` applied to a source whose files hold the types ``found``."""
        if type_map:
            _, seen, sources = self.uses.setdefault(type_map.origin, (type_map, set(), []))
            seen.update(found)
            sources.append(where)

    def warn_unused(self) -> None:
        """``warn_unused`` for every map noted, over all the sources it applied to."""
        for type_map, seen, sources in self.uses.values():
            warn_unused(type_map, seen, ", ".join(sources))

    def add(self, file: str, rule: str, moved: Mapping[tuple[str, str], int]) -> None:
        for (kind, to), n in moved.items():
            self.counts[(file, kind, to, rule)] += n

    @property
    def changes(self) -> list[LabelChange]:
        """One record per (file, type, new type, rule), in the order they were first counted."""
        return [LabelChange(f, kind, to, n, rule) for (f, kind, to, rule), n in self.counts.items()]

    def to_json(self) -> list[dict[str, Any]]:
        return [change.to_json() for change in self.changes]

    def dropped(self, file: str | None = None) -> dict[str, int]:
        """Entities mapped to ``O`` per type (in one file, or in all)."""
        totals: Counter[str] = Counter()
        for (f, kind, to, _), n in self.counts.items():
            if to == OUTSIDE and file in (None, f):
                totals[kind] += n
        return dict(totals)


def map_tags(
    tags: Sequence[str], types: Mapping[str, str]
) -> tuple[tuple[str, ...], Counter[tuple[str, str]]]:
    """The tags with each mapped type renamed or dropped, and the entities moved per (type, new type)."""
    moved: Counter[tuple[str, str]] = Counter(
        (span.label, types[span.label])
        for span in tags_to_spans(tags)
        if span.label in types and types[span.label] != span.label
    )
    if not moved:
        return tuple(tags), moved
    return tuple(_map_tag(tag, types) for tag in tags), moved


def _map_tag(tag: str, types: Mapping[str, str]) -> str:
    prefix, kind = parse_tag(tag)
    if kind is None or kind not in types:
        return tag
    return OUTSIDE if types[kind] == OUTSIDE else f"{prefix}-{types[kind]}"


def harmonise(
    sentences: Iterable[Sentence], type_map: TypeMap, *, file: str, changes: LabelChanges
) -> list[Sentence]:
    """``sentences`` with ``type_map`` applied; what moved is counted under ``file``."""
    out = []
    moved: Counter[tuple[str, str]] = Counter()
    for sentence in sentences:
        tags, counted = map_tags(sentence.tags, type_map.types)
        moved.update(counted)
        out.append(sentence if not counted else replace(sentence, tags=tags))
    changes.add(file, type_map.rule, moved)
    return out


def harmonise_splits(
    splits: Mapping[str, list[Sentence]],
    type_map: TypeMap,
    *,
    files: Mapping[str, str],
    changes: LabelChanges,
) -> dict[str, list[Sentence]]:
    """``harmonise`` over named sets (``de``, ``conll2003:de``); ``files`` names each set's file.

    Training and evaluation apply their maps to the sentences they use (after sampling and
    capping), so the counts say how many entities of the scored or trained-on text were changed.
    """
    if not type_map:
        return dict(splits)
    return {
        name: harmonise(sentences, type_map, file=files.get(name, name), changes=changes)
        for name, sentences in splits.items()
    }


def types_in(sentences: Iterable[Sentence]) -> set[str]:
    """Entity types of the gold tags."""
    return {kind for s in sentences for tag in s.tags if (kind := parse_tag(tag)[1]) is not None}


def warn_unused(type_map: TypeMap, found: set[str], where: str) -> None:
    """A mapped type that no file has is most likely a typo (``MSC``): say so, naming the map."""
    unused = sorted(set(type_map.types) - found)
    if unused:
        log.warning(
            "%s maps %s, which no file of %s has (types found: %s); check the spelling",
            type_map.origin,
            ", ".join(unused),
            where,
            ", ".join(sorted(found)) or "none",
        )


def unknown_types_map(found: set[str], label_map: LabelMap, origin: str) -> TypeMap:
    """The map that drops every type of ``found`` that ``label_map`` (the model's labels) lacks."""
    known = set(label_map.types)
    return TypeMap({kind: OUTSIDE for kind in sorted(found - known)}, origin, UNKNOWN_TYPES)


def drop_unknown_types(
    splits: Mapping[str, list[Sentence]],
    label_map: LabelMap,
    *,
    files: Mapping[str, str],
    changes: LabelChanges,
) -> dict[str, list[Sentence]]:
    """``data.unknown_types = "drop"``: types the model does not know become ``O``, counted per file.

    ``splits`` maps a name to its sentences and ``files`` the same name to the file they came from.
    """
    result = {}
    for name, sentences in splits.items():
        type_map = unknown_types_map(types_in(sentences), label_map, "data.unknown_types")
        result[name] = (
            harmonise(sentences, type_map, file=files.get(name, name), changes=changes)
            if type_map
            else sentences
        )
    return result


def drop_unknown_in_corpus(corpus: Corpus, label_map: LabelMap) -> None:
    """``drop_unknown_types`` over every split of a corpus, in place; counted in ``corpus.changes``."""
    for language, splits in corpus.splits.items():
        files = corpus.sources.get(language, {})
        corpus.splits[language] = drop_unknown_types(splits, label_map, files=files, changes=corpus.changes)
