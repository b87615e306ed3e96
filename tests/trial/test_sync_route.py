"""rollout.sync_route: a native-route method served through merged weights trains and passes the probe."""

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
