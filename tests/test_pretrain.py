"""``nertool pretrain``: text sources, language mix, deterministic masks, the run folder, resume, reuse."""

from __future__ import annotations

import json
import math
import signal
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from nertool.cli.commands import app
from nertool.config import PretrainConfig, build_recipe, load_recipe
from nertool.errors import ConfigError, DataError
from nertool.pretrain.collator import HELDOUT_EPOCH, IndexedBlock, MaskingCollator, MaskingSpec
from nertool.pretrain.masking import IGNORE_INDEX
from nertool.pretrain.packing import PackedBlock
from nertool.pretrain.text import (
    TextSource,
    language_shares,
    mix_documents,
    read_text_sources,
    round_counts,
)
from nertool.train.loop import Interrupted
from nertool.train.reporters import SilentReporter
from nertool.train.settings import total_steps
from nertool.workflows.pretrain import (
    MaskedOnlyHead,
    collation_workers,
    heldout_scorer,
    pretrain_run,
    pretrain_settings,
    with_sparse_head,
)
from nertool.workflows.train import train_run

runner = CliRunner()
SAMPLE = Path(__file__).resolve().parents[1] / "nertool" / "resources" / "sample"


def tiny_recipe(model: str = "scratch:tiny", **pretrain):
    return build_recipe(
        {
            "seed": 5,
            "model": {"name": model, "vocab_size": 600, "max_length": 64},
            "train": {"batch_size": 8, "learning_rate": 2e-3, "warmup_ratio": 0.0, "log_every": 1},
            "pretrain": {
                "text": ["sample"],
                "steps": 6,
                "block_size": 64,
                "heldout_fraction": 0.1,
                "eval_every": 3,
                **pretrain,
            },
        }
    )


# ------------------------------------------------------------------ text sources


def test_raw_text_is_one_document_a_line_split_into_words(tmp_path):
    file = tmp_path / "news.txt"
    file.write_text("Der Hund bellt.\n\n  \nAngela Merkel (CDU) sprach.\n", encoding="utf-8")
    text = read_text_sources([str(file)], [])
    assert text.documents == {
        "und": [("Der", "Hund", "bellt", "."), ("Angela", "Merkel", "(", "CDU", ")", "sprach", ".")]
    }
    assert list(read_text_sources([str(file)], ["de"]).documents) == ["de"]


def test_lang_template_reads_one_source_per_language(tmp_path):
    for language, line in (("de", "Guten Tag"), ("fr", "Bonjour à tous")):
        (tmp_path / f"{language}.txt").write_text(line + "\n", encoding="utf-8")
    text = read_text_sources([str(tmp_path / "{lang}.txt")], ["de", "fr"])
    assert text.documents == {"de": [("Guten", "Tag")], "fr": [("Bonjour", "à", "tous")]}
    with pytest.raises(ConfigError, match=r"pretrain\.languages"):
        read_text_sources([str(tmp_path / "{lang}.txt")], [])


def test_a_folder_of_text_files_is_read_in_sorted_order(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "two.txt").write_text("zwei\n", encoding="utf-8")
    (tmp_path / "a.txt").write_text("eins\n", encoding="utf-8")
    (tmp_path / "notes.md").write_text("ignored\n", encoding="utf-8")
    assert read_text_sources([str(tmp_path)], []).documents == {"und": [("eins",), ("zwei",)]}


def test_corpus_folder_gives_train_and_validation_words_never_test():
    text = read_text_sources(["sample"], ["de", "fr"])
    assert set(text.documents) == {"de", "fr"}
    assert all(Path(where).stem in ("train", "validation") for where in text.sources["de"])
    assert len(text.documents["de"]) == 300  # 240 train + 60 validation sentences
    assert text.documents["de"][0][:2] == ("Emma", "Wilson")


def test_a_tagged_txt_file_is_read_as_a_corpus_not_as_raw_text(tmp_path):
    file = tmp_path / "train.txt"
    file.write_text("EU NNP B-ORG\nrejects VBZ O\n\nPeter NNP B-PER\n", encoding="utf-8")
    assert read_text_sources([str(file)], []).documents == {"und": [("EU", "rejects"), ("Peter",)]}


