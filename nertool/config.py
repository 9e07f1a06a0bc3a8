"""Recipes: a typed, frozen schema read from TOML, with ``--set section.key=value`` overrides.

The recipe is the source of truth for a run: every output folder carries the fully resolved
recipe (``config.toml``) that produced it. Unknown keys and wrong types are errors naming the
key and the file, because a typo that silently falls back to a default wastes a GPU-day.
Relative paths written in a recipe are resolved against the recipe's folder; paths given with
``--set`` against the working directory, as a shell user expects.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import tomllib
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from nertool.errors import ConfigError, LabelError
from nertool.labels import check_type_map
from nertool.langcode import LANGUAGE_RULE, is_language_code


def _language(code: str) -> str:
    """A recipe language must be a language code (``nertool.langcode``): it names folders and files."""
    if not is_language_code(code):
        raise ValueError(f"{code!r} is not a language code ({LANGUAGE_RULE})")
    return code


def _some_positive(fractions: dict[str, float] | None) -> dict[str, float] | None:
    """Fractions are weights: at least one must be above zero, or nothing would be sampled."""
    if fractions is not None and fractions and not any(value > 0 for value in fractions.values()):
        raise ValueError("fractions are all zero; give at least one language a positive fraction")
    return fractions


def _type_map(mapping: dict[str, str] | None) -> dict[str, str] | None:
    """A label map must rename to a type or drop to ``O``; the error is reported under its key."""
    if mapping is not None:
        try:
            check_type_map(mapping)
        except LabelError as error:
            raise ValueError(str(error)) from None
    return mapping


def _corpus_name(name: str | None) -> str | None:
    """A corpus name becomes part of a column name (``conll2003:de``) and of file names."""
    if name is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
        raise ValueError(f"{name!r} is not a corpus name: use letters, digits, '_', '.', '-'")
    return name


Language = Annotated[str, AfterValidator(_language)]
TypeMapping = Annotated[dict[str, str] | None, AfterValidator(_type_map)]
FileFormatName = Literal["auto", "token_tag", "panx", "idx_token_tag", "conll", "jsonl"]
Rate = Annotated[float, Field(ge=0, le=1)]
Weight = Annotated[float, Field(ge=0)]
# Experiment trackers ``train.report_to`` may name: the ones Accelerate's ``log_with`` knows
# (``accelerate.utils.LoggerType`` without ``all``; a test keeps the two lists equal).
Tracker = Literal[
    "tensorboard", "wandb", "trackio", "comet_ml", "mlflow", "aim", "clearml", "dvclive", "swanlab"
]
# A Hub repository id: ``name`` (under the logged-in account) or ``namespace/name``.
HUB_REPO_ID = r"^(?:[A-Za-z0-9][\w.-]{0,95}/)?[A-Za-z0-9][\w.-]{0,95}$"
# The most subword positions a recipe may ask for: beyond any encoder nertool trains (XLM-R has
# 512); the model's own limit is applied again when it is loaded.
MAX_POSITIONS = 8192


class _Section(BaseModel):
    # No inf or nan (but in ``max_grad_norm``): ``epochs = inf`` or ``learning_rate = nan`` would
    # train forever or make a model of nan weights, and only after the data was loaded.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class ModelConfig(_Section):
    name: str = "scratch:tiny"
    revision: str | None = None
    max_length: int = Field(256, ge=8, le=MAX_POSITIONS)
    # first: a word's first subword; all: every subword (I- after the first); first_content: the
    # first subword that is not a bare "▁" piece (not read right by pipeline(aggregation="first"))
    label_strategy: Literal["first", "all", "first_content"] = "first"
    vocab_size: int = Field(8000, ge=100, description="scratch: tokenizer size")
    freeze_embeddings: bool = False
    trust_remote_code: bool = False


class CorpusSource(_Section):
    """One more corpus to read (``data.eval_sources`` / ``data.train_sources`` entries).

    Its sentences are keyed ``<name>:<language>`` (``conll2003:de``), ``name`` defaulting to the
    last part of ``source`` (its folder name). ``label_map`` is applied to this corpus only; when
    absent the recipe's ``data.label_map`` is.
    """

    source: str
    languages: list[Language] = Field(min_length=1)
    label_map: TypeMapping = None
    format: FileFormatName = "auto"
    name: Annotated[str | None, AfterValidator(_corpus_name)] = None

    @property
    def corpus(self) -> str:
        """The corpus part of the column names: ``name``, else the source's last path part."""
        if self.name is not None:
            return self.name
        body = self.source.removeprefix("hub:").split(":")[0].rstrip("/")
        return Path(body).name or body

    def column(self, language: str) -> str:
        return f"{self.corpus}:{language}"

    @property
    def columns(self) -> list[str]:
        return [self.column(lang) for lang in self.languages]


