"""RL works: GRPO-family training with LoRA raises the tiny base's held-out accuracy within fifteen steps."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from rlvr.config.loader import load_trial
from rlvr.trial.runner import run_trial

pytestmark = pytest.mark.slow

# The demo trial cut to 15 steps. Its own held-out evaluation (128 problems x 4 samples at temperature 0.7)
# measures the shipped base at step 0 and the policy at the end, so the test needs no assumption about the base.
# The bar comes from measured spread (benchmarks/RESULTS.md, "Learning spread"; bench_learning.py --seeds):
# MEASURED
GAIN_BAR = 0.08


def _avg_at_k(trial_dir) -> dict[int, float]:
    rows = pq.read_table(f"{trial_dir}/eval/summary.parquet").to_pylist()
    return {r["step"]: r["avg_at_k"] for r in rows if r["benchmark"] == "synthetic:addition"}


def test_grpo_lora_raises_heldout_accuracy(local_ray, tmp_path):
    cfg = load_trial("demo-cpu", ["steps=15", "checkpoint.every_steps=15"])
    run_trial(cfg, str(tmp_path))
    accuracy = _avg_at_k(tmp_path)
    before, after = accuracy[0], accuracy[15]
    assert after - before > GAIN_BAR, f"held-out avg@4 {before:.3f} -> {after:.3f}: below the bar of +{GAIN_BAR}"
