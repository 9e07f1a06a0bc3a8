"""The model-free analysis layer: scores, conventions, confusion matrices, bootstrap, error tables, plots."""

from __future__ import annotations

import json
import math
import random
import warnings
from pathlib import Path

import pytest
from seqeval.metrics import classification_report, f1_score, precision_score, recall_score
from seqeval.scheme import IOB2
from tag_examples import GOLD, PRED

from nertool.errors import LabelError
from nertool.evaluate.bootstrap import bootstrap_f1, f1_from_counts, paired_bootstrap, span_counts
from nertool.evaluate.confusion import ConfusionMatrix, span_confusion, span_type_confusion, word_confusion
from nertool.evaluate.conventions import partial_scores, scoring_table
from nertool.evaluate.error_analysis import (
    LossRecord,
    error_report,
    loss_per_label,
    render_errors_markdown,
    top_tokens,
    worst_sentences,
)
from nertool.evaluate.scores import check_shapes, label_order, label_stats, score_block

TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]


def random_tags(rng: random.Random, length: int) -> list[str]:
    """Tags with many orphan ``I-`` and type switches: the cases where chunking rules matter."""
    return rng.choices(TAGS, weights=[6, 2, 2, 1, 1, 1, 1], k=length)


def random_corpus(seed: int, sentences: int) -> tuple[list[list[str]], list[list[str]]]:
    rng = random.Random(seed)
    gold = [random_tags(rng, rng.randint(0, 9)) for _ in range(sentences)]
    pred = [[t if rng.random() < 0.7 else rng.choice(TAGS) for t in sentence] for sentence in gold]
    return gold, pred


# ---------------------------------------------------------------- shapes and score block


@pytest.mark.parametrize(
    ("gold", "pred", "message"),
    [
        ([["O"], ["O"]], [["O"]], "2 sentences"),
        ([["O"], ["O", "B-PER"]], [["O"], ["O"]], "sentence 1"),
    ],
)
def test_shape_mismatch_names_the_sentence(gold, pred, message):
    with pytest.raises(ValueError, match=message):
        check_shapes(gold, pred)
    with pytest.raises(ValueError, match=message):
        score_block(gold, pred)


def test_score_block_equals_seqeval_called_directly():
    block = score_block(GOLD, PRED)
    assert block["f1"] == pytest.approx(f1_score(GOLD, PRED))
    assert block["micro_f1"] == block["f1"]
    assert block["precision"] == pytest.approx(precision_score(GOLD, PRED))
    assert block["recall"] == pytest.approx(recall_score(GOLD, PRED))
    assert block["strict_f1"] == pytest.approx(f1_score(GOLD, PRED, mode="strict", scheme=IOB2))
    assert block["strict_precision"] == pytest.approx(precision_score(GOLD, PRED, mode="strict", scheme=IOB2))
    assert block["strict_recall"] == pytest.approx(recall_score(GOLD, PRED, mode="strict", scheme=IOB2))
    assert block["macro_f1"] == pytest.approx(f1_score(GOLD, PRED, average="macro", zero_division=0))
    report = classification_report(GOLD, PRED, output_dict=True, zero_division=0)
    assert set(block["per_type"]) == {"LOC", "MISC", "ORG", "PER"}
    for kind, row in block["per_type"].items():
        assert row["f1"] == pytest.approx(report[kind]["f1-score"])
        assert row["support"] == report[kind]["support"]
    assert block["sentences"] == 4
    assert block["seqeval_mode"] == "default (conlleval)"
    assert block["token_accuracy"] == pytest.approx(12 / 16)  # four words differ


def test_score_block_is_plain_json():
    block = score_block(GOLD, PRED)
    assert json.loads(json.dumps(block)) == block
    assert all(type(block[key]) is float for key in ("precision", "recall", "f1", "strict_f1", "macro_f1"))
    assert all(type(value) is float for row in block["per_type"].values() for value in list(row.values())[:3])