class TrainSource(CorpusSource):
    """A training corpus mixed into the run: ``fraction`` of its training split per language."""

    fraction: float = Field(1.0, gt=0, le=1)


class DataConfig(_Section):
    source: str = "sample"
    format: FileFormatName = "auto"
    revision: str | None = None
    train_languages: list[Language] = ["de"]
    eval_languages: list[Language] = []
    max_train_samples: int | None = Field(None, ge=1)
    max_eval_samples: int | None = Field(None, ge=1)
    fractions: Annotated[dict[Language, Rate] | None, AfterValidator(_some_positive)] = None
    sampling_temperature: float | None = Field(None, gt=0)
    strict_tags: bool = False
    # Column names of a ``datasets`` source (hub, save_to_disk, Parquet); None: tokens / ner_tags.
    tokens_column: str | None = Field(None, min_length=1)
    tags_column: str | None = Field(None, min_length=1)
    # Harmonised label sets: rename (PERSON = "PER") or drop (MISC = "O") entity types as files
    # are read; types the model does not know at evaluation time are an error or dropped to O.
    label_map: TypeMapping = None
    unknown_types: Literal["error", "drop"] = "error"
    eval_sources: list[CorpusSource] | None = None
    train_sources: list[TrainSource] | None = None
    # Training features cached on disk and memory-mapped (nertool.model.cache): "auto"
    # ($NERTOOL_CACHE/features, else ~/.cache/nertool/features), "off", or a folder.
    cache_dir: str = Field("auto", min_length=1)

    @field_validator("eval_sources", "train_sources")
    @classmethod
    def _distinct_columns(cls, value: list[CorpusSource] | None) -> list[CorpusSource] | None:
        """Two entries naming the same ``corpus:language`` would overwrite each other's scores."""
        columns = [column for entry in value or [] for column in entry.columns]
        twice = sorted({c for c in columns if columns.count(c) > 1})
        if twice:
            raise ValueError(f"{', '.join(twice)} named twice; give one entry a different name")
        return value


