"""Checkpoints read back exactly what was written, and a crafted state file cannot run code on load."""

from __future__ import annotations

import io
import pickle

import numpy as np
import pytest
import torch

from rlvr.config.schema import CheckpointConfig
from rlvr.rewards.pool import RewardResult
from rlvr.rollout.types import Completion
from rlvr.storage import RunStorage
from rlvr.trial.checkpoint import Checkpointer, CorruptCheckpoint, UnsafeCheckpoint, read_trainable


def _learner_state() -> dict:
    params = [torch.nn.Parameter(torch.randn(3, 2))]
    opt = torch.optim.AdamW(params, lr=1e-3)
    params[0].grad = torch.ones(3, 2)
    opt.step()
    return {
        "world_size": 1,
        "ranks": [
            {
                "trainable": {"w": params[0].detach().clone()},
                "optimizer": opt.state_dict(),
                "scheduler": {"last_epoch": 3},
                "step": 3,
                "optimizer_steps": 3,
                "rng": torch.get_rng_state(),
                "cuda_rng": None,
            }
        ],
    }


def test_state_round_trips_through_the_weights_only_loader(tmp_path):
    batch = ([[1, 2]], [[Completion(0, [3, 4], [-0.5, -0.25], "34", "stop")]], [[RewardResult(1.0, True, "34")]], 0)
    controller = {
        "step": 3,
        "version": 3,
        "metrics": [{"step": 1, "reward_mean": float(np.float64(0.5))}],
        "data": {"seed": 1, "epoch": 0, "pos": 12, "num_rows": 100},
        "prefetched": batch,
    }
    ckpts = Checkpointer(RunStorage(str(tmp_path)), CheckpointConfig(every_steps=1))
    learner = _learner_state()
    ckpts.save(3, learner, controller)
    got = ckpts.load(3)
    assert got.controller == controller
    rank = got.learner["ranks"][0]
    assert torch.equal(rank["rng"], learner["ranks"][0]["rng"]) and torch.equal(
        rank["trainable"]["w"], learner["ranks"][0]["trainable"]["w"]
    )
    assert torch.equal(
        rank["optimizer"]["state"][0]["exp_avg"], learner["ranks"][0]["optimizer"]["state"][0]["exp_avg"]
    )


class _RunsCode:
    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def test_a_crafted_state_file_is_refused_without_running_it(tmp_path):
    ckpts = Checkpointer(RunStorage(str(tmp_path / "trial")), CheckpointConfig(every_steps=1))
    ckpts.save(1, _learner_state(), {"step": 1})
    marker = tmp_path / "pwned"
    payload = _RunsCode()
    payload.marker = marker
    buf = io.BytesIO()
    torch.save({"learner": {"world_size": 1, "ranks": [{}]}, "controller": payload}, buf)
    (tmp_path / "trial/checkpoints/step_000001/state.pt").write_bytes(buf.getvalue())
    with pytest.raises(UnsafeCheckpoint, match=r"names \['posix.system'\].*refusing to unpickle"):
        ckpts.load(1)
    assert not marker.exists()
    # the same file through a plain unpickle would have run the command: the test's payload is real
    pickle.loads(pickle.dumps(payload))
    assert marker.exists()


def test_a_checkpoint_whose_weights_changed_after_saving_is_refused(tmp_path):
    ckpts = Checkpointer(RunStorage(str(tmp_path)), CheckpointConfig(every_steps=1))
    ckpts.save(2, _learner_state(), {"step": 2})
    weights = tmp_path / "checkpoints/step_000002/trainable.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1  # one bit of one weight
    weights.write_bytes(bytes(data))
    with pytest.raises(CorruptCheckpoint, match=r"has sha256 .* not the .* recorded in meta.json"):
        ckpts.load(2)


def test_a_checkpoint_without_meta_json_is_refused_as_incomplete(tmp_path):
    storage = RunStorage(str(tmp_path))
    Checkpointer(storage, CheckpointConfig(every_steps=1)).save(2, _learner_state(), {"step": 2})
    (tmp_path / "checkpoints/step_000002/meta.json").unlink()
    with pytest.raises(CorruptCheckpoint, match=r"no meta.json, so the checkpoint is incomplete.*complete ones: none"):
        read_trainable(storage, 2)
