"""Self-training: confidence selection, unlabeled sources (never the test split), table rows, runs."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import pytest

from nertool.config import build_recipe, load_recipe
from nertool.data import sources as data_sources
from nertool.errors import ConfigError, DataError
from nertool.transfer.render import to_csv, to_json, to_markdown
from nertool.transfer.selftrain import (
    PseudoLabelled,
    UnlabeledPool,
    UnlabeledSentence,
    WordTags,
    entity_confidences,
    plan_self_training,
    pseudo_label,
    read_unlabeled,
    select,
)
from nertool.transfer.table import Setting, build_table, expand_sources
from nertool.workflows.training_data import SAMPLE_DIR
from nertool.workflows.transfer import run_transfer

TINY = {
    "seed": 7,
    "model": {"name": "scratch:tiny", "max_length": 64},
    "data": {"source": "sample", "eval_languages": ["de", "fr"], "max_train_samples": 64},
    "train": {"epochs": 2, "batch_size": 8, "learning_rate": 5e-3, "warmup_ratio": 0.0},
    "transfer": {"sources": [["de"]]},
}


def recipe(**self_training):
    section = {"languages": ["fr"], **self_training}
    return build_recipe({**TINY, "transfer": {**TINY["transfer"], "self_training": section}})


def config(**self_training):
    result = recipe(**self_training).transfer.self_training
    assert result is not None
    return result


# ------------------------------------------------------------------ selection with a fake teacher

# Hand-made teacher output, sentence id → (tags, word probabilities).
TEACHER = {
    "sure": (("B-PER", "I-PER", "O"), (0.97, 0.95, 0.40)),  # one entity, min 0.95; O words may be unsure
    "weak_word": (("B-ORG", "I-ORG", "O"), (0.99, 0.60, 0.99)),  # mean 0.795 passes 0.7, min 0.6 fails
    "one_bad": (("B-LOC", "O", "B-PER"), (0.99, 0.99, 0.50)),  # the second entity fails
    "empty": (("O", "O"), (0.99, 0.99)),  # no entity at all
    "two_sure": (("B-LOC", "O", "B-ORG"), (0.91, 0.10, 0.93)),
}


def pool(*ids):
    sentences = tuple(UnlabeledSentence(i, tuple(f"{i}{n}" for n in range(len(TEACHER[i][0])))) for i in ids)
    return UnlabeledPool("fr", "hand-made", sentences)


def fake_teacher(sentences):
    """Looks each sentence up by its first word's prefix (the sentence id)."""
    by_words = {
        tuple(f"{i}{n}" for n in range(len(tags))): WordTags(tags, scores)
        for i, (tags, scores) in TEACHER.items()
    }
    return [by_words[tuple(words)] for words in sentences]


def kept_ids(selection):
    return [p.sentence.id for p in selection.kept]


def test_entity_confidence_is_the_lowest_word_probability_of_each_entity():
    assert entity_confidences(["B-PER", "I-PER", "O", "B-LOC"], [0.9, 0.7, 0.1, 0.8]) == (0.7, 0.8)
    assert entity_confidences(["O", "O"], [0.2, 0.3]) == ()


def test_only_sentences_whose_every_entity_passes_are_kept():
    unlabeled = pool(*TEACHER)
    selection = select(unlabeled, pseudo_label(unlabeled, fake_teacher), config(min_confidence=0.7), seed=1)
    assert kept_ids(selection) == ["sure", "two_sure"]
    assert (selection.total, selection.passed, selection.threshold) == (5, 2, 0.7)
    assert [s.tags for s in selection.sentences()] == [TEACHER["sure"][0], TEACHER["two_sure"][0]]


def test_a_threshold_above_every_entity_keeps_nothing_and_keep_empty_keeps_entity_free_sentences():
    unlabeled = pool(*TEACHER)
    labelled = pseudo_label(unlabeled, fake_teacher)
    assert kept_ids(select(unlabeled, labelled, config(min_confidence=0.999), seed=1)) == []
    relaxed = select(unlabeled, labelled, config(min_confidence=0.999, keep_empty=True), seed=1)
    assert kept_ids(relaxed) == ["empty"]


def test_the_cap_is_a_seeded_draw_of_the_passing_sentences():
    labelled = [
        PseudoLabelled(UnlabeledSentence(f"s{i}", ("w",)), ("B-PER",), (0.95 if i % 2 else 0.5,))
        for i in range(40)
    ]
    unlabeled = UnlabeledPool("fr", "made", tuple(p.sentence for p in labelled))
    first = select(unlabeled, labelled, config(max_sentences=5), seed=3)
    assert len(first.kept) == 5 and first.passed == 20
    assert all(min(p.confidences) >= 0.9 for p in first.kept)
    assert kept_ids(first) == kept_ids(select(unlabeled, labelled, config(max_sentences=5), seed=3))
    assert kept_ids(first) != kept_ids(select(unlabeled, labelled, config(max_sentences=5), seed=4))


