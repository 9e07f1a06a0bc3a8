"""The bundled sample corpus: well-formed IOB2, the promised sizes, and reproducible from its generator.

The files are read with a tiny local reader rather than nertool's own, so that a bug in the
toolkit's reader cannot hide a bug in the data (or the other way round).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from nertool.labels import iob2_issues, parse_tag, tags_to_spans

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "nertool" / "resources" / "sample"
GENERATOR = ROOT / "scripts" / "make_sample.py"

EXPECTED_SIZES = {
    "de": {"train": 240, "validation": 60, "test": 60},
    "fr": {"train": 60, "validation": 40, "test": 40},
    "it": {"train": 60, "validation": 40, "test": 40},
    "en": {"train": 60, "validation": 40, "test": 40},
}
FILES = [(lang, split) for lang, sizes in EXPECTED_SIZES.items() for split in sizes]

Sentence = tuple[tuple[str, ...], tuple[str, ...]]


def read_split(path: Path) -> list[Sentence]:
    """Sentences of a ``token<TAB>tag`` file; asserts the exact line shape on the way."""
    text = path.read_bytes().decode("utf-8")
    assert text.endswith("\n") and not text.endswith("\n\n"), f"{path}: one trailing newline expected"
    sentences = []
    for block in text[:-1].split("\n\n"):
        pairs = [line.split("\t") for line in block.split("\n")]
        assert all(len(pair) == 2 for pair in pairs), f"{path}: a line without exactly one TAB"
        sentences.append((tuple(p[0] for p in pairs), tuple(p[1] for p in pairs)))
    return sentences


def load_generator() -> ModuleType:
    """Import ``scripts/make_sample.py`` (a script, not part of the package) by its path."""
    spec = importlib.util.spec_from_file_location("make_sample", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here while the script loads
    spec.loader.exec_module(module)
    return module


def entity_texts(lang: str, kind: str) -> set[str]:
    """Surface strings of all entities of ``kind`` in every split of ``lang``."""
    found = set()
    for split in EXPECTED_SIZES[lang]:
        for tokens, tags in read_split(SAMPLE / lang / f"{split}.tsv"):
            found |= {" ".join(tokens[s.start : s.end]) for s in tags_to_spans(tags) if s.label == kind}
    return found


def test_layout_is_exactly_the_expected_files() -> None:
    present = sorted(p.relative_to(SAMPLE).as_posix() for p in SAMPLE.rglob("*") if p.is_file())
    assert present == sorted(f"{lang}/{split}.tsv" for lang, split in FILES)


@pytest.mark.parametrize(("lang", "split"), FILES)
def test_split_has_promised_sentence_count(lang: str, split: str) -> None:
    assert len(read_split(SAMPLE / lang / f"{split}.tsv")) == EXPECTED_SIZES[lang][split]


@pytest.mark.parametrize(("lang", "split"), FILES)
def test_tags_are_valid_iob2_over_per_org_loc(lang: str, split: str) -> None:
    types = set()
    for tokens, tags in read_split(SAMPLE / lang / f"{split}.tsv"):
        assert len(tokens) == len(tags) > 0
        assert iob2_issues(tags) == [], " ".join(tokens)
        types |= {kind for tag in tags if (kind := parse_tag(tag)[1]) is not None}
    assert types == {"PER", "ORG", "LOC"}


@pytest.mark.parametrize(("lang", "split"), FILES)
def test_tokens_are_nonempty_and_free_of_whitespace(lang: str, split: str) -> None:
    for tokens, _ in read_split(SAMPLE / lang / f"{split}.tsv"):
        assert all(token and not any(ch.isspace() for ch in token) for token in tokens), tokens


@pytest.mark.parametrize("lang", EXPECTED_SIZES)
def test_no_sentence_is_shared_between_splits(lang: str) -> None:
    splits = {
        split: {s[0] for s in read_split(SAMPLE / lang / f"{split}.tsv")} for split in EXPECTED_SIZES[lang]
    }
    assert not splits["train"] & splits["test"]
    assert not splits["train"] & splits["validation"]
    assert not splits["validation"] & splits["test"]


@pytest.mark.parametrize("lang", EXPECTED_SIZES)
def test_each_language_has_sentences_without_entities_and_multiword_entities(lang: str) -> None:
    sentences = read_split(SAMPLE / lang / "train.tsv")
    assert any(all(tag == "O" for tag in tags) for _, tags in sentences)
    assert any(any(tag.startswith("I-") for tag in tags) for _, tags in sentences)


@pytest.mark.parametrize("lang", ["fr", "it", "en"])
def test_names_are_shared_with_german_so_transfer_is_possible(lang: str) -> None:
    assert len(entity_texts("de", "PER") & entity_texts(lang, "PER")) >= 10
    assert len(entity_texts("de", "ORG") & entity_texts(lang, "ORG")) >= 10


@pytest.mark.parametrize(
    ("kind", "names"),
    [
        ("PER", {"Angela Merkel", "Charles de Gaulle", "Ludwig van Beethoven"}),
        ("ORG", {"Deutsche Bank", "Banca d'Italia", "Borussia Dortmund"}),
        ("LOC", {"New York", "Frankfurt am Main", "Rio de Janeiro"}),
    ],
)
def test_german_contains_typical_multiword_entities(kind: str, names: set[str]) -> None:
    assert names & entity_texts("de", kind)


def test_corpus_stays_small() -> None:
    assert sum(p.stat().st_size for p in SAMPLE.rglob("*.tsv")) < 200_000


def test_generator_reproduces_the_committed_files_byte_for_byte(tmp_path: Path) -> None:
    assert load_generator().main(["--out", str(tmp_path)]) == 0
    for lang, split in FILES:
        relative = Path(lang) / f"{split}.tsv"
        assert (tmp_path / relative).read_bytes() == (SAMPLE / relative).read_bytes(), relative


def test_another_seed_gives_another_corpus(tmp_path: Path) -> None:
    load_generator().main(["--out", str(tmp_path), "--seed", "7"])
    assert (tmp_path / "de" / "train.tsv").read_bytes() != (SAMPLE / "de" / "train.tsv").read_bytes()