@pytest.mark.parametrize(
    ("gold", "pred", "accuracy"),
    [
        ([], [], 0.0),
        ([[]], [[]], 0.0),
        ([["O", "O"]], [["O", "O"]], 1.0),
        ([["O", "O"]], [["B-PER", "O"]], 0.5),
        ([["B-PER", "O", "O", "O"]], [["O", "O", "O", "O"]], 0.75),  # all-O model: high accuracy, zero F1
    ],
)
def test_degenerate_inputs_score_zero_without_warnings(gold, pred, accuracy):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        block = score_block(gold, pred)
        table = scoring_table(gold, pred)
    assert (block["f1"], block["strict_f1"], block["macro_f1"]) == (0.0, 0.0, 0.0)
    assert block["token_accuracy"] == accuracy
    assert [row["f1"] for row in table] == [0.0, 0.0, 0.0]


def test_strict_and_default_differ_on_an_orphan_inside_tag():
    gold, pred = [["B-PER", "I-PER", "O"]], [["I-PER", "I-PER", "O"]]
    block = score_block(gold, pred)
    assert block["f1"] == 1.0  # conlleval reads the orphan I- as the start of the entity
    assert block["strict_f1"] == 0.0  # strict IOB2 drops it
    rows = {row["key"]: row for row in scoring_table(gold, pred)}
    assert rows["strict"]["disagrees"] and not rows["default"]["disagrees"]
    assert rows["partial"]["f1"] == 1.0 and not rows["partial"]["disagrees"]


# ---------------------------------------------------------------- nervaluate conventions

CONVENTION_CASES = [
    # (name, gold, pred, then (COR, INC, PAR, MIS, SPU) under strict, exact, partial, type)
    ("orphan I- read as B-", ["B-PER", "I-PER", "O"], ["I-PER", "I-PER", "O"],
     (1, 0, 0, 0, 0), (1, 0, 0, 0, 0), (1, 0, 0, 0, 0), (1, 0, 0, 0, 0)),
    ("wrong type, same boundaries", ["B-PER", "I-PER"], ["B-ORG", "I-ORG"],
     (0, 1, 0, 0, 0), (1, 0, 0, 0, 0), (1, 0, 0, 0, 0), (0, 1, 0, 0, 0)),
    ("off by one, same type", ["B-LOC", "I-LOC", "O"], ["B-LOC", "I-LOC", "I-LOC"],
     (0, 1, 0, 0, 0), (0, 1, 0, 0, 0), (0, 0, 1, 0, 0), (1, 0, 0, 0, 0)),
    ("off by one, wrong type", ["O", "B-ORG", "I-ORG"], ["B-PER", "I-PER", "O"],
     (0, 1, 0, 0, 0), (0, 1, 0, 0, 0), (0, 0, 1, 0, 0), (0, 1, 0, 0, 0)),
    ("missed", ["B-PER", "O"], ["O", "O"],
     (0, 0, 0, 1, 0), (0, 0, 0, 1, 0), (0, 0, 0, 1, 0), (0, 0, 0, 1, 0)),
    ("two spurious", ["O", "O", "O"], ["B-LOC", "O", "B-ORG"],
     (0, 0, 0, 0, 2), (0, 0, 0, 0, 2), (0, 0, 0, 0, 2), (0, 0, 0, 0, 2)),
    ("one prediction over two gold", ["B-PER", "B-PER"], ["B-PER", "I-PER"],
     (0, 1, 0, 1, 0), (0, 1, 0, 1, 0), (0, 0, 1, 1, 0), (1, 0, 0, 1, 0)),
    ("two predictions in one gold", ["B-PER", "I-PER"], ["B-PER", "B-PER"],
     (0, 1, 0, 0, 1), (0, 1, 0, 0, 1), (0, 0, 1, 0, 1), (1, 0, 0, 0, 1)),
]  # fmt: skip
CATEGORIES = ("COR", "INC", "PAR", "MIS", "SPU")


