"""nertool's ``evaluate`` metric: ships in the package, loads offline, equals the score block."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from setuptools import find_packages
from tag_examples import GOLD, PRED

import nertool
from nertool.evaluate.scores import score_block

ROOT = Path(__file__).resolve().parents[1]
LOAD_AND_SCORE = """
import json, sys
import evaluate, nertool
gold, pred = json.loads(sys.stdin.read())
metric = evaluate.load(nertool.metric_path())
print(json.dumps(metric.compute(predictions=pred, references=gold)))
"""


def test_metric_path_is_a_file_inside_a_shipped_package() -> None:
    path = Path(nertool.metric_path())
    assert path.is_file() and path.name == "nertool_seqeval.py"
    assert path.parent == ROOT / "nertool" / "metric"
    assert "nertool.metric" in find_packages(str(ROOT), include=["nertool*"])


@pytest.mark.slow  # a fresh interpreter imports evaluate and datasets (~15 s)
def test_metric_loads_offline_and_equals_the_score_block(tmp_path: Path) -> None:
    pytest.importorskip("evaluate")
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_EVALUATE_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "HF_MODULES_CACHE": str(tmp_path / "modules"),
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(
        [sys.executable, "-c", LOAD_AND_SCORE],
        input=json.dumps([GOLD, PRED]),
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == json.loads(json.dumps(score_block(GOLD, PRED)))
    assert result["f1"] != result["strict_f1"]  # the orphan I-ORG: conlleval keeps it, strict drops it