@pytest.mark.parametrize(
    ("content", "match"),
    [(b"gut\n\xff\xfe kaputt\n", r"bad\.txt:2: invalid UTF-8"), (b"\n\n", "no words")],
)
def test_unreadable_text_names_file_and_line(tmp_path, content, match):
    file = tmp_path / "bad.txt"
    file.write_bytes(content)
    with pytest.raises(DataError, match=match):
        read_text_sources([str(file)], [])


def test_missing_text_is_a_readable_error(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_text_sources([str(tmp_path / "nope.txt")], [])
    with pytest.raises(DataError, match=r"no \.txt files"):
        read_text_sources([str(tmp_path)], [])


def test_recipe_text_paths_resolve_against_the_recipe_and_set_takes_one_string(tmp_path):
    (tmp_path / "texts").mkdir()
    (tmp_path / "texts" / "de.txt").write_text("Hallo\n", encoding="utf-8")
    recipe = tmp_path / "r.toml"
    recipe.write_text('[pretrain]\ntext = ["texts/de.txt", "texts/{lang}.txt", "sample"]\n', encoding="utf-8")
    text = load_recipe(recipe).pretrain.text
    assert text == [str(tmp_path / "texts" / "de.txt"), str(tmp_path / "texts" / "{lang}.txt"), "sample"]
    assert load_recipe(None, ["pretrain.text=some/folder"]).pretrain.text == ["some/folder"]


# ------------------------------------------------------------------ held-out slice and mix


def _text(sizes: dict[str, int]) -> TextSource:
    return TextSource({lang: [(lang, str(i)) for i in range(n)] for lang, n in sizes.items()}, {})


def test_heldout_documents_are_never_trained_on():
    mix = mix_documents(_text({"de": 200, "fr": 50}), PretrainConfig(heldout_fraction=0.1), seed=1)
    assert len(mix.heldout) == 25 and len(mix.train) == 225
    assert not set(mix.heldout) & set(mix.train)
    assert mix.counts == {
        "de": {"documents": 200, "heldout": 20, "sampled": 180},
        "fr": {"documents": 50, "heldout": 5, "sampled": 45},
    }
    assert mix_documents(_text({"de": 200, "fr": 50}), PretrainConfig(heldout_fraction=0.1), seed=1) == mix


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({}, {"de": 1000, "hi": 10}),  # T = 1: every document once
        ({"sampling_temperature": 1e9}, {"de": 505, "hi": 505}),  # uniform: hi repeated, de subsampled
        ({"sampling_temperature": 2.0, "max_sentences": 110}, {"de": 100, "hi": 10}),  # 1000^.5 : 10^.5
        ({"fractions": {"de": 3, "hi": 1}, "max_sentences": 40}, {"de": 30, "hi": 10}),
        ({"fractions": {"de": 1.0}}, {"de": 1010, "hi": 0}),  # repeats de to the default total
    ],
)
def test_language_mix_counts_and_repeats(settings, expected):
    mix = mix_documents(
        _text({"de": 1000, "hi": 10}), PretrainConfig(heldout_fraction=0.0, **settings), seed=2
    )
    assert {lang: c["sampled"] for lang, c in mix.counts.items()} == expected
    assert len(mix.train) == sum(expected.values())
    assert sum(doc[0] == "hi" for doc in mix.train) == expected["hi"]


@pytest.mark.parametrize(
    ("shares", "total", "expected"),
    [
        ({"a": 0.5, "b": 0.5}, 3, {"a": 2, "b": 1}),  # ties go to the first listed
        ({"a": 1 / 3, "b": 1 / 3, "c": 1 / 3}, 100, {"a": 34, "b": 33, "c": 33}),
        ({"a": 0.9, "b": 0.1}, 7, {"a": 6, "b": 1}),
        ({"a": 1.0}, 0, {"a": 0}),
    ],
)
def test_round_counts_sums_exactly(shares, total, expected):
    assert round_counts(shares, total) == expected


def test_fractions_must_name_languages_of_the_text():
    with pytest.raises(ConfigError, match="unknown: xx"):
        language_shares({"de": 10}, PretrainConfig(fractions={"xx": 1.0}))


# ------------------------------------------------------------------ masks


SPEC = MaskingSpec(
    mask_token_id=4, vocab_size=600, n_special=5, mlm_probability=0.3, pad_id=1, whole_word=False, seed=9
)


