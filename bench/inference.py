"""Inference: ``nertool.predict.tagger.Tagger`` against ``transformers.pipeline("token-classification")``.

Both tag the same WikiANN de sentences (test, then validation) with the same trained scratch run
(``bench/runs.py``). The pipeline gets each sentence as ``" ".join(tokens)`` with
``aggregation_strategy="first"`` at its *best* batch size (each of ``PIPELINE_BATCHES`` timed on a
probe, the fastest kept); nertool gets the same words as units (``predict_io.unit_from_tokens``,
the path ``nertool predict --input-format conll`` takes), so both see the same subwords. The
``--quantize`` variant (dynamic int8 Linear layers) is compared with the pipeline's model
quantized the same way (``tagger.quantize``): int8 against int8. When onnxruntime is installed,
nertool's ONNX backend (``nertool export`` of the same run, ``Tagger.load(backend="onnx")``) is
a fifth side, reported against torch fp32 and the pipeline. The sides alternate (pipeline,
nertool, pipeline int8, nertool int8, onnx, ...) ``REPEATS`` times; medians with the spread.
On a slow (shared) machine the full run tags fewer than 20,000 sentences: a timed probe of the
pipeline sizes it to ``BUDGET_S``, and the record keeps requested and measured sizes.

Comparing tags, two ways. (1) Word level, as users see it: the pipeline returns entity groups with
character offsets; a word belongs to a group when their character ranges overlap. Each side is
written as canonical IOB2 over the words (first word of an entity ``B-X``, the rest ``I-X``;
nertool's tags go through ``labels.tags_to_spans``, which reads an orphan ``I-X`` as a new entity,
exactly as the pipeline's ``group_entities`` does), and ``word_disagreement`` is the share of words
whose canonical tags differ. This tokenizer gives the pipeline no ``word_ids``, so it falls back to
a whitespace heuristic that starts a new word after a bare ``▁`` piece: for a word that begins
with one it reads the label one piece later than its first subword, where training put the label.
Differing sentences without such a word are counted apart. (2) First subword: the pipeline with
``aggregation_strategy="none"`` read at each word's first subword (on ``SUBWORD_CHECK``
sentences), against nertool's word tags: the same model output, or not. F1 (seqeval default
mode, ``analysis.score_block``) is computed on the test sentences.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

from bench.harness import (
    Options,
    Row,
    data_source,
    headline_spread,
    in_temporary_folder,
    load_split,
    make_record,
    measure_alternating,
    stopwatch,
)
from bench.runs import INFERENCE_RUN, QUICK_RUN, cached_run

SCENARIO = "inference"
PIPELINE_BATCH = 32  # the first-subword check's batch size (not timed)
PIPELINE_BATCHES = (8, 32, 64, 128)
REPEATS = 3
TARGETS = {"full_precision": 2.5, "quantized_vs_int8_pipeline": 1.5}
BUDGET_S = 900.0  # every timed run together (full mode); fewer sentences when this machine is slower
SIDES_COST = 3.0  # the four sides of one repeat, in fp32-pipeline times (nertool's sides are faster)
PROBE = 512
PROBE_ROUNDS = 3
SUBWORD_CHECK = 2000
TAG_COMPARISON = (
    "canonical IOB2 per word, pipeline entity groups mapped to words by character overlap; "
    "first_subword_check: pipeline with aggregation_strategy='none' read at each word's first subword"
)
MIN_SENTENCES = 2000


def sizes(options: Options) -> int:
    return 500 if options.quick else 20_000


def inference_sentences(options: Options, n: int) -> tuple[list[Any], int]:
    """(sentences, how many of the first ones are test sentences): test first, then validation."""
    source, _ = data_source(options)
    test, validation = load_split(source, "test"), load_split(source, "validation")
    pool = test + validation
    chosen = [pool[i % len(pool)] for i in range(n)]
    return chosen, min(n, len(test))


# ---------------------------------------------------------------- canonical word tags


def canonical(spans: Sequence[tuple[int, int, str]], n_words: int) -> list[str]:
    """IOB2 tags over ``n_words`` from word spans ``[start, end)``."""
    tags = ["O"] * n_words
    for start, end, label in spans:
        for word in range(start, end):
            tags[word] = ("B-" if word == start else "I-") + label
    return tags


def nertool_tags(tags: Sequence[str]) -> list[str]:
    from nertool.labels import tags_to_spans

    return canonical([(s.start, s.end, s.label) for s in tags_to_spans(tags)], len(tags))


def pipeline_tags(groups: Sequence[dict[str, Any]], starts: Sequence[int], ends: Sequence[int]) -> list[str]:
    """Word tags from the pipeline's entity groups, by character overlap with each word."""
    spans = []
    for group in groups:
        words = [w for w in range(len(starts)) if starts[w] < group["end"] and group["start"] < ends[w]]
        if words:
            spans.append((words[0], words[-1] + 1, group["entity_group"]))
    return canonical(spans, len(starts))


