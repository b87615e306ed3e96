"""Resuming a trial reproduces the uninterrupted run exactly (fp32 on CPU, same seed): weights and metrics."""

from __future__ import annotations

import shutil
import signal

import pytest

from rlvr.trial.runner import TrialPreempted, run_trial

from .trial_helpers import (
    STEPS,
    assert_same_run,
    max_weight_gap,
    read_metrics,
    read_trainable,
    sigterm_self,
    small_trial,
    two_step_trial,
    when_step,
)

pytestmark = pytest.mark.slow


def test_uninterrupted_run_changes_the_weights(uninterrupted):
    """Guards the other comparisons: with all-equal rewards nothing would change and any resume would match."""
    metrics = read_metrics(uninterrupted)
    assert any(m["grad_norm"] > 0 for m in metrics)
    assert max_weight_gap(read_trainable(uninterrupted, 2), read_trainable(uninterrupted, STEPS)) > 0


def test_shorter_run_then_longer_run_on_same_dir_equals_uninterrupted(uninterrupted, cold_run, tmp_path):
    # The shorter run is the session's cold 2-step LoRA run (tests/conftest.py), the same trial: a copy of its dir.
    assert two_step_trial("lora") == small_trial("steps=2")
    shutil.copytree(cold_run("lora"), tmp_path, dirs_exist_ok=True)
    assert [m["step"] for m in read_metrics(tmp_path)] == [1, 2]
    final = run_trial(small_trial(), str(tmp_path))
    assert final["steps_done"] == STEPS
    assert_same_run(tmp_path, uninterrupted)


def test_sigterm_checkpoints_raises_preempted_and_rerun_resumes_exactly(uninterrupted, tmp_path):
    cfg = small_trial("checkpoint.every_steps=3")  # so the checkpoint SIGTERM forces is one the schedule would skip
    # A signal that lands after run_trial has put the handler back must not kill the test session.
    outside = signal.signal(signal.SIGTERM, lambda *_: None)
    try:
        when_step(tmp_path, 1, sigterm_self)
        with pytest.raises(TrialPreempted, match="run the trial again to resume"):
            run_trial(cfg, str(tmp_path))
    finally:
        signal.signal(signal.SIGTERM, outside)
    stopped = [m["step"] for m in read_metrics(tmp_path)]
    assert stopped and stopped[-1] < STEPS
    assert (tmp_path / "checkpoints" / f"step_{stopped[-1]:06d}" / "meta.json").exists()
    final = run_trial(cfg, str(tmp_path))
    assert final["steps_done"] == STEPS
    assert_same_run(tmp_path, uninterrupted)