class TrainConfig(_Section):
    epochs: float = Field(3, gt=0)
    batch_size: int = Field(24, ge=1)
    eval_batch_size: int = Field(64, ge=1)
    learning_rate: float = Field(5e-5, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    warmup_ratio: float = Field(0.1, ge=0, le=1)
    gradient_accumulation_steps: int = Field(1, ge=1)
    max_grad_norm: float = Field(1.0, gt=0, allow_inf_nan=True)  # inf: no clipping; nan fails gt
    mixed_precision: Literal["no", "bf16", "fp16"] = "no"
    group_by_length: bool = True
    # Rows sorted together when grouping by length (the Trainer's group_by_length: 50 batches).
    length_pool: int = Field(4096, ge=1)
    # Batches cut by padded subword positions instead of sentences (None: ``batch_size`` sentences);
    # the learning rate then follows the square-root rule (README, "The training loop").
    max_tokens_per_batch: int | None = Field(None, ge=16)
    pad_to_multiple_of: int | None = Field(None, ge=1)  # batch widths; None: 16 on a GPU, 1 on a CPU
    cuda_graphs: bool = False  # capture each step in a CUDA graph (GPU only; a CPU warns and runs eager)
    select_on: Literal["source_dev", "all_dev", "last"] = "source_dev"
    early_stopping_patience: int | None = Field(None, ge=1)
    evals_per_epoch: int = Field(1, ge=1)
    log_every: int = Field(20, ge=1)
    max_nonfinite_steps: int = Field(10, ge=0)
    seeds: list[int] = []
    # After training, upload model/ (with its card): false; true (a repository named after the
    # run folder, under the logged-in account); or a repository id, "name" or "namespace/name".
    push_to_hub: bool | str = False
    hub_private: bool = False  # a repository push_to_hub creates is private
    report_to: list[Tracker] = []  # experiment trackers fed every train_log record (RUN/trackers)

    @field_validator("push_to_hub")
    @classmethod
    def _repo_id(cls, value: bool | str) -> bool | str:
        """A repository id is checked here, so a typo fails before training rather than after."""
        if isinstance(value, str) and not re.fullmatch(HUB_REPO_ID, value):
            raise ValueError('not a Hub repository id; give true, false, "name" or "namespace/name"')
        return value


class SelfTrainingConfig(_Section):
    """``[transfer] self_training``: pseudo-label each target's unlabeled text, train a student on it.

    ``text`` maps a language to a raw-text file (one sentence per line) read instead of that
    language's train split (whose tags are then ignored). ``keep_empty`` keeps sentences in which the
    teacher found no entity: off by default because every WikiANN sentence holds one, so an empty
    prediction there is a miss that would teach the student to say ``O``; turn it on for raw text.
    """

    languages: list[Language] = Field(min_length=1)
    rounds: int = Field(1, ge=1, le=10)
    min_confidence: float = Field(0.9, gt=0, le=1)
    max_sentences: int = Field(5000, ge=1)
    text: dict[Language, str] = {}
    keep_empty: bool = False

    @model_validator(mode="after")
    def _text_for_listed_languages(self) -> SelfTrainingConfig:
        """Languages listed once, and a text file only for a listed language (else it is never read)."""
        if len(set(self.languages)) != len(self.languages):
            raise ValueError(f"languages repeats a language ({', '.join(self.languages)}): list each once")
        unlisted = sorted(set(self.text) - set(self.languages))
        if unlisted:
            raise ValueError(f"text names {', '.join(unlisted)}, which is not in languages: add it there")
        return self


class TransferConfig(_Section):
    sources: list[list[Language] | str] = [["de"]]
    sample_sizes: list[int] = []
    target_language: Language | None = None
    selection: Literal["source_dev", "target_dev", "last"] = "source_dev"
    self_training: SelfTrainingConfig | None = None


class PretrainConfig(_Section):
    text: list[str] = []
    languages: list[Language] = []
    max_sentences: int | None = Field(None, ge=1)
    sampling_temperature: float | None = Field(None, gt=0)
    mlm_probability: float = Field(0.15, gt=0, lt=1)
    whole_word_masking: bool = False
    block_size: int = Field(128, ge=8)
    cross_documents: bool = False
    steps: int | None = Field(None, ge=1)
    max_minutes: float | None = Field(None, gt=0)
    heldout_fraction: float = Field(0.01, ge=0, lt=0.5)
    fractions: Annotated[dict[Language, Weight] | None, AfterValidator(_some_positive)] = None
    eval_every: int | None = Field(None, ge=1, description="steps between held-out evaluations")

    @field_validator("text", mode="before")
    @classmethod
    def _one_source(cls, value: Any) -> Any:
        """``--set pretrain.text=DIR`` gives one string: a list of one source."""
        return [value] if isinstance(value, str) else value


class Recipe(_Section):
    seed: int = 42
    model: ModelConfig = ModelConfig()
    data: DataConfig = DataConfig()
    train: TrainConfig = TrainConfig()
    transfer: TransferConfig = TransferConfig()
    pretrain: PretrainConfig = PretrainConfig()

    @model_validator(mode="after")
    def _budget_holds_a_window(self) -> Recipe:
        """A token budget below the longest window would give batches over the budget."""
        budget = self.train.max_tokens_per_batch
        if budget is not None and budget < self.model.max_length:
            raise ValueError(
                f"train.max_tokens_per_batch ({budget}) is below model.max_length ({self.model.max_length});"
                " raise it so that the longest window fits in one batch"
            )
        return self

    @property
    def eval_languages(self) -> list[str]:
        """Evaluation languages; the training languages when none are given."""
        return self.data.eval_languages or self.data.train_languages

    @property
    def eval_columns(self) -> list[str]:
        """What a transfer table's columns are: ``corpus:language`` per ``data.eval_sources`` entry,
        else the evaluation languages (a plain recipe's table is unchanged)."""
        if self.data.eval_sources:
            return [column for entry in self.data.eval_sources for column in entry.columns]
        return self.eval_languages


_PATH_KEYS = (("data", "source"), ("model", "name"), ("pretrain", "text"))


def _parse_value(raw: str) -> Any:
    """A ``--set`` value as TOML (numbers, lists, booleans, quoted strings), else a plain string."""
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Apply ``section.key=value`` strings to a nested recipe dict (a new dict)."""
    result = copy.deepcopy(dict(data))
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: expected section.key=value, e.g. --set train.epochs=1")
        *sections, leaf = key.strip().split(".")
        target = result
        for section in sections:
            target = target.setdefault(section, {})
            if not isinstance(target, dict):
                raise ConfigError(f"--set {item!r}: {section!r} is a value, not a section")
        target[leaf] = _parse_value(raw.strip())
    return result


def _resolve_paths(data: dict[str, Any], base: Path) -> dict[str, Any]:
    """Make relative local paths in the recipe file relative to the recipe's folder."""
    data_section = data.get("data")
    for key in ("eval_sources", "train_sources"):
        entries = data_section.get(key) if isinstance(data_section, dict) else None
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, dict) and isinstance(entry.get("source"), str):
                entry["source"] = _resolve_path(entry["source"], base)
    for section, key in _PATH_KEYS:
        section_data = data.get(section)
        value = section_data.get(key) if isinstance(section_data, dict) else None
        if isinstance(value, list):
            data[section][key] = [_resolve_path(item, base) for item in value]
        elif isinstance(value, str):
            data[section][key] = _resolve_path(value, base)
    return data


