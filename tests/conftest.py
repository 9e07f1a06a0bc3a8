"""Shared fixtures: where the real data lives, a tiny tokenizer, and one tiny trained run.

Every test that needs "some trained model" uses the session's ``tiny_run`` (trained once, about
ten seconds on one core); a test that needs a recipe of its own (other labels, several seeds, a
checkpoint it damages) trains its own. Tests that use ``tiny_run`` are marked ``slow``, so
``pytest -m "not slow"`` trains nothing.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "nertool" / "resources" / "sample"
# Real corpora sit beside the repository, never inside it; tests that read them skip without them.
SHARED_DATA = ROOT.parent / "shared" / "data"

# One thread per process unless the caller chose otherwise: the suite runs on small shared
# machines, and the subprocesses it launches (train, torchrun workers) inherit these.
THREAD_DEFAULTS = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}

# The recipe of the shared run: German training, German and French evaluation; enough steps
# for the model to find entities (test F1 well above zero), so checks on its output bite.
TINY_RUN_RECIPE: dict[str, Any] = {
    "seed": 7,
    "model": {"name": "scratch:tiny", "max_length": 64},
    "data": {
        "source": "sample",
        "train_languages": ["de"],
        "eval_languages": ["de", "fr"],
        "max_train_samples": 96,
    },
    "train": {"epochs": 3, "batch_size": 16, "learning_rate": 3e-3, "warmup_ratio": 0.0, "log_every": 1},
}


def pytest_configure(config: pytest.Config) -> None:
    for name, value in THREAD_DEFAULTS.items():
        os.environ.setdefault(name, value)
    # The feature cache (data.cache_dir = "auto") goes to a folder of this session, never to
    # ~/.cache; subprocesses inherit it.
    cache = tempfile.mkdtemp(prefix="nertool-test-cache-")
    os.environ["NERTOOL_CACHE"] = cache
    config.add_cleanup(lambda: shutil.rmtree(cache, ignore_errors=True))
    if "torch" in sys.modules:  # imported before us (a plugin): the variable came too late
        sys.modules["torch"].set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that needs the trained run is slow, however it gets it (directly or via a fixture)."""
    for item in items:
        if "tiny_run" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


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


@pytest.fixture(scope="session")
def tiny_run_recipe() -> Any:
    """The shared run's recipe as a ``Recipe`` (tests compare it with the run's ``config.toml``)."""
    import copy

    from nertool.config import build_recipe

    return build_recipe(copy.deepcopy(TINY_RUN_RECIPE))


def folder_digest(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder``: proof that no test wrote into the shared run."""
    return {
        path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


@pytest.fixture(scope="session")
def tiny_run_result(tmp_path_factory: pytest.TempPathFactory, tiny_run_recipe: Any) -> Iterator[Any]:
    """The shared run's ``RunResult``; the folder must come back from the session untouched.

    A test that changes a run folder works on a copy (``shutil.copytree(tiny_run, tmp_path / ...)``).
    """
    from nertool.workflows.train import train_run

    folder = tmp_path_factory.mktemp("tiny-run") / "run"
    result = train_run(tiny_run_recipe, folder)
    before = folder_digest(folder)
    yield result
    assert folder_digest(folder) == before, f"a test wrote into the shared run {folder}; give it a copy"


@pytest.fixture(scope="session")
def tiny_run(tiny_run_result: Any) -> Path:
    """The folder of the shared tiny run (read it, never write into it)."""
    return Path(tiny_run_result.run_dir)