def _blocks(lengths):
    return [
        IndexedBlock(i, PackedBlock([0, *range(10 + i, 8 + i + n), 2], [-1, *[i] * (n - 2), -1]))
        for i, n in enumerate(lengths)
    ]


def test_a_blocks_mask_depends_only_on_seed_epoch_and_index():
    items = _blocks([20, 60, 40, 33])
    collator = MaskingCollator(SPEC)
    alone = collator([items[2]])
    mixed = collator([items[1], items[2], items[3]])  # padded to 60, other neighbours
    assert torch.equal(alone["input_ids"][0], mixed["input_ids"][1, :40])
    assert torch.equal(alone["labels"][0], mixed["labels"][1, :40])
    assert (mixed["labels"][1, 40:] == IGNORE_INDEX).all() and (mixed["attention_mask"][1, 40:] == 0).all()
    collator.epoch = 1
    assert not torch.equal(collator([items[2]])["labels"], alone["labels"])  # fresh masks each epoch


def test_labels_mark_exactly_the_chosen_positions():
    items = _blocks([64] * 16)
    batch = MaskingCollator(SPEC, epoch=3)(items)
    original = torch.tensor([item.block.input_ids for item in items])  # (16, 64)
    chosen = batch["labels"] != IGNORE_INDEX
    assert torch.equal(batch["labels"][chosen], original[chosen])
    assert torch.equal(batch["input_ids"][~chosen], original[~chosen])
    assert not chosen[:, 0].any() and not chosen[:, -1].any()  # <s> and </s> never
    assert 0.2 < chosen.sum().item() / (16 * 62) < 0.4


def test_masks_from_loader_workers_equal_masks_made_in_process():
    """On an accelerator the masking runs in DataLoader workers; they must draw the same masks."""
    items = _blocks([20, 60, 40, 33, 64, 25])
    collator = MaskingCollator(SPEC, epoch=2)
    batches = [[0, 1, 2], [3, 4, 5]]

    def load(workers):
        loader = torch.utils.data.DataLoader(
            items, batch_sampler=batches, collate_fn=collator, num_workers=workers
        )
        return list(loader)

    for here, there in zip(load(0), load(2), strict=True):
        assert all(torch.equal(here[key], there[key]) for key in here)


class _Accelerator:
    def __init__(self, device: str, processes: int = 1):
        self.device, self.num_processes = torch.device(device), processes


def test_masking_workers_only_where_the_model_is_not_on_the_cpu(monkeypatch):
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(16)), raising=False)
    assert collation_workers(_Accelerator("cpu")) == 0  # workers would take the model's cores
    assert collation_workers(_Accelerator("cuda")) == 4
    assert collation_workers(_Accelerator("cuda", processes=8)) == 1  # 2 cores per process
    assert collation_workers(_Accelerator("cuda", processes=16)) == 0


def test_heldout_score_uses_fixed_masks():
    from transformers import XLMRobertaForMaskedLM

    from nertool.model.build import SCRATCH_SIZES, scratch_config

    torch.manual_seed(0)
    model = XLMRobertaForMaskedLM(scratch_config(SCRATCH_SIZES["tiny"], 600, 64))
    score = heldout_scorer([item.block for item in _blocks([30, 50, 64])], SPEC, batch_size=2)
    first, second = score(model), score(model)
    assert first == second
    assert first[1]["perplexity"] == pytest.approx(math.exp(first[1]["heldout_loss"]), rel=1e-3)
    assert first[0] == pytest.approx(-first[1]["heldout_loss"], abs=1e-4)
    assert HELDOUT_EPOCH == -1


def test_sparse_head_gives_the_full_models_loss_and_gradients():
    from transformers import XLMRobertaForMaskedLM

    from nertool.model.build import SCRATCH_SIZES, scratch_config

    torch.manual_seed(0)
    model = XLMRobertaForMaskedLM(scratch_config(SCRATCH_SIZES["tiny"], 600, 64)).eval()
    batch = MaskingCollator(SPEC)(_blocks([30, 50, 64]))
    full = model(**batch).loss
    full.backward()
    expected = {name: p.grad.clone() for name, p in model.named_parameters()}
    model.zero_grad()
    sparse = with_sparse_head(model)
    assert isinstance(sparse, MaskedOnlyHead)
    loss = sparse(**batch).loss
    loss.backward()
    assert loss.item() == pytest.approx(full.item(), abs=1e-5)
    assert all(torch.allclose(p.grad, expected[name], atol=1e-6) for name, p in model.named_parameters())