# ------------------------------------------------------------------ the unlabeled text


@pytest.fixture
def read_paths(monkeypatch):
    """Spy on the corpus reader: every file ``load_corpus`` reads."""
    seen: list[Path] = []
    real = data_sources.read_sentences

    def spy(path, *args, **kwargs):
        seen.append(Path(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(data_sources, "read_sentences", spy)
    return seen


def test_the_train_split_is_read_without_its_tags_and_the_test_split_never(read_paths):
    unlabeled = read_unlabeled(recipe(), str(SAMPLE_DIR), "fr")
    assert read_paths == [SAMPLE_DIR / "fr" / "train.tsv"]
    train = list(data_sources.read_sentences(SAMPLE_DIR / "fr" / "train.tsv"))
    assert [s.words for s in unlabeled.sentences] == [s.tokens for s in train]
    assert unlabeled.sentences[3].id == "fr/train:3"


def test_a_text_file_is_read_instead_of_any_split(read_paths, tmp_path):
    text = tmp_path / "fr.txt"
    text.write_text("Jean habite à Paris.\n\nMarie aime Lyon\n", encoding="utf-8")
    unlabeled = read_unlabeled(recipe(text={"fr": str(text)}), str(SAMPLE_DIR), "fr")
    assert read_paths == []
    assert [s.words for s in unlabeled.sentences] == [
        ("Jean", "habite", "à", "Paris", "."),
        ("Marie", "aime", "Lyon"),
    ]
    assert unlabeled.sentences[1].id == f"{text}:3"


@pytest.mark.parametrize("split", ["test", "validation"])
def test_a_text_file_that_is_an_evaluation_split_is_refused(read_paths, split):
    held_out = SAMPLE_DIR / "fr" / f"{split}.tsv"
    with pytest.raises(DataError, match=f"is the {split} split"):
        read_unlabeled(recipe(text={"fr": str(held_out)}), str(SAMPLE_DIR), "fr")
    assert read_paths == []


# ------------------------------------------------------------------ the table row and its gain

SCORES = {
    "de": {"de": 0.80, "fr": 0.40, "nl": 0.50},
    "de + self(fr)": {"de": 0.78, "fr": 0.46, "nl": None},
}


@pytest.fixture
def table():
    settings = [*expand_sources([["de"]], ["de", "fr", "nl"]), Setting("de + self(fr)", ("de",), base="de")]
    return build_table(SCORES, settings, ["de", "fr", "nl"])


def test_the_self_trained_row_reports_its_gain_over_the_plain_row(table):
    plain, student = table.rows
    assert (plain.base, plain.gains) == (None, ())
    assert student.base == "de" and student.train_languages == ("de",)
    assert student.gains[0] == pytest.approx(0.78 - 0.80)
    assert student.gains[1] == pytest.approx(0.46 - 0.40)
    assert student.gains[2] is None  # a missing cell has no gain
    assert student.zero_shot_mean == pytest.approx(0.46)  # the target had no gold labels


def test_renderers_carry_the_gain(table):
    markdown = to_markdown(table)
    assert "Self-training gain" in markdown
    assert "| de + self(fr) | de | -0.020 | +0.060 | – |" in markdown
    rows = list(csv.DictReader(io.StringIO(to_csv(table))))
    assert rows[1]["base"] == "de" and math.isclose(float(rows[1]["gain_fr"]), 0.06)
    assert rows[0]["base"] == "" and rows[0]["gain_fr"] == ""
    student = to_json(table)["rows"][1]
    assert student["base"] == "de" and student["gain"]["fr"] == pytest.approx(0.06)
    assert "gain" not in to_json(table)["rows"][0]


def test_tables_without_self_training_keep_their_columns():
    plain = build_table(
        {"de": SCORES["de"]}, expand_sources([["de"]], ["de", "fr", "nl"]), ["de", "fr", "nl"]
    )
    assert "base" not in to_csv(plain).splitlines()[0]
    assert "Self-training" not in to_markdown(plain)


# ------------------------------------------------------------------ recipe checks


@pytest.mark.parametrize(
    ("section", "needle"),
    [
        ({"rounds": 0}, "rounds"),
        ({"min_confidence": 0}, "min_confidence"),
        ({"min_confidence": 1.5}, "min_confidence"),
        ({"max_sentences": 0}, "max_sentences"),
        ({"languages": []}, "languages"),
        ({"languages": ["fr", "fr"]}, "repeats"),
        ({"text": {"nl": "x.txt"}}, "not in languages"),
        ({"languages": ["f r"]}, "language code"),
    ],
)
def test_bad_self_training_sections_are_errors_naming_the_key(section, needle):
    with pytest.raises(ConfigError, match=needle) as error:
        recipe(**section)
    assert "transfer.self_training" in str(error.value)


def test_targets_must_be_scored_and_have_a_teacher_that_leaves_them_out():
    with pytest.raises(ConfigError, match=r"not in data\.eval_languages"):
        plan_self_training(recipe(languages=["nl"]), expand_sources([["de"]], ["de", "fr"]))
    with pytest.raises(ConfigError, match=r"every transfer\.sources setting trains on fr"):
        plan_self_training(recipe(), expand_sources([["fr"], ["de", "fr"]], ["de", "fr"]))
    plans = plan_self_training(recipe(), expand_sources([["de"], "each", ["de", "fr"]], ["de", "fr"]))
    assert [(p.base.name, p.setting.name) for p in plans] == [("de", "de + self(fr)")]


def test_a_recipe_text_file_is_relative_to_the_recipe(tmp_path):
    (tmp_path / "fr.txt").write_text("Paris\n", encoding="utf-8")
    path = tmp_path / "r.toml"
    path.write_text('[transfer]\nself_training = { languages = ["fr"], text = { fr = "fr.txt" } }\n')
    loaded = load_recipe(path).transfer.self_training
    assert loaded is not None and loaded.text == {"fr": str(tmp_path / "fr.txt")}


# ------------------------------------------------------------------ a real run


@pytest.fixture(scope="module")
def two_rounds(tmp_path_factory):
    out = tmp_path_factory.mktemp("selftrain")
    chosen = recipe(rounds=2, min_confidence=0.3, max_sentences=20)
    return out, chosen, run_transfer(chosen, out)


@pytest.mark.slow
def test_two_rounds_train_two_students_and_the_last_fills_the_row(two_rounds):
    out, _, result = two_rounds
    assert result.trained == ("de", "de.self-fr.round-1", "de.self-fr.round-2")
    student = result.table.row("de + self(fr)")
    plain = result.table.row("de")
    assert student.gains == tuple(s - p for s, p in zip(student.scores, plain.scores, strict=True))
    metrics = json.loads((out / "runs/de.self-fr.round-2/metrics.json").read_text())
    assert student.scores[1] == metrics["languages"]["fr"]["test"]["f1"]
    second = json.loads((out / "runs/de.self-fr.round-2/selftrain.json").read_text())
    assert second["teacher"] == str(out / "runs/de.self-fr.round-1")
    document = json.loads((out / "transfer.json").read_text())
    assert document["rows"][1]["gain"]["fr"] == pytest.approx(student.gains[1])


@pytest.mark.slow
def test_the_manifest_lists_every_pseudo_labelled_sentence(two_rounds):
    out, _, _ = two_rounds
    folder = out / "runs/de.self-fr.round-1"
    manifest = json.loads((folder / "selftrain.json").read_text())
    assert manifest["teacher"] == str(out / "runs/de")
    assert manifest["min_confidence"] == 0.3 and manifest["total"] == 60
    assert 0 < manifest["kept"] == len(manifest["sentences"]) <= min(20, manifest["passed"])
    train = list(data_sources.read_sentences(SAMPLE_DIR / "fr" / "train.tsv"))
    for entry in manifest["sentences"]:
        index = int(entry["id"].removeprefix("fr/train:"))
        assert len(entry["tags"]) == len(train[index].tokens)
        assert min(entry["confidence"]) >= 0.3
    data = json.loads((folder / "data_manifest.json").read_text())
    assert data["pseudo_labelled"] == {"fr": manifest["kept"]}
    assert json.loads((folder / "metrics.json").read_text())["train_sentences"]["fr"] == manifest["kept"]


@pytest.mark.slow
def test_a_second_call_reuses_the_students_without_tagging_again(two_rounds, monkeypatch):
    out, chosen, _ = two_rounds
    from nertool.workflows import selftrain

    monkeypatch.setattr(selftrain, "model_teacher", lambda run_dir: pytest.fail("tagged again"))
    assert run_transfer(chosen, out).trained == ()


def test_the_shipped_recipe_plans_one_student_per_target(tmp_path):
    shipped = load_recipe(Path(__file__).resolve().parents[1] / "recipes" / "self-training-local.toml")
    settings = expand_sources(shipped.transfer.sources, shipped.eval_languages)
    plans = plan_self_training(shipped, settings)
    assert [p.setting.name for p in plans] == ["de + self(fr)", "de + self(nl)"]
