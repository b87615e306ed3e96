"""A trial whose engine, reward or learner actor dies mid-run restores from its last checkpoint and finishes
as if nothing had happened: no step lost or repeated, and the same weights as the uninterrupted run."""

from __future__ import annotations

import logging
import os
import signal
import threading

import pytest

from rlvr.trial.runner import run_trial

from .trial_helpers import actor_pids, assert_same_run, small_trial, when_step

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("actor_class", ["RolloutWorker", "RewardWorker", "LearnerActor"])
def test_killed_actor_is_rebuilt_from_checkpoint_and_trial_finishes(actor_class, uninterrupted, tmp_path, caplog):
    killed: list[int] = []

    def kill():
        killed.extend(actor_pids(actor_class))
        for pid in killed:
            os.kill(pid, signal.SIGKILL)

    watcher = when_step(tmp_path, 2, kill)  # checkpoint.every_steps=2: step 2 is on disk when progress says 2
    result: dict = {}
    # In a thread, as under the sweep scheduler: run_trial installs no SIGTERM handler there.
    runner = threading.Thread(target=lambda: result.update(final=run_trial(small_trial(), str(tmp_path))))
    with caplog.at_level(logging.WARNING, logger="rlvr.trial"):
        runner.start()
        runner.join(timeout=600)
    watcher.join(timeout=1)
    assert killed, f"no {actor_class} process of this test's Ray was found to kill"
    assert result["final"]["steps_done"] == 4
    assert any("trial_actor_failed" in r.getMessage() for r in caplog.records)
    assert_same_run(tmp_path, uninterrupted)
