"""A failed post-sync probe stops the trial with StaleEngineError (it is not retried like a dead actor)."""

from __future__ import annotations

import pytest

from rlvr.sync.probe import StaleEngineError
from rlvr.trial.runner import run_trial

from .trial_helpers import small_trial

pytestmark = pytest.mark.slow


def test_probe_beyond_tolerance_stops_the_trial_with_a_clear_error(local_ray, tmp_path):
    # fp32 engine and learner agree to ~1e-6..1e-5 on the probe, never to 1e-12: the probe fails at the first
    # sync, and the trial must stop there (no retry, no step) instead of training on off-policy samples.
    cfg = small_trial("steps=2", "rollout.probe_tolerance=1e-12")
    with pytest.raises(StaleEngineError, match=r"engine log-probs differ from the learner's .*tolerance 1e-12"):
        run_trial(cfg, str(tmp_path))
    assert "Traceback (most recent call last)" in (tmp_path / "trial.log").read_text()
    assert not (tmp_path / "metrics.jsonl").exists() and not (tmp_path / "checkpoints").exists()


def test_the_command_line_says_it_in_one_paragraph_and_the_trial_log_keeps_the_traceback(tmp_path):
    import os
    import subprocess
    import sys

    from .trial_helpers import SMALL

    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "COLUMNS": "80"}
    args = [
        sys.executable,
        "-m",
        "rlvr.cli",
        "train",
        "demo-cpu",
        *SMALL,
        "steps=2",
        "rollout.probe_tolerance=1e-12",
        f"output_dir={tmp_path}",
    ]
    out = subprocess.run(args, capture_output=True, text=True, timeout=600, env=env)
    assert out.returncode == 1, out.stderr[-3000:]
    paragraph = out.stderr[out.stderr.index("error: StaleEngineError") :]
    assert "rollout.probe_tolerance" in paragraph and "Traceback" not in out.stderr and "╭" not in out.stderr
    log = tmp_path / "demo-cpu" / "trial.log"
    assert str(log) in paragraph and "Traceback (most recent call last)" in log.read_text()
    assert "StaleEngineError" in log.read_text()