@pytest.mark.parametrize("case", CONVENTION_CASES, ids=[c[0] for c in CONVENTION_CASES])
def test_convention_counts_per_case(case):
    _, gold, pred, *expected = case
    scores = partial_scores([gold], [pred])
    for convention, counts in zip(("strict", "exact", "partial", "type"), expected, strict=True):
        assert tuple(scores[convention][c] for c in CATEGORIES) == counts, convention


def test_convention_precision_and_recall_on_all_cases_together():
    scores = partial_scores([c[1] for c in CONVENTION_CASES], [c[2] for c in CONVENTION_CASES])
    # Summing the table above: partial COR 2, PAR 4, MIS 2, SPU 3, INC 0.
    partial = scores["partial"]
    assert (partial["POS"], partial["ACT"]) == (2 + 0 + 4 + 2, 2 + 0 + 4 + 3)
    assert partial["precision"] == pytest.approx((2 + 0.5 * 4) / 9)
    assert partial["recall"] == pytest.approx((2 + 0.5 * 4) / 8)
    # strict COR 1, exact COR 2, type COR 4; POS 8 and ACT 9 under every convention.
    for convention, correct in (("strict", 1), ("exact", 2), ("type", 4)):
        assert (scores[convention]["POS"], scores[convention]["ACT"]) == (8, 9)
        assert scores[convention]["precision"] == pytest.approx(correct / 9)
        assert scores[convention]["recall"] == pytest.approx(correct / 8)
    p, r = partial["precision"], partial["recall"]
    assert partial["f1"] == pytest.approx(2 * p * r / (p + r))


def test_scoring_table_rows_and_disagreement_flags():
    rows = scoring_table(GOLD, PRED)
    assert [row["key"] for row in rows] == ["default", "strict", "partial"]
    block, partial = score_block(GOLD, PRED), partial_scores(GOLD, PRED)["partial"]
    assert rows[0]["f1"] == block["f1"] and rows[1]["f1"] == block["strict_f1"]
    assert rows[2]["f1"] == pytest.approx(partial["f1"])
    for row in rows:
        assert row["disagrees"] == (abs(row["f1"] - block["f1"]) > 0.005)
    assert rows[2]["disagrees"]  # the ORG off-by-one earns partial credit only


# ---------------------------------------------------------------- confusion matrices


def recall_and_precision_by_counting(gold, pred, label):
    pairs = [(g, p) for gs, ps in zip(gold, pred, strict=True) for g, p in zip(gs, ps, strict=True)]
    hits = sum(g == p == label for g, p in pairs)
    true_total, pred_total = sum(g == label for g, _ in pairs), sum(p == label for _, p in pairs)
    return (hits / true_total if true_total else 0.0), (hits / pred_total if pred_total else 0.0)


def test_label_order_is_o_then_b_i_per_sorted_type():
    assert label_order(GOLD, PRED) == (
        "O", "B-LOC", "I-LOC", "B-MISC", "I-MISC", "B-ORG", "I-ORG", "B-PER", "I-PER",
    )  # fmt: skip


def test_word_confusion_counts_rows_true_columns_predicted():
    matrix = word_confusion([["B-PER", "O"]], [["B-LOC", "O"]])
    labels = list(matrix.labels)
    assert matrix.counts[labels.index("B-PER")][labels.index("B-LOC")] == 1
    assert matrix.counts[labels.index("B-LOC")][labels.index("B-PER")] == 0
    assert "B-LOC" in labels  # seen only in predictions


