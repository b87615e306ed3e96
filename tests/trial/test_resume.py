"""Resuming a trial reproduces the uninterrupted run exactly (fp32 on CPU, same seed): weights and metrics."""

from __future__ import annotations

import pytest

from rlvr.trial.runner import TrialPreempted, run_trial
from trial_helpers import max_weight_gap, read_metrics, read_trainable, sigterm_self, small_trial, when_step

pytestmark = pytest.mark.slow

STEPS = 4
COMPARED = ("step", "reward_mean", "accuracy", "loss", "grad_norm", "response_len", "policy_version")


@pytest.fixture(scope="module")
def uninterrupted(local_ray, tmp_path_factory):
    trial_dir = tmp_path_factory.mktemp("uninterrupted")
    final = run_trial(small_trial(f"steps={STEPS}"), str(trial_dir))
    assert final["steps_done"] == STEPS
    return trial_dir


def assert_same_run(trial_dir, reference) -> None:
    got, want = read_metrics(trial_dir), read_metrics(reference)
    assert [m["step"] for m in got] == list(range(1, STEPS + 1))
    assert [{k: m.get(k) for k in COMPARED} for m in got] == [{k: m.get(k) for k in COMPARED} for m in want]
    assert max_weight_gap(read_trainable(trial_dir, STEPS), read_trainable(reference, STEPS)) <= 1e-6


def test_uninterrupted_run_learns_something(uninterrupted):
    """Guards the other tests of this module: with all-equal rewards nothing would change and any resume would match."""
    metrics = read_metrics(uninterrupted)
    assert any(m["loss"] != 0 for m in metrics)
    assert max_weight_gap(read_trainable(uninterrupted, 2), read_trainable(uninterrupted, STEPS)) > 0


def test_shorter_run_then_longer_run_on_same_dir_equals_uninterrupted(uninterrupted, tmp_path):
    run_trial(small_trial("steps=2"), str(tmp_path))
    assert [m["step"] for m in read_metrics(tmp_path)] == [1, 2]
    final = run_trial(small_trial(f"steps={STEPS}"), str(tmp_path))
    assert final["steps_done"] == STEPS
    assert_same_run(tmp_path, uninterrupted)


def test_sigterm_checkpoints_raises_preempted_and_rerun_resumes_exactly(uninterrupted, tmp_path):
    cfg = small_trial(f"steps={STEPS}", "checkpoint.every_steps=3")  # the SIGTERM checkpoint is an extra one
    when_step(tmp_path, 1, sigterm_self)
    with pytest.raises(TrialPreempted, match="run the trial again to resume"):
        run_trial(cfg, str(tmp_path))
    stopped = [m["step"] for m in read_metrics(tmp_path)]
    assert stopped and stopped[-1] < STEPS
    assert (tmp_path / "checkpoints" / f"step_{stopped[-1]:06d}" / "meta.json").exists()
    final = run_trial(cfg, str(tmp_path))
    assert final["steps_done"] == STEPS
    assert_same_run(tmp_path, uninterrupted)