@pytest.mark.parametrize(
    ("batches", "steps", "accumulation"), [(3, 10, 1), (50, 7, 1), (9, 20, 4), (1, 1, 1)]
)
def test_steps_set_the_loop_length_whatever_the_epoch_size(batches, steps, accumulation):
    recipe = build_recipe(
        {"train": {"gradient_accumulation_steps": accumulation}, "pretrain": {"steps": steps}}
    )
    settings = pretrain_settings(recipe, batches)
    assert total_steps(batches, settings) == steps
    assert settings.max_steps == steps


# ------------------------------------------------------------------ end to end


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("pretrain")
    return run_dir, pretrain_run(tiny_recipe(whole_word_masking=True), run_dir)


def _log(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "train_log.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_run_folder_logs_loss_and_heldout_perplexity(pretrained):
    run_dir, result = pretrained
    for name in (
        "config.toml",
        "train_log.jsonl",
        "data_manifest.json",
        "model/config.json",
        "model/model.safetensors",
        "model/tokenizer.json",
        "checkpoint/loop_state.json",
    ):
        assert (run_dir / name).is_file(), name
    records = _log(run_dir)
    assert [r["step"] for r in records if "loss" in r] == [1, 2, 3, 4, 5, 6]
    evals = [r for r in records if "eval" in r]
    assert [r["step"] for r in evals] == [3, 6] and result.steps == 6
    assert all(
        r["eval"]["perplexity"] == pytest.approx(math.exp(r["eval"]["heldout_loss"]), rel=1e-3) for r in evals
    )
    manifest = json.loads((run_dir / "data_manifest.json").read_text())
    assert manifest["languages"]["de"] == {"documents": 300, "heldout": 30, "sampled": 270}
    assert manifest["blocks"] > 0 and manifest["heldout_blocks"] > 0
    assert load_recipe(run_dir / "config.toml") == tiny_recipe(whole_word_masking=True)


@pytest.mark.slow
def test_output_loads_as_masked_lm_and_fills_a_mask(pretrained):
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    run_dir, _ = pretrained
    model = AutoModelForMaskedLM.from_pretrained(run_dir / "model")
    tokenizer = AutoTokenizer.from_pretrained(run_dir / "model")
    encoded = tokenizer("Emma Wilson <mask> 2017", return_tensors="pt")
    logits = model(**encoded).logits  # (1, seq, vocab)
    assert logits.shape[-1] == len(tokenizer) and torch.isfinite(logits).all()


@pytest.mark.slow
def test_train_starts_from_the_pretrained_run_and_keeps_its_tokenizer(pretrained, tmp_path):
    run_dir, _ = pretrained
    recipe = build_recipe(
        {
            "seed": 5,
            "model": {"name": str(run_dir), "max_length": 64},
            "data": {
                "source": "sample",
                "train_languages": ["de"],
                "eval_languages": ["de"],
                "max_train_samples": 32,
            },
            "train": {"epochs": 1, "batch_size": 16, "learning_rate": 1e-3},
        }
    )
    result = train_run(recipe, tmp_path / "ner")
    assert 0.0 <= result.metrics["languages"]["de"]["test"]["f1"] <= 1.0
    pretrained_vocab = json.loads((run_dir / "model" / "tokenizer.json").read_text())["model"]["vocab"]
    finetuned_vocab = json.loads((tmp_path / "ner" / "model" / "tokenizer.json").read_text())["model"][
        "vocab"
    ]
    assert finetuned_vocab == pretrained_vocab
    encoder = load_file(run_dir / "model" / "model.safetensors")
    assert encoder["roberta.embeddings.word_embeddings.weight"].shape[0] == len(pretrained_vocab)


@pytest.mark.slow
def test_continued_pretraining_from_a_local_folder_keeps_the_tokenizer(pretrained, tmp_path):
    run_dir, _ = pretrained
    pretrain_run(tiny_recipe(model=str(run_dir / "model"), steps=2, eval_every=2), tmp_path / "dapt")
    before = json.loads((run_dir / "model" / "tokenizer.json").read_text())["model"]["vocab"]
    after = json.loads((tmp_path / "dapt" / "model" / "tokenizer.json").read_text())["model"]["vocab"]
    assert after == before
    assert not (tmp_path / "dapt" / "checkpoint" / "tokenizer").exists()


class _InterruptAt(SilentReporter):
    """Sends this process SIGINT after ``step``: the loop saves a checkpoint and stops."""

    def __init__(self, step: int):
        self.at = step

    def step(self, step: int, loss: float) -> None:
        if step == self.at:
            signal.raise_signal(signal.SIGINT)


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(run_dir / "model" / "model.safetensors")


@pytest.mark.slow
def test_resume_continues_the_loss_curve_of_an_uninterrupted_run(pretrained, tmp_path):
    """Interrupt at step 5 of 8, resume: same losses, held-out scores and final weights as one run.

    Starts from a saved model so that both runs share one tokenizer (Unigram training is not
    bit-reproducible; a scratch run's resume reuses the tokenizer saved with its checkpoint).
    """
    recipe = tiny_recipe(model=str(pretrained[0]), steps=8, eval_every=4, whole_word_masking=True)
    pretrain_run(recipe, tmp_path / "whole")
    with pytest.raises(Interrupted):
        pretrain_run(recipe, tmp_path / "split", reporter=_InterruptAt(5))
    assert not (tmp_path / "split" / "model").exists()
    pretrain_run(recipe, tmp_path / "split", resume=True)
    whole, split = _log(tmp_path / "whole"), _log(tmp_path / "split")
    assert [r["step"] for r in split if "loss" in r] == list(range(1, 9))
    expected = [r["loss"] for r in whole if "loss" in r]
    assert [r["loss"] for r in split if "loss" in r] == pytest.approx(expected, abs=1e-5)
    expected = [r["eval"]["heldout_loss"] for r in whole if "eval" in r]
    assert [r["eval"]["heldout_loss"] for r in split if "eval" in r] == pytest.approx(expected, abs=2e-4)
    a, b = _weights(tmp_path / "whole"), _weights(tmp_path / "split")
    assert a.keys() == b.keys()
    assert all(torch.allclose(a[key], b[key], atol=1e-5) for key in a)


@pytest.mark.slow
def test_a_resumed_scratch_run_keeps_the_tokenizer_of_its_checkpoint(tmp_path):
    recipe = tiny_recipe(steps=3, eval_every=3)
    with pytest.raises(Interrupted):
        pretrain_run(recipe, tmp_path, reporter=_InterruptAt(1))
    saved = json.loads((tmp_path / "checkpoint" / "tokenizer" / "tokenizer.json").read_text())["model"][
        "vocab"
    ]
    pretrain_run(recipe, tmp_path, resume=True)
    assert json.loads((tmp_path / "model" / "tokenizer.json").read_text())["model"]["vocab"] == saved
    assert [r["step"] for r in _log(tmp_path) if "loss" in r] == [1, 2, 3]


@pytest.mark.slow
def test_cli_pretrain_prints_heldout_table_and_errors_are_one_line(tmp_path):
    recipe = tmp_path / "r.toml"
    recipe.write_text(
        '[model]\nname = "scratch:tiny"\nvocab_size = 600\n[train]\nbatch_size = 8\n'
        '[pretrain]\ntext = ["sample"]\nlanguages = ["fr"]\nsteps = 2\nblock_size = 64\n'
        "heldout_fraction = 0.1\n",
        encoding="utf-8",
    )
    out = tmp_path / "run"
    result = runner.invoke(
        app, ["pretrain", str(recipe), "-o", str(out), "--set", "train.learning_rate=0.001"]
    )
    assert result.exit_code == 0, result.output
    assert "held-out" in result.output and (out / "model" / "config.json").is_file()
    assert "learning_rate = 0.001" in (out / "config.toml").read_text()
    result = runner.invoke(  # a fresh folder: the finished run in ``out`` would need --overwrite
        app, ["pretrain", str(recipe), "-o", str(tmp_path / "other"), "--set", "pretrain.text=no/such.txt"]
    )
    assert result.exit_code == 1
    assert (
        result.output.strip().splitlines()[-1].startswith("error: no/such.txt: pre-training text not found")
    )
