"""Trained runs the inference and memory scenarios tag with, trained once and cached.

A run is trained with ``nertool.workflows.train.train_run`` (the same code as ``nertool train``) into
``<cache>/<name>/`` and reused once its ``metrics.json`` exists (written last); the name encodes everything
that decides the weights, so a changed plan trains a new run instead of reusing a stale one.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from bench.harness import Options, data_source


@dataclass(frozen=True)
class RunPlan:
    model: str
    train_sentences: int
    epochs: int
    batch_size: int
    learning_rate: float
    eval_sentences: int = 500
    seed: int = 42

    def name(self, source_name: str) -> str:
        size = self.model.split(":", 1)[1]
        shape = f"{self.train_sentences}x{self.epochs}-b{self.batch_size}-lr{self.learning_rate:g}"
        return f"{size}-{source_name}-de-{shape}"


INFERENCE_RUN = RunPlan("scratch:small", 4000, 2, 32, 5e-4)
QUICK_RUN = RunPlan("scratch:tiny", 200, 1, 16, 3e-3, eval_sentences=50)


def cached_run(plan: RunPlan, options: Options) -> Path:
    """The run folder for ``plan``: trained now unless the cache already holds it."""
    from nertool.config import build_recipe
    from nertool.workflows.train import train_run

    source, source_name = data_source(options)
    folder = options.cache / plan.name(source_name)
    if (folder / "metrics.json").is_file():  # written last: the run finished
        return folder
    recipe = build_recipe(
        {
            "seed": plan.seed,
            "model": {"name": plan.model, "max_length": 256},
            "data": {
                "source": source,
                "train_languages": ["de"],
                "max_train_samples": plan.train_sentences,
                "max_eval_samples": plan.eval_sentences,
            },
            "train": {
                "epochs": plan.epochs,
                "batch_size": plan.batch_size,
                "learning_rate": plan.learning_rate,
            },
        }
    )
    train_run(recipe, folder)
    shutil.rmtree(folder / "checkpoint", ignore_errors=True)  # resumable state, not needed to tag
    return folder
