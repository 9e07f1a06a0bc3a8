"""Recipes: defaults, TOML files, ``--set`` overrides, path resolution, and the resolved dump."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import tomllib
from pydantic import ValidationError

from nertool.config import Recipe, apply_overrides, build_recipe, dump_recipe, load_recipe
from nertool.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
RECIPES = [
    *sorted((ROOT / "recipes").glob("**/*.toml")),
    *sorted((ROOT / "nertool" / "resources").glob("*.toml")),
]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------- defaults


def test_defaults() -> None:
    recipe = load_recipe(None)
    assert recipe == Recipe()
    assert recipe.seed == 42
    assert recipe.model.name == "scratch:tiny"
    assert recipe.model.label_strategy == "first"
    assert recipe.data.source == "sample"
    assert recipe.data.train_languages == ["de"]
    assert recipe.data.max_train_samples is None and recipe.data.fractions is None
    assert recipe.train.batch_size == 24
    assert recipe.transfer.sources == [["de"]]


def test_eval_languages_default_to_train_languages() -> None:
    assert load_recipe(None, ['data.train_languages=["de","fr"]']).eval_languages == ["de", "fr"]
    assert load_recipe(None, ['data.eval_languages=["en"]']).eval_languages == ["en"]


def test_recipe_is_frozen() -> None:
    recipe = Recipe()
    with pytest.raises(ValidationError, match="frozen"):
        recipe.seed = 1
    with pytest.raises(ValidationError, match="frozen"):
        recipe.train.epochs = 1


# ---------------------------------------------------------------- TOML files

FULL = """\
seed = 7

[model]
name = "scratch:small"
max_length = 128
label_strategy = "all"

[data]
source = "hub:google/xtreme:PAN-X.{lang}"
train_languages = ["de", "fr", "it", "en"]
eval_languages = ["de", "fr", "it", "en", "nl"]
max_train_samples = 4000
fractions = { de = 0.629, fr = 0.229, it = 0.084, en = 0.059 }

[train]
epochs = 3
batch_size = 32
learning_rate = 5e-4