def bare_piece_words(tokenizer: Any, sentences: Sequence[Any]) -> list[set[int]]:
    """Per sentence, the words whose first subword is a bare ``▁`` piece followed by more pieces.

    The pipeline's fallback word heuristic (no ``word_ids`` for this tokenizer) starts a new word at
    the piece after a bare ``▁``, so with ``first`` it reads such a word's label one piece later than
    the first subword, where training put the label.
    """
    from nertool.model import word_pieces

    bare = tokenizer.convert_tokens_to_ids("▁")
    pieces = word_pieces(tokenizer, [s.tokens for s in sentences])
    return [{w for w, p in enumerate(words) if len(p) > 1 and p[0] == bare} for words in pieces]


def disagreement(
    a: Sequence[Sequence[str]], b: Sequence[Sequence[str]], bare: Sequence[set[int]]
) -> dict[str, Any]:
    """Words and sentences whose canonical tags differ; ``bare`` (per sentence) explains some of them."""
    words = sum(len(x) for x in a)
    differing = [
        [w for w, (x, y) in enumerate(zip(xs, ys, strict=True)) if x != y]
        for xs, ys in zip(a, b, strict=True)
    ]
    n_differing = sum(len(d) for d in differing)
    return {
        "words": words,
        "differing_words": n_differing,
        "word_disagreement": n_differing / words if words else 0.0,
        "sentences_differing": sum(bool(d) for d in differing),
        "sentences_differing_without_a_bare_piece_word": sum(
            bool(d) and not b for d, b in zip(differing, bare, strict=True)
        ),
    }


def first_subword_agreement(pipe_dir: str, sentences: Sequence[Any], tagged: Sequence[Any]) -> dict[str, Any]:
    """Per-subword pipeline labels (``aggregation_strategy="none"``) at each word's first subword vs nertool.

    This bypasses the pipeline's word heuristic: where both saw the same input ids, it shows whether
    the two read the same model output for every word.
    """
    from transformers import pipeline

    from nertool.model import word_pieces

    pipe = pipeline(
        "token-classification",
        model=pipe_dir,
        aggregation_strategy="none",
        ignore_labels=[],
        batch_size=PIPELINE_BATCH,
        device="cpu",
    )
    tokenizer: Any = pipe.tokenizer
    outputs: list[list[dict[str, Any]]] = pipe([" ".join(s.tokens) for s in sentences])
    pieces = word_pieces(tokenizer, [s.tokens for s in sentences])
    same_inputs = words = same = 0
    for output, word_list, ours, sentence in zip(outputs, pieces, tagged, sentences, strict=True):
        flat = [tokenizer.bos_token_id, *(i for p in word_list for i in p), tokenizer.eos_token_id]
        if tokenizer(" ".join(sentence.tokens))["input_ids"] != flat:
            continue
        same_inputs += 1
        by_index: dict[int, str] = {o["index"]: o["entity"] for o in output}
        position = 1
        for word, ids_of_word in enumerate(word_list):
            if ids_of_word:
                words, same = words + 1, same + (by_index[position] == ours.tags[word])
            position += len(ids_of_word)
    return {
        "sentences": len(sentences),
        "same_input_ids": same_inputs,
        "words": words,
        "same_first_subword_label": same,
        "agree_share": same / words if words else 0.0,
    }


