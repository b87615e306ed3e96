"""benchmarks/gpu_learner.py, the script left ready for a GPU machine, runs end to end in its CPU --tiny mode."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow  # ~10 s idle; minutes on a loaded machine
def test_gpu_learner_tiny_mode_writes_a_row_per_method_and_length(tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks/gpu_learner.py"), "--tiny", "--steps", "1", "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    rows = json.loads((tmp_path / "gpu_learner.json").read_text())["rows"]
    assert [(r["method"], r["completion"]) for r in rows] == [(m, c) for m in ("lora r32", "full FT") for c in (64, 128, 256)]
    for r in rows:
        assert r["tokens_per_s"] > 0 and r["tokens"] <= 2048 and r["planned_gib"] > 0
    assert "| full FT | 256 |" in (tmp_path / "gpu_learner.md").read_text()