[transfer]
sources = [["de"], ["de", "fr"], "en"]
sample_sizes = [250, 500, 1000]
"""


def test_load_a_full_recipe(tmp_path: Path) -> None:
    recipe = load_recipe(write(tmp_path / "full.toml", FULL))
    assert recipe.seed == 7
    assert (recipe.model.name, recipe.model.max_length, recipe.model.label_strategy) == (
        "scratch:small",
        128,
        "all",
    )
    assert recipe.data.source == "hub:google/xtreme:PAN-X.{lang}"
    assert recipe.data.fractions == {"de": 0.629, "fr": 0.229, "it": 0.084, "en": 0.059}
    assert recipe.data.max_train_samples == 4000
    assert (recipe.train.epochs, recipe.train.batch_size, recipe.train.learning_rate) == (3.0, 32, 5e-4)
    assert recipe.train.weight_decay == 0.01  # untouched keys keep their defaults
    assert recipe.transfer.sources == [["de"], ["de", "fr"], "en"]
    assert recipe.transfer.sample_sizes == [250, 500, 1000]


# (recipe text, words the message must hold)
BAD_RECIPES = [
    ("[train]\nepoch = 3\n", ["unknown key 'train.epoch'"]),
    ("[model]\nnmae = 'x'\n", ["unknown key 'model.nmae'"]),
    ("seeed = 1\n", ["unknown key 'seeed'"]),
    ("[trian]\nepochs = 1\n", ["unknown key 'trian'"]),
    ('[train]\nepochs = "three"\n', ["train.epochs", "'three'"]),
    ("[train]\nbatch_size = 0\n", ["train.batch_size", "0"]),
    ("[train]\nlearning_rate = -1.0\n", ["train.learning_rate"]),
    ('[model]\nlabel_strategy = "last"\n', ["model.label_strategy", "'last'"]),
    ('[data]\ntrain_languages = "de"\n', ["data.train_languages"]),
    ('[data]\nformat = "csv"\n', ["data.format", "'csv'"]),
    ("seed = 1.5\n", ["seed"]),
    ("[train\nepochs = 1\n", ["not valid TOML"]),
]


@pytest.mark.parametrize(("text", "words"), BAD_RECIPES)
def test_bad_recipe_error_names_file_and_key(tmp_path: Path, text: str, words: list[str]) -> None:
    path = write(tmp_path / "bad.toml", text)
    with pytest.raises(ConfigError) as caught:
        load_recipe(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:")
    for word in words:
        assert word in message


def test_missing_recipe_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="recipe not found"):
        load_recipe(tmp_path / "nope.toml")


def test_non_utf8_recipe_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'[data]\nsource = "caf\xe9"\n')
    with pytest.raises(ConfigError, match=r"latin1\.toml"):
        load_recipe(path)


def test_section_written_as_a_value_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="data"):
        load_recipe(write(tmp_path / "r.toml", 'data = "wikiann"\n'))


# ---------------------------------------------------------------- --set overrides

OVERRIDES = [
    ("train.epochs=1", lambda r: r.train.epochs, 1.0),
    ("train.batch_size=8", lambda r: r.train.batch_size, 8),
    ("train.learning_rate=1e-3", lambda r: r.train.learning_rate, 1e-3),
    ("train.learning_rate=0.0005", lambda r: r.train.learning_rate, 5e-4),
    ("seed=3", lambda r: r.seed, 3),
    ("train.group_by_length=false", lambda r: r.train.group_by_length, False),
    ('data.train_languages=["de","fr"]', lambda r: r.data.train_languages, ["de", "fr"]),
    ("data.train_languages=[]", lambda r: r.data.train_languages, []),
    ("data.source=../shared/data/wikiann", lambda r: r.data.source, "../shared/data/wikiann"),
    ('data.source="quoted"', lambda r: r.data.source, "quoted"),
    ("data.source=hub:google/xtreme:PAN-X.{lang}", lambda r: r.data.source, "hub:google/xtreme:PAN-X.{lang}"),
    ("model.name=scratch:small", lambda r: r.model.name, "scratch:small"),
    ("model.name=FacebookAI/xlm-roberta-base", lambda r: r.model.name, "FacebookAI/xlm-roberta-base"),
    ("data.fractions={de=0.5, fr=0.25}", lambda r: r.data.fractions, {"de": 0.5, "fr": 0.25}),
    ("data.fractions.de=0.5", lambda r: r.data.fractions, {"de": 0.5}),  # nested key
    ('transfer.sources=[["de"], ["de","fr"]]', lambda r: r.transfer.sources, [["de"], ["de", "fr"]]),
    (" train.epochs = 2 ", lambda r: r.train.epochs, 2.0),  # spaces around key and value
]


@pytest.mark.parametrize(("override", "read", "expected"), OVERRIDES)
def test_set_override(override: str, read: Any, expected: Any) -> None:
    value = read(load_recipe(None, [override]))
    assert value == expected
    assert type(value) is type(expected)


def test_later_overrides_win_and_file_values_are_overridden(tmp_path: Path) -> None:
    path = write(tmp_path / "r.toml", "[train]\nepochs = 5\nbatch_size = 16\n")
    recipe = load_recipe(path, ["train.epochs=1", "train.epochs=2"])
    assert (recipe.train.epochs, recipe.train.batch_size) == (2.0, 16)


@pytest.mark.parametrize("override", ["noequals", "=3", " =3", "train.epochs"])
def test_bad_set_syntax(override: str) -> None:
    with pytest.raises(ConfigError, match=r"expected section\.key=value"):
        load_recipe(None, [override])


@pytest.mark.parametrize(
    ("override", "words"),
    [
        ("train.epoch=1", ["--set", "unknown key 'train.epoch'"]),
        ("bogus.key=1", ["unknown key 'bogus'"]),
        ("train.epochs=abc", ["train.epochs", "'abc'"]),
        ("train.batch_size=1.5", ["train.batch_size"]),
        ("seed.x=1", ["seed"]),
    ],
)
def test_bad_set_value_names_the_key(override: str, words: list[str]) -> None:
    with pytest.raises(ConfigError) as caught:
        load_recipe(None, [override])
    for word in words:
        assert word in str(caught.value)


def test_set_into_a_value_is_an_error() -> None:
    with pytest.raises(ConfigError, match="'epochs' is a value, not a section"):
        apply_overrides({"train": {"epochs": 3}}, ["train.epochs.x=1"])


def test_apply_overrides_returns_a_new_dict() -> None:
    data = {"train": {"epochs": 3}}
    result = apply_overrides(data, ["train.epochs=1", "seed=5"])
    assert result == {"train": {"epochs": 1}, "seed": 5}
    assert data == {"train": {"epochs": 3}}


def test_apply_overrides_leaves_nested_input_untouched() -> None:
    data = {"data": {"fractions": {"de": 0.1}}}
    before = copy.deepcopy(data)
    apply_overrides(data, ["data.fractions.fr=0.5"])
    assert data == before


def test_build_recipe_names_its_origin() -> None:
    with pytest.raises(ConfigError, match=r"^run/config\.toml: unknown key 'train\.x'"):
        build_recipe({"train": {"x": 1}}, "run/config.toml")


# ---------------------------------------------------------------- relative paths


def test_relative_paths_resolve_against_the_recipe_folder(tmp_path: Path, monkeypatch: Any) -> None:
    (tmp_path / "corpus" / "de").mkdir(parents=True)
    (tmp_path / "models" / "mine").mkdir(parents=True)
    recipe_path = write(
        tmp_path / "recipes" / "r.toml", '[data]\nsource = "../corpus"\n[model]\nname = "../models/mine"\n'
    )
    monkeypatch.chdir(tmp_path / "models")  # somewhere else entirely
    recipe = load_recipe(recipe_path)
    assert recipe.data.source == str((tmp_path / "corpus").resolve())
    assert recipe.model.name == str((tmp_path / "models" / "mine").resolve())


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("data.source", "hub:google/xtreme:PAN-X.{lang}"),
        ("data.source", "sample"),
        ("model.name", "scratch:tiny"),
        ("model.name", "FacebookAI/xlm-roberta-base"),  # a hub id, not a folder beside the recipe
        ("data.source", "missing/folder"),
    ],
)
def test_non_local_values_are_left_alone(tmp_path: Path, key: str, value: str) -> None:
    section, leaf = key.split(".")
    recipe = load_recipe(write(tmp_path / "r.toml", f'[{section}]\n{leaf} = "{value}"\n'))
    assert getattr(getattr(recipe, section), leaf) == value


def test_set_paths_stay_relative_to_the_working_directory(tmp_path: Path) -> None:
    (tmp_path / "corpus").mkdir()
    recipe_path = write(tmp_path / "r.toml", "seed = 1\n")
    assert load_recipe(recipe_path, ["data.source=corpus"]).data.source == "corpus"


def test_absolute_path_is_kept(tmp_path: Path) -> None:
    (tmp_path / "corpus").mkdir()
    recipe = load_recipe(write(tmp_path / "r.toml", f'[data]\nsource = "{tmp_path / "corpus"}"\n'))
    assert recipe.data.source == str(tmp_path / "corpus")


# ---------------------------------------------------------------- dump → load


ROUND_TRIPS = [
    [],
    ["train.epochs=1.5", "train.learning_rate=3e-5", "seed=0"],
    ['data.train_languages=["de","fr","it","en"]', "data.fractions={de=0.629, fr=0.229, it=0.084, en=0.059}"],
    ["data.max_train_samples=4000", "data.sampling_temperature=2.5", "model.revision=abc"],
    [
        'transfer.sources=[["de"], ["de","fr"], "en"]',
        "transfer.sample_sizes=[250, 500]",
        "transfer.target_language=nl",
    ],
    ['pretrain.text=["a b.txt", "C:\\\\data\\\\x.txt", "quote\\"d", "ü ñ 中文"]', "pretrain.max_minutes=1.0"],
    ["train.learning_rate=1e-300", "train.max_grad_norm=inf", "train.early_stopping_patience=3"],
    ["model.label_strategy=all", "train.mixed_precision=bf16", "train.seeds=[1, 2, 3]"],
]


@pytest.mark.parametrize("overrides", ROUND_TRIPS)
def test_dump_then_load_gives_an_equal_recipe(tmp_path: Path, overrides: list[str]) -> None:
    recipe = load_recipe(None, overrides)
    text = dump_recipe(recipe)
    tomllib.loads(text)  # valid TOML
    again = load_recipe(write(tmp_path / "config.toml", text))
    assert again == recipe
    stable = dump_recipe(again)  # a dumped recipe dumps to the same text again
    assert dump_recipe(load_recipe(write(tmp_path / "again.toml", stable))) == stable


def test_dump_omits_none_and_holds_every_section() -> None:
    text = dump_recipe(Recipe())
    data = tomllib.loads(text)
    assert set(data) == {"seed", "model", "data", "train", "transfer", "pretrain"}
    assert "revision" not in data["model"] and "max_train_samples" not in data["data"]


@pytest.mark.parametrize("value", ["two\nlines", "bell\x07"])
def test_dump_escapes_control_characters(tmp_path: Path, value: str) -> None:
    recipe = build_recipe({"data": {"source": value}})
    again = load_recipe(write(tmp_path / "config.toml", dump_recipe(recipe)))
    assert again.data.source == value


# ---------------------------------------------------------------- shipped recipes


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: str(p.relative_to(ROOT)))
def test_shipped_recipes_load(path: Path) -> None:
    recipe = load_recipe(path)
    assert isinstance(recipe, Recipe)
    again = build_recipe(tomllib.loads(dump_recipe(recipe)), "dump")
    assert again == recipe
