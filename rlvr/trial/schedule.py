"""A trial's schedule: when it evaluates, checkpoints and stops, as pure functions of the step.

``step`` is the number of updates done (0 before the first), ``steps`` the trial's length (``cfg.steps``).
The controller's loop (rlvr.trial.controller.TrialController.run_loop) asks these after every step, in this order:
eval, checkpoint, preemption; ``stop_requested`` (SIGTERM) is read once per step, so a checkpoint forced by it and
the preemption that follows agree.
"""

from __future__ import annotations

from collections.abc import Collection


def start_eval_due(step: int, at_start: bool, evaluated: Collection[int]) -> bool:
    """Evaluate the initial policy (eval.at_start) before the first update, unless a resumed trial already did."""
    return step == 0 and at_start and 0 not in evaluated


def eval_due(step: int, steps: int, every_steps: int) -> bool:
    """The periodic evaluation after ``step`` (eval.every_steps; 0: none); the last step's is ``final_eval_due``."""
    return bool(every_steps) and step % every_steps == 0 and step < steps


def final_eval_due(step: int, evaluated: Collection[int]) -> bool:
    """Evaluate the final policy, unless this step was evaluated already (a finished trial run again)."""
    return step not in evaluated


def checkpoint_due(step: int, steps: int, every_steps: int, stop_requested: bool) -> bool:
    """Checkpoint every ``every_steps`` (checkpoint.every_steps), at the last step, and before a preemption."""
    return step % every_steps == 0 or step == steps or stop_requested


def preempt(step: int, steps: int, stop_requested: bool) -> bool:
    """Stop here (after the checkpoint ``checkpoint_due`` forced) rather than train on: the trial was asked to stop
    and has steps left; a trial asked to stop at its last step just finishes."""
    return stop_requested and step < steps
