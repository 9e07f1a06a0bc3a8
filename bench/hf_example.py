"""The baseline preprocessing, as the transformers token-classification example writes it.

``tokenize_and_align_labels`` follows ``examples/pytorch/token-classification/run_ner.py`` and the
Hugging Face course (first subword labelled, the rest and the specials ``-100``), applied with
``datasets.Dataset.map(batched=True)``; the Trainer pads with ``DataCollatorForTokenClassification``.
Kept as published, so the benchmark measures what users of the example get.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

IGNORE = -100


def label_aligner(tokenizer: Any, max_length: int) -> Callable[[dict[str, Any]], Any]:
    """The example's ``tokenize_and_align_labels`` for one tokenizer (``label_all_tokens=False``)."""

    def tokenize_and_align_labels(examples: dict[str, Any]) -> Any:
        tokenized_inputs = tokenizer(
            examples["tokens"], truncation=True, max_length=max_length, is_split_into_words=True
        )
        labels = []
        for i, label in enumerate(examples["ner_tags"]):
            word_ids = tokenized_inputs.word_ids(batch_index=i)
            previous_word_idx = None
            label_ids = []
            for word_idx in word_ids:
                if word_idx is None:
                    label_ids.append(IGNORE)
                elif word_idx != previous_word_idx:
                    label_ids.append(label[word_idx])
                else:
                    label_ids.append(IGNORE)
                previous_word_idx = word_idx
            labels.append(label_ids)
        tokenized_inputs["labels"] = labels
        return tokenized_inputs

    return tokenize_and_align_labels


def raw_dataset(sentences: Sequence[Any], label_ids: Sequence[Sequence[int]]) -> Any:
    """A ``datasets.Dataset`` with the hub's WikiANN columns: ``tokens`` and integer ``ner_tags``."""
    from datasets import Dataset

    return Dataset.from_dict(
        {"tokens": [list(s.tokens) for s in sentences], "ner_tags": [list(x) for x in label_ids]}
    )


def tokenized_dataset(dataset: Any, tokenizer: Any, max_length: int) -> Any:
    """The example's preprocessing step: ``map(tokenize_and_align_labels, batched=True)``."""
    return dataset.map(
        label_aligner(tokenizer, max_length),
        batched=True,
        remove_columns=dataset.column_names,
        load_from_cache_file=False,
    )
