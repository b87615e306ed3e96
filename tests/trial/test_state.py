"""The controller's resumable state: a typed record that round-trips through a checkpoint, and that resumes the
controller dicts earlier rlvr versions wrote."""

from __future__ import annotations

import pytest
import torch

from rlvr.config.schema import CheckpointConfig
from rlvr.rewards.pool import RewardResult
from rlvr.rollout.types import Completion
from rlvr.storage import RunStorage
from rlvr.trial.checkpoint import Checkpointer
from rlvr.trial.rollouts import Rollout
from rlvr.trial.state import TrialState

BATCH = Rollout(
    [[1, 2]],
    [[Completion(0, [3, 4], [-0.5, -0.25], "34", "stop")] * 2],
    [RewardResult(1.0, True, "34"), RewardResult(0.0, False, "3")],
)
CURSOR = {"seed": 42, "epoch": 1, "pos": 12, "num_rows": 100}

# A controller dict exactly as the controller wrote it before TrialState existed (commit db0eb22).
WRITTEN_BEFORE = {
    "step": 3,
    "version": 2,
    "metrics": [{"step": 1, "reward_mean": 0.5}, {"step": 2}, {"step": 3}],
    "evals": [{"step": 0, "benchmark": "synthetic:addition", "avg_at_k": 0.25}],
    "dropped_prompts": 7,
    "data": CURSOR,
    "prefetched": BATCH,
}


def _checkpointed(tmp_path, controller: dict) -> dict:
    """``controller`` written into a real checkpoint and read back with the weights-only loader."""
    ckpts = Checkpointer(RunStorage(str(tmp_path)), CheckpointConfig(every_steps=1))
    learner = {
        "world_size": 1,
        "ranks": [
            {
                "trainable": {"w": torch.zeros(2)},
                "optimizer": {},
                "scheduler": {},
                "step": 1,
                "optimizer_steps": 1,
                "rng": torch.get_rng_state(),
                "cuda_rng": None,
            }
        ],
    }
    ckpts.save(controller["step"], learner, controller)
    return ckpts.load(controller["step"]).controller


def test_the_state_round_trips_through_a_checkpoint(tmp_path):
    state = TrialState(
        step=3,
        version=2,
        metrics=[{"step": 3, "loss": 0.1}],
        evals=[{"step": 0, "avg_at_k": 0.5}],
        dropped_prompts=4,
        data=CURSOR,
        prefetched=BATCH,
    )
    assert TrialState.from_dict(_checkpointed(tmp_path, state.to_dict())) == state


def test_a_checkpoint_written_before_the_record_resumes_and_is_written_back_unchanged(tmp_path):
    state = TrialState.from_dict(_checkpointed(tmp_path, WRITTEN_BEFORE))
    assert (state.step, state.version, state.dropped_prompts, state.data) == (3, 2, 7, CURSOR)
    assert state.prefetched == BATCH and state.evaluated_steps == {0}
    # the same keys and values: a checkpoint written now resumes with the code that wrote the old ones
    assert state.to_dict() == WRITTEN_BEFORE


def test_older_prefetch_formats_resume_a_tuple_as_the_batch_and_none_when_absent():
    as_tuple = {**WRITTEN_BEFORE, "prefetched": (BATCH.prompts, BATCH.groups, BATCH.results)}
    assert TrialState.from_dict(as_tuple).prefetched == BATCH
    before_async = {k: v for k, v in WRITTEN_BEFORE.items() if k != "prefetched"}
    assert TrialState.from_dict(before_async).prefetched is None


def test_a_foreign_controller_state_is_refused_naming_the_keys():
    foreign = {**{k: v for k, v in WRITTEN_BEFORE.items() if k != "version"}, "cursor": 3}
    with pytest.raises(
        ValueError,
        match=r"step_000003: the controller state lacks \['version'\] and has unknown keys "
        r"\['cursor'\]",
    ):
        TrialState.from_dict(foreign, "step_000003")
