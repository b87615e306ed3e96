"""``TrialState``: what the controller needs to resume a trial beyond the learners' own state.

The record is stored in a checkpoint's ``state.pt`` as a plain dict of builtins and the batch classes
``rlvr.trial.checkpoint.STATE_CLASSES`` allows, never as this class: the weights-only loader reads it without
trusting any code path, and checkpoints written before the record existed (the same keys, an async batch stored as a
tuple by older versions, or no ``prefetched`` key at all) resume unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from rlvr.trial.rollouts import Rollout


@dataclass
class TrialState:
    """The controller's resumable state; ``data`` is the training set's cursor (``TrainSet.state()``) as of the
    last checkpoint (the live cursor is the ``TrainSet``'s own)."""

    step: int = 0  # updates done
    version: int = 0  # policy version the engines serve (one per non-empty update)
    metrics: list[dict[str, Any]] = field(default_factory=list)  # one row per step (metrics.jsonl)
    evals: list[dict[str, Any]] = field(default_factory=list)  # one row per (step, benchmark) evaluated
    dropped_prompts: int = 0  # over-long prompts skipped over the trial
    data: dict[str, Any] | None = None
    prefetched: Rollout | None = None  # async_rollout: the next step's batch, made by the previous policy

    @property
    def evaluated_steps(self) -> set[int]:
        return {e["step"] for e in self.evals}

    def to_dict(self) -> dict[str, Any]:
        """The dict a checkpoint stores (the same keys every rlvr version wrote)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, saved: dict[str, Any], where: str = "checkpoint") -> TrialState:
        """The record a checkpoint's controller dict describes, in any format rlvr has written."""
        names = {f.name for f in fields(cls)}
        missing = sorted(names - {"prefetched"} - saved.keys())  # prefetched: absent before async rollouts existed
        unknown = sorted(saved.keys() - names)
        if missing or unknown:
            raise ValueError(
                f"{where}: the controller state lacks {missing} and has unknown keys {unknown}, so "
                "neither this rlvr version nor an older one wrote it; resume it with the version that did"
            )
        state = cls(**saved)
        if isinstance(state.prefetched, tuple):  # written before the batch was a Rollout
            state.prefetched = Rollout(*state.prefetched)
        return state