def test_normalized_matrices_sum_to_one_and_diagonals_are_recall_and_precision():
    gold, pred = random_corpus(seed=3, sentences=60)
    matrix = word_confusion(gold, pred)
    rows, cols = matrix.row_normalized(), matrix.column_normalized()
    for i, label in enumerate(matrix.labels):
        row_total = sum(matrix.counts[i])
        col_total = sum(row[i] for row in matrix.counts)
        assert sum(rows[i]) == (pytest.approx(1.0) if row_total else 0.0)
        assert sum(row[i] for row in cols) == (pytest.approx(1.0) if col_total else 0.0)
        recall, precision = recall_and_precision_by_counting(gold, pred, label)
        assert rows[i][i] == pytest.approx(recall)
        assert cols[i][i] == pytest.approx(precision)


def test_all_zero_row_stays_zero():
    matrix = ConfusionMatrix(("O", "B-PER"), [[3, 1], [0, 0]])
    assert matrix.row_normalized() == [[0.75, 0.25], [0.0, 0.0]]
    assert matrix.column_normalized() == [[1.0, 1.0], [0.0, 0.0]]


def test_confusion_json_and_csv():
    matrix = ConfusionMatrix(("O", "B-PER"), [[3, 1], [2, 0]])
    data = matrix.to_json()
    assert set(data) == {"labels", "counts", "row_normalized", "column_normalized"}
    assert json.loads(json.dumps(data)) == data
    assert matrix.to_csv().splitlines() == ["true\\predicted,O,B-PER", "O,3,1", "B-PER,2,0"]


def test_explicit_labels_must_cover_the_tags():
    with pytest.raises(LabelError, match="B-PER"):
        word_confusion([["B-PER"]], [["O"]], labels=["O"])
    assert word_confusion([["O"]], [["O"]], labels=["O", "B-X", "I-X"]).labels == ("O", "B-X", "I-X")


# ---------------------------------------------------------------- span outcomes

SPAN_CASES = [
    # (gold, pred, gold type or None, outcome, predicted type or "none")
    (["B-PER", "I-PER"], ["B-PER", "I-PER"], "PER", "matched", "PER"),
    (["B-PER", "I-PER"], ["I-PER", "I-PER"], "PER", "matched", "PER"),
    (["B-PER"], ["B-LOC"], "PER", "wrong_type", "LOC"),
    (["B-LOC", "I-LOC", "O"], ["B-LOC", "O", "O"], "LOC", "wrong_boundary", "LOC"),
    (["B-ORG", "I-ORG", "O"], ["O", "B-PER", "I-PER"], "ORG", "wrong_both", "PER"),
    (["B-MISC"], ["O"], "MISC", "missed", "none"),
    (["O"], ["B-ORG"], None, "spurious", "ORG"),
]


@pytest.mark.parametrize(("gold", "pred", "true_type", "outcome", "pred_type"), SPAN_CASES)
def test_span_outcome_per_case(gold, pred, true_type, outcome, pred_type):
    result = span_confusion([gold], [pred])
    counted_under = true_type if true_type is not None else pred_type
    assert result["per_type"][counted_under][outcome] == 1
    assert sum(result["totals"].values()) == 1
    matrix = span_type_confusion([gold], [pred])
    labels = list(matrix.labels)
    row = labels.index(true_type if true_type is not None else "none")
    assert matrix.counts[row][labels.index(pred_type)] == 1


def test_span_outcomes_partition_gold_support():
    gold, pred = random_corpus(seed=5, sentences=80)
    result = span_confusion(gold, pred)
    support = label_stats(gold)["entity_counts"]
    for kind, counts in result["per_type"].items():
        assert sum(counts[o] for o in result["outcomes"] if o != "spurious") == support.get(kind, 0)
    labels = result["type_confusion"]["labels"]
    assert labels[-1] == "none"
    assert sum(result["type_confusion"]["counts"][-1]) == result["totals"]["spurious"]
    assert sum(row[-1] for row in result["type_confusion"]["counts"]) == result["totals"]["missed"]


# ---------------------------------------------------------------- imbalance


