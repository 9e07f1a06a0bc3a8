"""nertool's score block as an ``evaluate`` metric, for ``evaluate.evaluator`` and Trainer callbacks.

Load it offline from the installed package: ``evaluate.load(nertool.metric_path())``. Given
``predictions`` and ``references`` as lists of IOB2 tag lists (one list a sentence, one tag a
word), ``compute`` returns exactly ``nertool.evaluate.scores.score_block``: the seqeval default
(conlleval) headline ``precision``/``recall``/``f1``, the strict IOB2 scores beside it,
``macro_f1``, ``per_type``, ``token_accuracy`` and ``sentences`` — the block of ``metrics.json``.
"""

from __future__ import annotations

from typing import Any

import datasets
import evaluate

from nertool.evaluate.scores import score_block

_DESCRIPTION = "nertool's metrics.json score block: seqeval default and strict IOB2 entity scores."
_KWARGS = """
Args:
    predictions: list of predicted tag lists, one tag per word (IOB2 strings such as B-PER).
    references: list of gold tag lists, of the same shapes.
Returns:
    precision, recall, f1 (seqeval default / conlleval), strict_precision, strict_recall,
    strict_f1 (seqeval strict IOB2), macro_f1, micro_f1, per_type {type: precision, recall,
    f1, support}, token_accuracy, sentences, seqeval_mode.
Examples:
    >>> metric = evaluate.load(nertool.metric_path())  # doctest: +SKIP
    >>> metric.compute(predictions=[["B-PER", "O"]], references=[["B-PER", "O"]])["f1"]  # doctest: +SKIP
    1.0
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS)
class NertoolSeqeval(evaluate.Metric):
    """Entity scores exactly as ``nertool evaluate`` writes them."""

    def _info(self) -> Any:
        tags = datasets.Sequence(datasets.Value("string", id="label"), id="sequence")
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS,
            features=datasets.Features({"predictions": tags, "references": tags}),
            reference_urls=["https://github.com/chakki-works/seqeval"],
        )

    def _compute(self, predictions: Any, references: Any) -> dict[str, Any]:
        return score_block(references, predictions)
