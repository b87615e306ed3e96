"""Dress rehearsal of a GPU trial on CPU (configs/trials/rehearsal-cpu.yaml): vLLM's engine core in its own
process, bf16 on both sides, updates in bounded buckets; one method per sync route trains with the probe
passing at every sync and without vLLM's insecure serialization."""

from __future__ import annotations

import os

import pytest

from rlvr.config.loader import load_trial
from rlvr.config.trial_plan import TrialPlan
from rlvr.sync.probe import probe_limits
from rlvr.trial.runner import run_trial

from .trial_helpers import read_metrics

pytestmark = pytest.mark.slow


# native, converted, merged
@pytest.mark.parametrize("method", ["lora", "pissa", "dora"])
def test_rehearsal_trains_each_route_with_the_probe_passing_every_step(method, local_ray, tmp_path):
    assert not os.environ.get("VLLM_ALLOW_INSECURE_SERIALIZATION")
    cfg = load_trial("rehearsal-cpu", [f"method=uniform/{method}", "steps=2", "method.rank=8"])
    assert cfg.rollout.engine_process == "separate" and cfg.model.dtype == "bfloat16"
    assert run_trial(cfg, str(tmp_path))["steps_done"] == 2
    metrics = read_metrics(tmp_path)
    tolerance = probe_limits(cfg.rollout.probe_tolerance, cfg.model.dtype, TrialPlan.from_config(cfg).route).gap
    assert [m["step"] for m in metrics] == [1, 2]
    assert all(0 < m["probe_gap"] <= tolerance for m in metrics)
