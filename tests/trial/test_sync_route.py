"""rollout.sync_route: a method served along a route other than its own (merged weights, or the shared export
as a LoRA on the original base) trains and passes the probe."""

from __future__ import annotations

import pytest

from .trial_helpers import read_metrics, small_trial


@pytest.mark.slow
def test_lora_served_as_merged_weights_passes_the_probe(local_ray, tmp_path):
    from rlvr.trial.runner import run_trial

    final = run_trial(small_trial("steps=2", "checkpoint.every_steps=2", "rollout.sync_route=merged"), str(tmp_path))
    assert final["steps_done"] == 2
    metrics = read_metrics(tmp_path)
    assert [m["policy_version"] for m in metrics] == [1, 2]
    assert all(m["probe_gap"] is not None and m["probe_gap"] < 1e-3 for m in metrics)


@pytest.mark.slow
def test_pissa_served_as_its_shared_export_on_the_original_base_passes_the_probe(local_ray, tmp_path):
    # rollout.sync_route=native: the rank-2r LoRA [s B, -s B0][A; A0] on the untouched base (what a shared batch
    # serves); a base left residual, or the initial factors left out, would put the engine off the learner
    from rlvr.trial.runner import run_trial

    cfg = small_trial("method.name=pissa", "steps=2", "checkpoint.every_steps=2", "rollout.sync_route=native")
    final = run_trial(cfg, str(tmp_path))
    assert final["steps_done"] == 2
    metrics = read_metrics(tmp_path)
    assert [m["policy_version"] for m in metrics] == [1, 2]
    assert all(m["probe_gap"] is not None and m["probe_gap"] < 1e-3 for m in metrics)
