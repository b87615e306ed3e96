"""benchmarks/gpu_learner.py, the script left ready for a GPU machine, runs end to end in its CPU --tiny mode, and
the plan numbers it ships for the GPU machine (no pydantic there) are the ones `rlvr plan` computes now."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
import gpu_learner  # noqa: E402


@pytest.mark.slow  # ~20 s idle; minutes on a loaded machine
def test_gpu_learner_tiny_mode_writes_a_row_per_method_and_length_on_padded_micro_batches(tmp_path):
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks/gpu_learner.py"), "--tiny", "--steps", "1", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads((tmp_path / "gpu_learner.json").read_text())
    rows = result["rows"]
    assert [(r["method"], r["completion"]) for r in rows] == [
        (m, c) for m in ("lora", "dora", "pissa", "full") for c in (32, 96)
    ]
    for r in rows:
        # right padding, as training collates: fewer real tokens than padded ones, within the token budget
        assert 0 < r["tokens"] < r["padded_tokens"] <= result["budget"] and r["tokens_per_s"] > 0 and r["plan_gib"] > 0
    assert "| full | 96 |" in (tmp_path / "gpu_learner.md").read_text()


def test_the_shipped_plan_numbers_are_rlvr_plans_for_the_real_shape():
    shipped = json.loads(gpu_learner.PLAN_FILE.read_text())
    assert shipped["shape"] == gpu_learner.REAL, "run: python benchmarks/gpu_learner.py --write-plan"
    assert shipped["plans"] == gpu_learner.plans(gpu_learner.real_arch(), gpu_learner.REAL), (
        "run: python benchmarks/gpu_learner.py --write-plan"
    )
    assert set(shipped["plans"]) == {f"{m}@{c}" for m in gpu_learner.METHODS for c in gpu_learner.REAL["lengths"]}
