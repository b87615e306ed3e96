"""A trial with two DeepSpeed learner ranks (gloo on CPU) trains, syncs and checkpoints both ranks: ZeRO-2 with
LoRA (adapter hot-swap), ZeRO-3 with every weight sharded and DoRA (merged weights gathered from both ranks)."""

from __future__ import annotations

import pytest

from rlvr.config.trial_plan import TrialPlan
from rlvr.sync.probe import probe_limits
from rlvr.trial.checkpoint import load_state_bytes
from rlvr.trial.runner import run_trial

from .trial_helpers import read_metrics, read_trainable, small_trial

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("stage,method", [(2, "lora"), (3, "dora")])
def test_deepspeed_trial_with_two_learners_runs_two_steps(local_ray, tmp_path, stage, method):
    cfg = small_trial(
        "steps=2",
        "learner.backend=deepspeed",
        f"learner.zero_stage={stage}",
        "learner.num_learners=2",
        f"method=uniform/{method}",
        "method.rank=8",
        "learner.zero3_persistence_threshold=0",
    )
    final = run_trial(cfg, str(tmp_path))
    assert final["steps_done"] == 2
    metrics = read_metrics(tmp_path)
    assert [m["step"] for m in metrics] == [1, 2]
    gap = probe_limits(cfg.rollout.probe_tolerance, cfg.model.dtype, TrialPlan.from_config(cfg).route).gap
    assert all(m["probe_gap"] <= gap for m in metrics)
    assert any(m["grad_norm"] > 0 for m in metrics)
    trainable = read_trainable(tmp_path, 2)
    assert any(v.abs().max() > 0 for k, v in trainable.items() if "lora_B" in k), "LoRA B never left its zero init"
    assert all(v.numel() > 0 for v in trainable.values()), "a sharded weight was saved without gathering it"
    state = load_state_bytes((tmp_path / "checkpoints/step_000002/state.pt").read_bytes(), "state.pt")
    assert state["learner"]["world_size"] == 2 and len(state["learner"]["ranks"]) == 2
