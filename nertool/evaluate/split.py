"""Evaluation: word-level predictions of a model on labelled sentences, scored with seqeval.

Predictions come from ``inference`` (the same path ``predict`` uses), so a sentence gets the same
tags whether it is evaluated or tagged; a run that scores the same splits at every evaluation point
encodes them once (``SplitEncodings``). Scores are computed by
``analysis.score_block``: seqeval default (conlleval) mode for the headline ``f1``, strict IOB2
beside it. A gold label the model does not know is an error, never a silent ``O``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from nertool.data.readers import Sentence
from nertool.evaluate.scores import score_block
from nertool.labels import LabelMap
from nertool.model.inference import (
    EncodedSentences,
    WordPrediction,
    encode_sentences,
    predict_encoded,
    tags_of,
)
from nertool.records import EvaluationRecord, LanguageScores


@dataclass(frozen=True)
class SplitEvaluation:
    """Gold and predicted word tags of one language split, and their scores."""

    language: str
    split: str
    sentences: tuple[Sentence, ...]
    predicted: tuple[tuple[str, ...], ...]
    scores: dict[str, Any]
    word_scores: tuple[tuple[float | None, ...], ...] = ()

    @property
    def gold(self) -> list[list[str]]:
        return [list(s.tags) for s in self.sentences]


class SplitEncodings:
    """The encoded sentences of each (language, split), made on first use and kept for the run.

    Valid while the tokenizer, the model's window length and its label strategy stay as they were
    (true through one training run: the scorer that owns it lives exactly as long). A split is
    re-encoded when a different list of sentences is passed under the same name.
    """

    def __init__(self) -> None:
        self._kept: dict[tuple[str, str], tuple[Sequence[Sentence], EncodedSentences]] = {}
        self.encoded = 0  # how many encodings were made (the rest were reused)

    def of(
        self,
        model: Any,
        tokenizer: Any,
        sentences: Sequence[Sentence],
        language: str,
        split: str,
        accelerator: Any,
    ) -> EncodedSentences:
        kept = self._kept.get((language, split))
        if kept is not None and kept[0] is sentences:
            return kept[1]
        encoded = encode_sentences(model, tokenizer, [s.tokens for s in sentences], accelerator=accelerator)
        self._kept[(language, split)] = (sentences, encoded)
        self.encoded += 1
        return encoded


def evaluate_split(
    model: Any,
    tokenizer: Any,
    label_map: LabelMap,
    *,
    sentences: Sequence[Sentence],
    language: str,
    split: str,
    accelerator: Any = None,
    where: str = "",
    encodings: SplitEncodings | None = None,
) -> SplitEvaluation:
    """Predict and score one split; ``where`` names the data in label errors; ``encodings`` keeps
    the split's encoding for the next call."""
    label_map.check_covers((tag for s in sentences for tag in s.tags), where or f"{language}/{split}")
    memo = encodings or SplitEncodings()
    encoded = memo.of(model, tokenizer, sentences, language, split, accelerator)
    predictions = predict_encoded(model, encoded, pad_id=tokenizer.pad_token_id, accelerator=accelerator)
    predicted = tuple(tuple(tags_of(p, label_map.names)) for p in predictions)
    scores = score_block([s.tags for s in sentences], predicted)
    return SplitEvaluation(language, split, tuple(sentences), predicted, scores, _scores(predictions))


def _scores(predictions: Sequence[WordPrediction]) -> tuple[tuple[float | None, ...], ...]:
    return tuple(p.scores for p in predictions)


def predictions_conll(evaluation: SplitEvaluation) -> str:
    """``token<TAB>gold<TAB>pred`` lines, a blank line between sentences."""
    blocks = []
    for sentence, predicted in zip(evaluation.sentences, evaluation.predicted, strict=True):
        lines = [f"{t}\t{g}\t{p}" for t, g, p in zip(sentence.tokens, sentence.tags, predicted, strict=True)]
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks)


def evaluation_record(
    evaluations: Sequence[SplitEvaluation], extra: Mapping[str, Any] | None = None
) -> EvaluationRecord:
    """Scores per language and split (in evaluation order), then ``extra`` (model, data, best_step ...)."""
    languages: dict[str, dict[str, Any]] = {}
    for evaluation in evaluations:
        languages.setdefault(evaluation.language, {})[evaluation.split] = evaluation.scores
    scores = {language: LanguageScores(splits) for language, splits in languages.items()}
    return EvaluationRecord(scores, dict(extra or {}))


def metrics_document(
    evaluations: Sequence[SplitEvaluation], extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The ``metrics.json`` shape: ``{"languages": {lang: {split: scores}}, ...}``."""
    return evaluation_record(evaluations, extra).to_json()


def mean_f1(evaluations: Sequence[SplitEvaluation]) -> float:
    """Unweighted mean of headline F1 over splits (each language counts once)."""
    return sum(e.scores["f1"] for e in evaluations) / len(evaluations) if evaluations else 0.0
