"""``datasets`` as a data source: save_to_disk folders and Parquet files read like the TSV corpus."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from nertool.config import build_recipe, dump_recipe
from nertool.data.sources import SPLITS, Corpus, load_corpus, locate, read_hub_split
from nertool.errors import ConfigError, DataError
from nertool.labels import canonical_order, entity_type

datasets = pytest.importorskip("datasets")

SAMPLE = Path(__file__).resolve().parents[1] / "nertool" / "resources" / "sample"
LANGUAGES = sorted(p.name for p in SAMPLE.iterdir() if p.is_dir())


@pytest.fixture(scope="module")
def tsv() -> Corpus:
    return load_corpus(str(SAMPLE), LANGUAGES)


def tag_names(corpus: Corpus) -> list[str]:
    tags = {t for splits in corpus.splits.values() for s in splits.values() for x in s for t in x.tags}
    return canonical_order({kind for tag in tags if (kind := entity_type(tag))})


def wikiann_like(corpus: Corpus, language: str, *, tokens: str = "tokens", tags: str = "ner_tags") -> Any:
    """A DatasetDict shaped like WikiANN's: ClassLabel tags, a ``langs`` column beside them."""
    names = tag_names(corpus)
    features = datasets.Features(
        {
            tokens: datasets.Sequence(datasets.Value("string")),
            tags: datasets.Sequence(datasets.ClassLabel(names=names)),
            "langs": datasets.Sequence(datasets.Value("string")),
        }
    )
    splits = {}
    for split, sentences in corpus.splits[language].items():
        rows = {
            tokens: [list(s.tokens) for s in sentences],
            tags: [[names.index(t) for t in s.tags] for s in sentences],
            "langs": [[language] * len(s.tokens) for s in sentences],
        }
        splits[split] = datasets.Dataset.from_dict(rows, features=features)
    return datasets.DatasetDict(splits)


def word_tags(corpus: Corpus) -> dict[str, dict[str, list[tuple[tuple[str, ...], tuple[str, ...]]]]]:
    return {
        language: {split: [(s.tokens, s.tags) for s in sentences] for split, sentences in splits.items()}
        for language, splits in corpus.splits.items()
    }


def save_per_language(corpus: Corpus, root: Path, layout: str, **columns: str) -> Path:
    for language in LANGUAGES:
        write(wikiann_like(corpus, language, **columns), root / language, layout)
    return root


def write(dataset_dict: Any, folder: Path, layout: str) -> None:
    if layout == "save_to_disk":
        dataset_dict.save_to_disk(str(folder))
        return
    folder.mkdir(parents=True, exist_ok=True)
    for split, dataset in dataset_dict.items():
        dataset.to_parquet(str(folder / f"{split}.parquet"))


@pytest.mark.parametrize("layout", ["save_to_disk", "parquet"])
def test_per_language_datasets_read_exactly_like_the_tsv_folder(tsv, tmp_path, layout):
    root = save_per_language(tsv, tmp_path / "corpus", layout)
    corpus = load_corpus(str(root), LANGUAGES)
    assert word_tags(corpus) == word_tags(tsv)
    assert corpus.reports == []
    assert corpus.sources["de"]["train"].startswith(str(root / "de" / "train"))


@pytest.mark.parametrize("layout", ["save_to_disk", "parquet"])
def test_one_dataset_at_the_top_is_the_one_language_asked_for(tsv, tmp_path, layout):
    write(wikiann_like(tsv, "fr"), tmp_path / "fr-data", layout)
    corpus = load_corpus(str(tmp_path / "fr-data"), ["fr"])
    assert corpus.languages == ["fr"]
    assert word_tags(corpus)["fr"] == word_tags(tsv)["fr"]
    assert load_corpus(str(tmp_path / "fr-data"), ["fr", "de"]).languages == ["und"]


def test_split_aliases_and_missing_splits(tsv, tmp_path):
    dataset_dict = wikiann_like(tsv, "it")
    renamed = datasets.DatasetDict({"train": dataset_dict["train"], "dev": dataset_dict["validation"]})
    renamed.save_to_disk(str(tmp_path / "it"))
    refs = locate(str(tmp_path), ["it"], SPLITS)
    assert [(r.split, r.dataset.name if r.dataset else None) for r in refs] == [
        ("train", "train"),
        ("validation", "dev"),
    ]


def test_other_column_names_through_the_recipe_keys(tsv, tmp_path):
    root = save_per_language(tsv, tmp_path / "corpus", "parquet", tokens="words", tags="labels")
    corpus = load_corpus(str(root), ["de"], tokens_column="words", tags_column="labels")
    assert word_tags(corpus)["de"] == word_tags(tsv)["de"]
    recipe = build_recipe({"data": {"source": str(root), "tokens_column": "words", "tags_column": "labels"}})
    assert (recipe.data.tokens_column, recipe.data.tags_column) == ("words", "labels")


def test_string_tags_need_no_class_label(tsv, tmp_path):
    sentences = tsv.splits["de"]["test"]
    rows = {"tokens": [list(s.tokens) for s in sentences], "ner_tags": [list(s.tags) for s in sentences]}
    datasets.Dataset.from_dict(rows).to_parquet(str(tmp_path / "test.parquet"))
    corpus = load_corpus(str(tmp_path), ["de"], ["test"])
    assert word_tags(corpus)["de"]["test"] == word_tags(tsv)["de"]["test"]


def test_a_missing_column_is_one_line_naming_it_and_the_keys(tsv, tmp_path):
    root = save_per_language(tsv, tmp_path / "corpus", "save_to_disk", tags="labels")
    with pytest.raises(DataError) as caught:
        load_corpus(str(root), ["de"])
    message = str(caught.value)
    assert "\n" not in message
    assert "'ner_tags'" in message and "labels" in message
    assert "data.tokens_column" in message and "data.tags_column" in message


def test_integer_tags_without_class_label_are_refused(tmp_path):
    datasets.Dataset.from_dict({"tokens": [["Rom"]], "ner_tags": [[3]]}).to_parquet(
        str(tmp_path / "train.parquet")
    )
    with pytest.raises(DataError, match="ClassLabel"):
        load_corpus(str(tmp_path), ["it"], ["train"])


def test_inspection_reads_a_dataset_ref_through_read_hub_split(tsv, tmp_path):
    root = save_per_language(tsv, tmp_path / "corpus", "save_to_disk")
    [ref] = locate(str(root), ["en"], ["validation"])
    assert ref.path is None and ref.dataset == root / "en" / "validation"
    assert [(s.tokens, s.tags) for s in read_hub_split(ref)] == word_tags(tsv)["en"]["validation"]


def test_column_keys_are_optional_and_stay_out_of_a_default_config_toml():
    assert "column" not in dump_recipe(build_recipe({}))
    with pytest.raises(ConfigError, match="tokens_column"):
        build_recipe({"data": {"tokens_column": ""}})