def test_f1(gold: Sequence[Any], predicted: Sequence[Sequence[str]]) -> float:
    from nertool.evaluate import score_block

    return float(score_block([s.tags for s in gold], predicted[: len(gold)])["f1"])


# ---------------------------------------------------------------- the timed sides


def load_pipeline(model_dir: str, warm_up: Sequence[str], batch_size: int, quantized: bool = False) -> Any:
    from transformers import pipeline

    from nertool.predict.tagger import quantize

    tagger = pipeline(
        "token-classification",
        model=model_dir,
        aggregation_strategy="first",
        batch_size=batch_size,
        device="cpu",
    )
    if quantized:
        tagger.model = quantize(tagger.model)
    tagger(list(warm_up))  # first-call costs are not throughput
    return tagger


def best_batch_size(model_dir: str, texts: Sequence[str]) -> tuple[int, dict[int, float]]:
    """The pipeline's fastest batch size on a probe (s/sentence of each, for the record).

    Each batch size is timed ``PROBE_ROUNDS`` times, the rounds interleaved, and keeps its fastest
    time: on a shared machine one timing of each can rank two batch sizes by the neighbours' load
    (one 256-sentence round once picked 64 over 8 by 1 %, and batch 64 then ran 25 % slower).
    """
    probe = list(texts[:PROBE])
    taggers = {
        batch_size: load_pipeline(model_dir, probe[:32], batch_size) for batch_size in PIPELINE_BATCHES
    }
    best: dict[int, float] = {}
    for _ in range(PROBE_ROUNDS):
        for batch_size, tagger in taggers.items():
            with stopwatch() as watch:
                tagger(probe)
            seconds = round(watch.seconds / len(probe), 6)
            best[batch_size] = min(best.get(batch_size, seconds), seconds)
    return min(best, key=lambda b: best[b]), best


def fit_to_budget(per_sentence: float, wanted: int) -> int:
    """``wanted`` sentences or fewer (by 1,000) so that every repeat of every side fits ``BUDGET_S``."""
    affordable = int(BUDGET_S / (REPEATS * SIDES_COST * per_sentence)) // 1000 * 1000
    return max(MIN_SENTENCES, min(wanted, affordable))


def load_tagger(run_dir: str, sentences: Sequence[Any], quantized: bool) -> Any:
    from nertool.predict import Tagger, unit_from_tokens

    tagger = Tagger.load(run_dir, device="cpu", quantized=quantized)
    tagger.tag_units([unit_from_tokens(s.tokens, "warmup", i + 1) for i, s in enumerate(sentences[:64])])
    return tagger


def tag_with(tagger: Any, sentences: Sequence[Any]) -> list[Any]:
    """What is timed on nertool's side: units built from the words, then tagged."""
    from nertool.predict import unit_from_tokens

    units = [unit_from_tokens(s.tokens, "bench", i + 1) for i, s in enumerate(sentences)]
    return list(tagger.tag_units(units))


# ---------------------------------------------------------------- the scenario