def test_label_stats():
    stats = label_stats(GOLD)
    assert stats["sentences"] == 4 and stats["tokens"] == 16
    assert stats["tag_counts"] == {"O": 8, "B-LOC": 2, "B-ORG": 1, "I-ORG": 2, "B-PER": 2, "I-PER": 1}
    assert list(stats["tag_counts"]) == [t for t in label_order(GOLD) if t in stats["tag_counts"]]
    assert stats["entity_counts"] == {"LOC": 2, "ORG": 1, "PER": 2}
    assert stats["o_share"] == pytest.approx(8 / 16)
    assert stats["entities_per_sentence"] == pytest.approx(5 / 4)
    assert label_stats([])["o_share"] == 0.0


# ---------------------------------------------------------------- bootstrap


@pytest.mark.parametrize("seed", range(20))
def test_fast_f1_equals_seqeval_on_random_tags(seed):
    gold, pred = random_corpus(seed, sentences=25)
    counts = span_counts(gold, pred)
    fast = float(f1_from_counts(counts.true_positives.sum(), counts.predicted.sum(), counts.gold.sum()))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert fast == pytest.approx(f1_score(gold, pred, zero_division=0), abs=1e-12)
        strict = f1_score(gold, pred, mode="strict", scheme=IOB2, zero_division=0)
    block = score_block(gold, pred)
    assert block["f1"] == pytest.approx(fast, abs=1e-12) and block["strict_f1"] == pytest.approx(strict)
    assert bootstrap_f1(gold, pred, n=10)["point"] == pytest.approx(fast)


def test_bootstrap_interval_holds_the_point_and_narrows_with_more_data():
    gold, pred = random_corpus(seed=11, sentences=150)
    once = bootstrap_f1(gold, pred, n=500, seed=1)
    four = bootstrap_f1(gold * 4, pred * 4, n=500, seed=1)
    assert once["low"] <= once["point"] <= once["high"]
    assert four["point"] == pytest.approx(once["point"])
    assert four["high"] - four["low"] < once["high"] - once["low"]
    assert bootstrap_f1(gold, pred, n=500, seed=1) == once  # seeded: reproducible
    assert set(once) >= {"low", "high", "point", "n"} and once["n"] == 500


def test_bootstrap_on_nothing_is_a_zero_interval():
    result = bootstrap_f1([], [], n=100)
    assert (result["point"], result["low"], result["high"], result["n"]) == (0.0, 0.0, 0.0, 100)


def test_paired_bootstrap_sign_and_p_value():
    gold, worse = random_corpus(seed=2, sentences=150)
    better = [list(g) if i % 2 else list(w) for i, (g, w) in enumerate(zip(gold, worse, strict=True))]
    forward = paired_bootstrap(gold, better, worse, n=400)
    assert forward["delta"] > 0 and forward["low"] > 0 and forward["p_value"] < 0.05
    assert forward["delta"] == pytest.approx(f1_score(gold, better) - f1_score(gold, worse))
    backward = paired_bootstrap(gold, worse, better, n=400)
    assert backward["delta"] == pytest.approx(-forward["delta"]) and backward["high"] < 0
    assert backward["p_value"] == forward["p_value"]
    same = paired_bootstrap(gold, worse, worse, n=50)
    assert (same["delta"], same["low"], same["high"], same["p_value"]) == (0.0, 0.0, 0.0, 1.0)


# ---------------------------------------------------------------- error analysis

NAN = math.nan
RECORDS = [
    LossRecord(
        tokens=("<s>", "▁Paris", "▁is", "▁nice", "</s>"),
        losses=(NAN, 2.5, 0.1, 0.2, NAN),
        gold_labels=("IGN", "B-LOC", "O", "O", "IGN"),
        pred_labels=("O", "B-ORG", "O", "O", "O"),
        words=("Paris", "is", "nice"),
        word_gold=("B-LOC", "O", "O"),
        word_pred=("B-ORG", "O", "O"),
        index=7,
    ),
    LossRecord(
        tokens=("<s>", "▁An", "na", "▁is", "</s>"),
        losses=(NAN, 0.5, NAN, 0.3, NAN),
        gold_labels=("IGN", "B-PER", "IGN", "O", "IGN"),
        pred_labels=("O", "B-PER", "I-PER", "O", "O"),
    ),
]


