"""The trial's schedule: when it evaluates, checkpoints and stops, decided by pure functions of the step."""

from __future__ import annotations

import pytest

from rlvr.trial.schedule import checkpoint_due, eval_due, final_eval_due, preempt, start_eval_due


def _after_each_step(steps: int, decide) -> list[int]:
    """The steps (1..steps) after which ``decide(step)`` is true."""
    return [s for s in range(1, steps + 1) if decide(s)]


@pytest.mark.parametrize(
    "step, at_start, evaluated, due",
    [
        (0, True, set(), True),
        (0, False, set(), False),
        (0, True, {0}, False),  # resumed before the first step: step 0 was evaluated already
        (2, True, set(), False),  # resumed mid-run: the initial policy is gone
    ],
)
def test_the_initial_policy_is_evaluated_once_and_only_before_the_first_update(step, at_start, evaluated, due):
    assert start_eval_due(step, at_start, evaluated) is due


def test_periodic_evaluation_every_n_steps_leaves_the_last_step_to_the_final_one():
    assert _after_each_step(7, lambda s: eval_due(s, 7, 2)) == [2, 4, 6]
    assert _after_each_step(6, lambda s: eval_due(s, 6, 2)) == [2, 4]
    assert _after_each_step(6, lambda s: eval_due(s, 6, 0)) == []


def test_the_final_evaluation_is_skipped_only_when_that_step_was_evaluated():
    assert final_eval_due(6, {0, 2, 4})
    assert not final_eval_due(6, {0, 6})  # a finished trial run again


def test_checkpoints_every_n_steps_and_at_the_last():
    assert _after_each_step(7, lambda s: checkpoint_due(s, 7, 3, False)) == [3, 6, 7]
    assert _after_each_step(4, lambda s: checkpoint_due(s, 4, 64, False)) == [4]


def test_a_stop_request_forces_a_checkpoint_then_stops_unless_the_trial_is_done():
    assert checkpoint_due(5, 7, 3, True) and preempt(5, 7, True)
    assert checkpoint_due(7, 7, 3, True) and not preempt(7, 7, True)
    assert not any(preempt(s, 7, False) for s in range(1, 8))