def tag_quality(
    run_dir: Path,
    sentences: Sequence[Any],
    n_test: int,
    groups: Sequence[Any],
    tagged: Sequence[Any],
    q_tagged: Sequence[Any],
) -> dict[str, Any]:
    """Tag agreement with the pipeline (word level and first-subword level) and test F1 of all three."""
    from nertool.model import load_tokenizer

    bare = bare_piece_words(load_tokenizer(str(run_dir)), sentences)
    base_tags = [pipeline_tags(g, t.unit.starts, t.unit.ends) for g, t in zip(groups, tagged, strict=True)]
    our_tags = [nertool_tags(t.tags) for t in tagged]
    q_tags = [nertool_tags(t.tags) for t in q_tagged]
    gold = sentences[:n_test]
    f1 = {
        "baseline": test_f1(gold, base_tags),
        "nertool": test_f1(gold, our_tags),
        "quantized": test_f1(gold, q_tags),
    }
    check = min(len(sentences), SUBWORD_CHECK)
    return {
        "pipeline_vs_nertool": disagreement(base_tags, our_tags, bare),
        "pipeline_vs_quantized": disagreement(base_tags, q_tags, bare),
        "first_subword_check": first_subword_agreement(
            str(run_dir / "model"), sentences[:check], tagged[:check]
        ),
        "test_sentences_scored": n_test,
        "test_f1": f1,
        "quantized_f1_cost": f1["nertool"] - f1["quantized"],
        "tag_comparison": TAG_COMPARISON,
    }


def settings_of(
    plan: Any, options: Options, n: int, batch_size: int, probes: dict[int, float], repeats: int
) -> dict[str, Any]:
    _, source_name = data_source(options)
    return {
        "run": plan.name(source_name),
        "model": plan.model,
        "sentences": n,
        "requested_sentences": sizes(options),
        "pipeline_probe_s_per_sentence": probes,
        "budget_s": None if options.quick else BUDGET_S,
        "data": f"{source_name} de test+validation",
        "pipeline": {"aggregation_strategy": "first", "batch_size": batch_size, "device": "cpu"},
        "nertool": "Tagger.load(run, device='cpu'[, quantized=True]).tag_units(unit_from_tokens(...))",
        "repeats": repeats,
        "order": "alternating: pipeline, nertool, pipeline int8, nertool int8, ...",
        "warm_up": "64 sentences per side before timing",
    }


def onnx_available() -> bool:
    """Whether the ``onnx`` extra (exporter and runtime) is installed."""
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("onnx", "onnxruntime", "onnxscript"))


def onnx_tagger(run_dir: Path, folder: Path, sentences: Sequence[Any]) -> Any | None:
    """A tagger on the ONNX export of ``run_dir`` (written into ``folder``), or None without onnxruntime."""
    if not onnx_available():
        return None
    from nertool.model.export import export_onnx
    from nertool.predict import Tagger, unit_from_tokens

    export_onnx(run_dir, folder / "onnx")
    tagger = Tagger.load(folder / "onnx", device="cpu", backend="onnx")
    tagger.tag_units([unit_from_tokens(s.tokens, "warmup", i + 1) for i, s in enumerate(sentences[:64])])
    return tagger


def run(options: Options) -> dict[str, Any]:
    return in_temporary_folder("nertool-bench-onnx-", partial(_run, options))


