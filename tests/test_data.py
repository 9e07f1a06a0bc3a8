"""Data SPECs: corpus folders, single files, ``hub:`` specs through a fake loader, and sampling."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from nertool.data.readers import Sentence
from nertool.data.sources import (
    SPLITS,
    UNDETERMINED,
    SplitRef,
    folder_languages,
    is_hub_spec,
    load_corpus,
    locate,
    parse_hub_spec,
    plan_sample,
    read_hub_split,
    sample_sentences,
)
from nertool.errors import ConfigError, DataError

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
needs_data = pytest.mark.skipif(not DATA.exists(), reason="real data folder ../shared/data is absent")


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def corpus_dir(tmp_path: Path) -> Path:
    """de: train + dev (an alias of validation); fr: test only; noise that is not a language."""
    root = tmp_path / "corpus"
    write(root / "de" / "train.tsv", "Anna\tB-PER\nlacht\tO\n\nRom\tB-LOC\n")
    write(root / "de" / "dev.txt", "Paris\tB-LOC\n")
    write(root / "fr" / "test.tsv", "fr:Jean\tB-PER\n")
    write(root / "fr" / "notes.md", "not a split\n")
    (root / "xx").mkdir()  # a folder without split files is not a language
    write(root / "README.md", "a corpus\n")
    return root


# ---------------------------------------------------------------- corpus folders


def test_folder_languages_lists_only_folders_with_splits(corpus_dir: Path) -> None:
    assert folder_languages(corpus_dir) == ["de", "fr"]


def test_locate_in_folder_finds_splits_and_aliases(corpus_dir: Path) -> None:
    refs = locate(str(corpus_dir), ["de", "fr"], SPLITS)
    found = {(r.language, r.split): r.path.name for r in refs if r.path is not None}
    assert found == {
        ("de", "train"): "train.tsv",
        ("de", "validation"): "dev.txt",
        ("fr", "test"): "test.tsv",
    }


def test_locate_without_languages_takes_every_language(corpus_dir: Path) -> None:
    assert {r.language for r in locate(str(corpus_dir), [], SPLITS)} == {"de", "fr"}


@pytest.mark.parametrize(
    ("alias", "split"), [("val", "validation"), ("testa", "validation"), ("testb", "test")]
)
def test_split_aliases(tmp_path: Path, alias: str, split: str) -> None:
    write(tmp_path / "nl" / f"{alias}.txt", "Jan B-PER\n")
    [ref] = locate(str(tmp_path), ["nl"], SPLITS)
    assert (ref.split, ref.path) == (split, tmp_path / "nl" / f"{alias}.txt")


def test_missing_language_lists_the_available_ones(corpus_dir: Path) -> None:
    with pytest.raises(DataError) as caught:
        locate(str(corpus_dir), ["de", "it", "es"], SPLITS)
    message = str(caught.value)
    assert "it, es" in message
    assert "found: de, fr" in message
    assert str(corpus_dir) in message


def test_missing_source_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        locate(str(tmp_path / "nowhere"), ["de"], SPLITS)


def test_load_corpus_from_folder(corpus_dir: Path) -> None:
    corpus = load_corpus(str(corpus_dir), ["de", "fr"])
    assert corpus.languages == ["de", "fr"]
    train = corpus.get("de", "train")
    assert train is not None and [s.tokens for s in train] == [("Anna", "lacht"), ("Rom",)]
    assert corpus.get("fr", "test") == [Sentence(("Jean",), ("B-PER",), 1)]  # PAN-X prefix stripped
    assert corpus.get("fr", "train") is None and corpus.get("es", "test") is None
    assert corpus.sources["de"]["validation"] == str(corpus_dir / "de" / "dev.txt")
    assert [(Path(r.path).name, r.sentences) for r in corpus.reports] == [
        ("train.tsv", 2),
        ("dev.txt", 1),
        ("test.tsv", 1),
    ]


def test_load_corpus_logs_repairs_and_refuses_them_when_strict(tmp_path: Path, caplog: Any) -> None:
    write(tmp_path / "de" / "train.tsv", "a\tO\nRom\tI-LOC\n")
    with caplog.at_level(logging.WARNING, logger="nertool"):
        corpus = load_corpus(str(tmp_path), ["de"])
    assert corpus.reports[0].repaired_tags == 1
    assert "train.tsv:2: repaired 1 orphan" in caplog.text
    with pytest.raises(DataError, match=r"train\.tsv:2:"):
        load_corpus(str(tmp_path), ["de"], strict_tags=True)


# ---------------------------------------------------------------- single files


@pytest.mark.parametrize(
    ("languages", "splits", "expected"),
    [
        (["de"], SPLITS, ("de", "train")),
        ([], SPLITS, (UNDETERMINED, "train")),
        (["de", "fr"], SPLITS, (UNDETERMINED, "train")),
        (["it"], ["test"], ("it", "test")),
    ],
)
def test_single_file_spec(
    tmp_path: Path, languages: list[str], splits: Any, expected: tuple[str, str]
) -> None:
    path = write(tmp_path / "mine.txt", "Anna B-PER\n")
    [ref] = locate(str(path), languages, splits)
    assert (ref.language, ref.split, ref.path) == (*expected, path)


def test_single_file_with_explicit_format(tmp_path: Path) -> None:
    path = write(tmp_path / "mine.txt", "7\tAnna\tB-PER\n")
    corpus = load_corpus(str(path), ["de"], ["test"], file_format="idx_token_tag")
    assert corpus.get("de", "test") == [Sentence(("Anna",), ("B-PER",), 1)]
    assert corpus.reports[0].file_format == "idx_token_tag"


# ---------------------------------------------------------------- hub specs


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("hub:google/xtreme:PAN-X.{lang}", ("google/xtreme", "PAN-X.{lang}")),
        ("hub:wikiann", ("wikiann", None)),
        ("hub:wikiann:", ("wikiann", None)),
        ("hub:unimelb-nlp/wikiann:de", ("unimelb-nlp/wikiann", "de")),
        ("hub:a/b:x:y", ("a/b", "x:y")),
    ],
)
def test_parse_hub_spec(spec: str, expected: tuple[str, str | None]) -> None:
    assert is_hub_spec(spec)
    assert parse_hub_spec(spec) == expected


@pytest.mark.parametrize("spec", ["hub:", "hub::PAN-X.de"])
def test_hub_spec_without_a_name_is_an_error(spec: str) -> None:
    with pytest.raises(DataError, match="names no dataset"):
        parse_hub_spec(spec)


@pytest.mark.parametrize("spec", ["wikiann", "data/hub:x", "./hub:x", "HUB:x"])
def test_not_hub_specs(spec: str) -> None:
    assert not is_hub_spec(spec)


def test_locate_hub_fills_in_the_language_and_revision() -> None:
    refs = locate("hub:google/xtreme:PAN-X.{lang}", ["de", "fr"], ["train", "test"], revision="abc123")
    assert [(r.language, r.split, r.hub_config) for r in refs] == [
        ("de", "train", "PAN-X.de"),
        ("de", "test", "PAN-X.de"),
        ("fr", "train", "PAN-X.fr"),
        ("fr", "test", "PAN-X.fr"),
    ]
    assert {(r.hub_name, r.revision, r.path) for r in refs} == {("google/xtreme", "abc123", None)}
    assert refs[0].describe() == "hub:google/xtreme:PAN-X.de@abc123[train]"


NAMES = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"]


def fake_dataset() -> Any:
    """Two PAN-X-like rows with ``ClassLabel`` tags, as ``datasets.load_dataset`` returns them."""
    datasets = pytest.importorskip("datasets")
    Features, Sequence, Value = datasets.Features, datasets.Sequence, datasets.Value
    features = Features(
        {
            "tokens": Sequence(Value("string")),
            "ner_tags": Sequence(datasets.ClassLabel(names=NAMES)),
            "langs": Sequence(Value("string")),
        }
    )
    rows = {
        "tokens": [["Angela", "Merkel", "besucht", "Paris"], ["Die", "UNO", "."]],
        "ner_tags": [[1, 2, 0, 5], [0, 3, 0]],
        "langs": [["de"] * 4, ["de"] * 3],
    }
    return datasets.Dataset.from_dict(rows, features=features)


class FakeLoader:
    """Stands in for ``datasets.load_dataset``: records its calls, returns a tiny dataset."""

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset
        self.calls: list[tuple[Any, ...]] = []

    def __call__(self, name: str, config: str | None, split: str, revision: str | None) -> Any:
        self.calls.append((name, config, split, revision))
        return self.dataset


def test_read_hub_split_maps_class_label_ids_to_names() -> None:
    loader = FakeLoader(fake_dataset())
    ref = SplitRef("de", "validation", hub_name="google/xtreme", hub_config="PAN-X.de", revision="v1.0")
    sentences = read_hub_split(ref, loader)
    assert loader.calls == [("google/xtreme", "PAN-X.de", "validation", "v1.0")]
    assert sentences == [
        Sentence(("Angela", "Merkel", "besucht", "Paris"), ("B-PER", "I-PER", "O", "B-LOC"), 1),
        Sentence(("Die", "UNO", "."), ("O", "B-ORG", "O"), 2),
    ]


def test_read_hub_split_keeps_string_tags() -> None:
    rows = [{"tokens": ["Rom"], "ner_tags": ["B-LOC"]}]
    assert read_hub_split(SplitRef("it", "train", hub_name="x"), FakeLoader(rows)) == [
        Sentence(("Rom",), ("B-LOC",), 1)
    ]


def test_failing_hub_loader_is_a_data_error() -> None:
    def offline(*args: Any) -> Any:
        raise ConnectionError("no route to host")

    ref = SplitRef("de", "train", hub_name="google/xtreme", hub_config="PAN-X.de")
    with pytest.raises(DataError) as caught:
        read_hub_split(ref, offline)
    message = str(caught.value)
    assert "hub:google/xtreme:PAN-X.de@main[train]" in message
    assert "no route to host" in message


def test_load_corpus_from_hub_passes_revision_and_records_sources() -> None:
    loader = FakeLoader(fake_dataset())
    corpus = load_corpus("hub:google/xtreme:PAN-X.{lang}", ["de"], ["test"], revision="r2", hub_loader=loader)
    assert loader.calls == [("google/xtreme", "PAN-X.de", "test", "r2")]
    test = corpus.get("de", "test")
    assert test is not None and test[0].tags == ("B-PER", "I-PER", "O", "B-LOC")
    assert corpus.sources == {"de": {"test": "hub:google/xtreme:PAN-X.de@r2[test]"}}
    assert corpus.reports == []


# ---------------------------------------------------------------- real corpus folders


@needs_data
def test_real_wikiann_folder_layout() -> None:
    assert folder_languages(DATA / "wikiann") == ["de", "en", "es", "fr", "hi", "it", "nl", "pl", "pt"]
    refs = locate(str(DATA / "wikiann"), ["hi", "es"], SPLITS)
    assert [(r.language, r.split, r.path.name) for r in refs if r.path] == [
        ("hi", "train", "train.tsv"),
        ("hi", "validation", "validation.tsv"),
        ("es", "train", "train.conllu"),
        ("es", "validation", "validation.conllu"),
        ("es", "test", "test.conllu"),
    ]


@needs_data
def test_real_wikiann_corpus_mixes_formats() -> None:
    corpus = load_corpus(str(DATA / "wikiann"), ["de", "es"], ["validation"])
    assert {Path(r.path).parent.name: r.file_format for r in corpus.reports} == {
        "de": "panx",
        "es": "idx_token_tag",
    }
    for language in ("de", "es"):
        sentences = corpus.get(language, "validation")
        assert sentences is not None and len(sentences) == 10_000
    de = corpus.get("de", "validation")
    assert de is not None and de[0].tokens[:2] == ("Anton", "Wilhelm")


@needs_data
def test_real_missing_language_lists_the_corpus_languages() -> None:
    with pytest.raises(DataError) as caught:
        locate(str(DATA / "masakhaner"), ["zul"], SPLITS)
    assert "found: amh, hau, ibo, kin, lug, luo, pcm, swa, wol, yor" in str(caught.value)


# ---------------------------------------------------------------- sampling plans

FOUR = {"de": 1000, "fr": 1000, "it": 1000, "en": 1000}
SWISS = {"de": 0.629, "fr": 0.229, "it": 0.084, "en": 0.059}  # the book's mix
PLAN_CASES = [
    ({"de": 100, "fr": 10}, None, None, None, {"de": 100, "fr": 10}, "max_train_samples"),
    ({"de": 100, "fr": 10}, 50, None, None, {"de": 50, "fr": 10}, "max_train_samples"),
    ({"de": 100, "fr": 10}, 1000, None, None, {"de": 100, "fr": 10}, "max_train_samples"),
    (FOUR, None, SWISS, None, {"de": 629, "fr": 229, "it": 84, "en": 59}, "fractions"),
    ({"de": 100, "fr": 10}, None, {"de": 0.5}, None, {"de": 50}, "fractions"),
    ({"de": 100, "fr": 10}, None, None, 1.0, {"de": 100, "fr": 10}, "temperature T=1.0"),
    ({"de": 900, "fr": 100}, 50, None, 1.0, {"de": 90, "fr": 10}, "temperature T=1.0"),
    ({"de": 900, "fr": 100}, 50, None, float("inf"), {"de": 50, "fr": 50}, "temperature T=inf"),
]


@pytest.mark.parametrize(
    ("available", "max_samples", "fractions", "temperature", "counts", "method"), PLAN_CASES
)
def test_plan_sample(
    available: dict[str, int],
    max_samples: int | None,
    fractions: dict[str, float] | None,
    temperature: float | None,
    counts: dict[str, int],
    method: str,
) -> None:
    plan = plan_sample(available, max_samples, fractions, temperature=temperature)
    assert plan.counts == counts
    assert plan.method == method
    assert all(plan.counts[lang] <= available[lang] for lang in plan.counts)


def test_plan_sample_temperature_flattens_towards_small_languages() -> None:
    available = {"de": 20_000, "sw": 500}
    proportional = plan_sample(available, 2000, None, temperature=1.0).counts
    smoothed = plan_sample(available, 2000, None, temperature=5.0).counts
    assert sum(proportional.values()) == sum(smoothed.values()) == 4000
    assert smoothed["sw"] > proportional["sw"]


def test_plan_sample_fraction_for_unknown_language_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match='"xx"'):
        plan_sample({"de": 10}, None, {"xx": 0.5}, temperature=None)


def test_plan_sample_temperature_caps_at_availability() -> None:
    plan = plan_sample({"de": 100, "fr": 10}, 1000, None, temperature=1.0)
    assert plan.counts == {"de": 100, "fr": 10}


def sentences(n: int) -> list[Sentence]:
    return [Sentence((f"w{i}",), ("O",), i + 1) for i in range(n)]


def test_sample_sentences_is_reproducible_and_matches_its_indices() -> None:
    pool = sentences(500)
    chosen, indices = sample_sentences(pool, 40, seed=42, key="de")
    assert len(chosen) == len(indices) == len(set(indices)) == 40
    assert indices == sorted(indices)
    assert chosen == [pool[i] for i in indices]
    assert sample_sentences(pool, 40, seed=42, key="de") == (chosen, indices)
    assert sample_sentences(pool, 40, seed=43, key="de")[1] != indices
    assert sample_sentences(pool, 40, seed=42, key="fr")[1] != indices


@pytest.mark.parametrize("n", [500, 501, 10_000])
def test_sample_sentences_takes_everything_when_asked_for_more(n: int) -> None:
    pool = sentences(500)
    chosen, indices = sample_sentences(pool, n, seed=0, key="de")
    assert chosen == pool and indices == list(range(500))
