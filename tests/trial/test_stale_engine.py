"""A failed post-sync probe stops the trial with StaleEngineError (it is not retried like a dead actor)."""

from __future__ import annotations

import pytest

from rlvr.sync.probe import StaleEngineError
from rlvr.trial.runner import run_trial
from trial_helpers import small_trial

pytestmark = pytest.mark.slow


def test_probe_beyond_tolerance_stops_the_trial_with_a_clear_error(local_ray, tmp_path):
    # fp32 engine and learner agree to ~1e-6..1e-5 on the probe, never to 1e-12: the probe fails at the first
    # sync, and the trial must stop there (no retry, no step) instead of training on off-policy samples.
    cfg = small_trial("steps=2", "rollout.probe_tolerance=1e-12")
    with pytest.raises(StaleEngineError, match=r"engine log-probs differ from the learner's .*tolerance 1e-12"):
        run_trial(cfg, str(tmp_path))
    assert not (tmp_path / "metrics.jsonl").exists() and not (tmp_path / "checkpoints").exists()