def _run(options: Options, tmp: Path) -> dict[str, Any]:
    plan = QUICK_RUN if options.quick else INFERENCE_RUN
    run_dir = cached_run(plan, options)
    model_dir = str(run_dir / "model")
    sentences, _ = inference_sentences(options, sizes(options))
    texts = [" ".join(s.tokens) for s in sentences]
    batch_size, probes = best_batch_size(model_dir, texts)
    n = len(texts) if options.quick else fit_to_budget(probes[batch_size], len(texts))
    repeats = 1 if options.quick else REPEATS
    sentences, n_test = inference_sentences(options, n)
    texts = texts[:n]
    pipes = {q: load_pipeline(model_dir, texts[:64], batch_size, quantized=q) for q in (False, True)}
    taggers = {q: load_tagger(str(run_dir), sentences, quantized=q) for q in (False, True)}
    onnx = onnx_tagger(run_dir, tmp, sentences)
    sides = [
        ("pipeline", lambda: pipes[False](list(texts))),
        ("nertool", lambda: tag_with(taggers[False], sentences)),
        ("pipeline_int8", lambda: pipes[True](list(texts))),
        ("nertool_int8", lambda: tag_with(taggers[True], sentences)),
    ]
    if onnx is not None:
        sides.append(("nertool_onnx", lambda: tag_with(onnx, sentences)))
    runs = measure_alternating(sides, repeats)
    med = {name: r.median_seconds for name, r in runs.items()}
    groups, tagged, q_tagged = (runs[k].results[-1] for k in ("pipeline", "nertool", "nertool_int8"))
    quality = tag_quality(run_dir, sentences, n_test, groups, tagged, q_tagged)
    ratio, q_ratio = med["pipeline"] / med["nertool"], med["pipeline_int8"] / med["nertool_int8"]
    quality.update(
        targets=TARGETS,
        meets_targets={
            "full_precision": ratio >= TARGETS["full_precision"],
            "quantized_vs_int8_pipeline": q_ratio >= TARGETS["quantized_vs_int8_pipeline"],
        },
    )
    peak = {name: max(r.peak_growth_mb) for name, r in runs.items()}
    rows = [
        Row("throughput (median)", "sentences/s", n / med["pipeline"], n / med["nertool"]),
        Row(
            "throughput int8 vs int8 pipeline (median)",
            "sentences/s",
            n / med["pipeline_int8"],
            n / med["nertool_int8"],
        ),
        Row(
            "throughput int8 vs fp32 pipeline (median)",
            "sentences/s",
            n / med["pipeline"],
            n / med["nertool_int8"],
        ),
        Row("wall time (median)", "s", med["pipeline"], med["nertool"], "lower"),
        Row("wall time int8 (median)", "s", med["pipeline_int8"], med["nertool_int8"], "lower"),
        Row("peak RSS growth (max)", "MiB", peak["pipeline"], peak["nertool"], "lower"),
        Row("peak RSS growth int8 (max)", "MiB", peak["pipeline_int8"], peak["nertool_int8"], "lower"),
    ]
    if onnx is not None:
        rows.insert(
            3, Row("throughput ONNX backend vs torch fp32 (median)", "sentences/s", n / med["nertool"],
                   n / med["nertool_onnx"])
        )  # fmt: skip
        rows.insert(
            4, Row("throughput ONNX backend vs pipeline (median)", "sentences/s", n / med["pipeline"],
                   n / med["nertool_onnx"])
        )  # fmt: skip
        onnx_tags = [list(t.tags) for t in runs["nertool_onnx"].results[-1]]
        quality["onnx_vs_torch_identical_word_tags"] = sum(
            a == list(b.tags) for a, b in zip(onnx_tags, tagged, strict=True)
        ) / len(tagged)
    names = (
        f"transformers.pipeline('token-classification', aggregation_strategy='first', "
        f"batch_size={batch_size})",
        "nertool.predict.tagger.Tagger (length-sorted token-budget batches)",
    )
    base_rates, our_rates = runs["pipeline"].rates(n), runs["nertool"].rates(n)
    spread = headline_spread(base_rates, our_rates, "sentences/s")
    spread["int8"] = headline_spread(
        runs["pipeline_int8"].rates(n), runs["nertool_int8"].rates(n), "sentences/s"
    )
    return make_record(
        SCENARIO,
        options,
        rows,
        quality,
        settings_of(plan, options, n, batch_size, probes, repeats),
        names,
        baseline_config={
            "batch_size": f"{batch_size} (fastest of {list(PIPELINE_BATCHES)} on a {PROBE}-sentence probe, "
            f"best of {PROBE_ROUNDS} rounds)",
            "aggregation_strategy": "first",
            "int8": "the pipeline's model through nertool.predict.tagger.quantize (dynamic int8 Linear)",
        },
        repeats=repeats,
        spread=spread,
    )
