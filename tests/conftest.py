"""Shared fixtures: where the real data lives, and a tiny tokenizer trained on the bundled sample."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "nertool" / "resources" / "sample"
# Real corpora sit beside the repository, never inside it; tests that read them skip without them.
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real-data folder, or a skip where this checkout has none."""
    if not SHARED_DATA.exists():
        pytest.skip(f"real data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def sample_texts() -> list[str]:
    """Training sentences of the bundled sample, one space-joined string each."""
    from nertool.data.readers import read_sentences

    return [
        " ".join(sentence.tokens)
        for language in sorted(p.name for p in SAMPLE.iterdir() if p.is_dir())
        for sentence in read_sentences(SAMPLE / language / "train.tsv")
    ]


@pytest.fixture(scope="session")
def tokenizer(sample_texts: list[str]) -> Any:
    """A small XLM-R-style Unigram tokenizer trained on the sample (about a second, once a session)."""
    from nertool.model.build import train_tokenizer

    return train_tokenizer(sample_texts, vocab_size=600)