def _resolve_self_training_text(data: dict[str, Any], base: Path) -> dict[str, Any]:
    """``[transfer] self_training.text`` files are paths too (one per language)."""
    section = data.get("transfer")
    self_training = section.get("self_training") if isinstance(section, dict) else None
    text = self_training.get("text") if isinstance(self_training, dict) else None
    if isinstance(self_training, dict) and isinstance(text, dict):
        self_training["text"] = {lang: _resolve_path(path, base) for lang, path in text.items()}
    return data


def _resolve_path(value: Any, base: Path) -> Any:
    """``value`` relative to ``base`` when it names something there (``{lang}`` templates: their folder)."""
    if not isinstance(value, str) or value.startswith(("hub:", "scratch:")) or value == "sample":
        return value
    if Path(value).is_absolute():
        return value
    exists = (base / value.split("{lang}")[0]).exists() if "{lang}" in value else (base / value).exists()
    return str((base / value).resolve()) if exists else value


def _format_validation(error: ValidationError, origin: str) -> str:
    """``origin: section.key: what is wrong (got value)``, without pydantic's union-branch names."""
    first = error.errors()[0]
    parts = [part for part in first["loc"] if not (isinstance(part, str) and "[" in part)]
    key = ".".join(f"[{part}]" if isinstance(part, int) else str(part) for part in parts).replace(".[", "[")
    if first["type"] == "extra_forbidden":
        return f"{origin}: unknown key {key!r}; check the spelling (see recipes/ for every key)"
    message = str(first["msg"]).removeprefix("Value error, ")
    if not key:  # a rule across sections (``Recipe`` validators) names its keys itself
        return f"{origin}: {message}"
    return f"{origin}: {key}: {message} (got {first.get('input')!r})"


def build_recipe(data: Mapping[str, Any], origin: str = "recipe") -> Recipe:
    """Validate a nested dict into a frozen ``Recipe``; the error names the key and origin."""
    try:
        return Recipe.model_validate(dict(data))
    except ValidationError as error:
        raise ConfigError(_format_validation(error, origin)) from None


def load_recipe(path: str | Path | None, overrides: Sequence[str] = ()) -> Recipe:
    """Read a TOML recipe (or defaults when ``path`` is None) and apply overrides."""
    data: dict[str, Any] = {}
    origin = "--set"
    if path is not None:
        path = Path(path)
        origin = str(path)
        if path.is_dir():
            raise ConfigError(f"{path}: is a folder, not a recipe; pass the path of a .toml file")
        if not path.is_file():
            raise ConfigError(f"{path}: recipe not found; pass the path of a .toml file (see recipes/)")
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
            raise ConfigError(f"{path}: not valid TOML: {error}") from None
        data = _resolve_self_training_text(_resolve_paths(data, path.parent), path.parent)
    return build_recipe(apply_overrides(data, overrides), origin)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):  # JSON string escapes are valid TOML basic-string escapes
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):  # None values omitted, as at the top level (TOML has no null)
        items = [f'"{k}" = {_toml_value(v)}' for k, v in value.items() if v is not None]
        return "{ " + ", ".join(items) + " }"
    return repr(value)


def dump_recipe(recipe: Recipe) -> str:
    """The fully resolved recipe as TOML (``None`` values omitted: TOML has no null)."""
    data = recipe.model_dump()
    lines = [f"seed = {data.pop('seed')}"]
    for section, values in data.items():
        lines.append(f"\n[{section}]")
        lines += [f"{key} = {_toml_value(value)}" for key, value in values.items() if value is not None]
    return "\n".join(lines) + "\n"
