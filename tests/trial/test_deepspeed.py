"""A trial with two DeepSpeed ZeRO-2 learner ranks (gloo on CPU) trains, syncs and checkpoints both ranks."""

from __future__ import annotations

import io

import pytest
import torch

from rlvr.trial.runner import run_trial
from trial_helpers import read_metrics, read_trainable, small_trial

pytestmark = pytest.mark.slow


def test_zero2_trial_with_two_learners_runs_two_steps(local_ray, tmp_path):
    cfg = small_trial("steps=2", "learner.backend=deepspeed", "learner.zero_stage=2", "learner.num_learners=2")
    final = run_trial(cfg, str(tmp_path))
    assert final["steps_done"] == 2
    metrics = read_metrics(tmp_path)
    assert [m["step"] for m in metrics] == [1, 2]
    assert all(m["probe_gap"] <= cfg.rollout.probe_tolerance for m in metrics)
    assert any(m["grad_norm"] > 0 for m in metrics)
    trainable = read_trainable(tmp_path, 2)
    assert any(v.abs().max() > 0 for k, v in trainable.items() if "lora_B" in k), "LoRA B never left its zero init"
    state = torch.load(io.BytesIO((tmp_path / "checkpoints/step_000002/state.pt").read_bytes()), weights_only=False)
    assert state["learner"]["world_size"] == 2 and len(state["learner"]["ranks"]) == 2