def test_loss_record_checks_lengths():
    with pytest.raises(ValueError, match="sentence 3"):
        LossRecord(("a", "b"), (0.1,), ("O", "O"), ("O", "O"), index=3)


def test_top_tokens_and_loss_per_label_skip_ignored_subwords():
    tokens = top_tokens(RECORDS, k=2)
    assert [row["token"] for row in tokens["by_total"]] == ["▁Paris", "▁An"]
    is_row = next(row for row in top_tokens(RECORDS)["by_total"] if row["token"] == "▁is")
    assert is_row["count"] == 2 and is_row["total_loss"] == pytest.approx(0.4)
    assert is_row["mean_loss"] == pytest.approx(0.2)
    assert [row["token"] for row in top_tokens(RECORDS, min_count=2)["by_mean"]] == ["▁is"]
    labels = {row["label"]: row for row in loss_per_label(RECORDS)}
    assert set(labels) == {"B-LOC", "O", "B-PER"}  # IGN subwords carry no loss
    assert labels["B-LOC"]["errors"] == 1 and labels["O"]["count"] == 3
    assert labels["O"]["mean_loss"] == pytest.approx(0.6 / 3)


def test_worst_sentences_rank_by_total_loss():
    worst = worst_sentences(RECORDS, n=2)
    assert [s["index"] for s in worst] == [7, 1]
    assert worst[0]["total_loss"] == pytest.approx(2.8)
    assert worst[0]["rows"][0]["loss"] is None


def test_error_report_is_json_and_markdown_has_the_rows():
    report = error_report(RECORDS, k=5, n=2)
    assert json.loads(json.dumps(report)) == report
    text = render_errors_markdown(report)
    assert "### Sentence 7: total loss 2.800 (mean 0.933)" in text
    assert "| ▁Paris | B-LOC | B-ORG | 2.500 |" in text
    assert "| <s> | IGN | O |  |" in text
    assert "| Paris | B-LOC | B-ORG |" in text
    assert "| ▁is | 2 | 0.400 | 0.200 |" in text
    assert "| B-LOC | 1 | 1 | 2.500 | 2.500 |" in text


def test_markdown_escapes_pipes_in_tokens():
    record = LossRecord(("▁a|b",), (1.0,), ("O",), ("O",))
    assert "| ▁a\\|b | O | O | 1.000 |" in render_errors_markdown(error_report([record]))


# ---------------------------------------------------------------- plots


def assert_png(path: Path) -> None:
    import matplotlib.image

    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(path)
    assert image.shape[0] > 50 and image.shape[1] > 50


@pytest.mark.parametrize("normalize", ["none", "row", "column"])
def test_plot_confusion_writes_a_png(tmp_path, normalize):
    from nertool.evaluate.plots import plot_confusion

    path = plot_confusion(word_confusion(GOLD, PRED), tmp_path / "sub" / "cm.png", normalize, title="de")
    assert_png(path)


def test_plot_heatmap_with_missing_cells(tmp_path):
    from nertool.evaluate.plots import plot_heatmap

    values = [[0.81, None, 0.3], [0.5, 0.72, None]]
    path = plot_heatmap(["de", "fr"], ["de", "fr", "en"], values, tmp_path / "t.png", "F1", "target", "src")
    assert_png(path)


def test_plot_arguments_are_checked(tmp_path):
    from nertool.evaluate.plots import plot_confusion, plot_heatmap

    with pytest.raises(ValueError, match="normalize"):
        plot_confusion(word_confusion(GOLD, PRED), tmp_path / "x.png", "rows")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="2 rows of 1"):
        plot_heatmap(["a", "b"], ["c"], [[1.0]], tmp_path / "y.png")
