"""A trial's checkpoints: the one place state that must survive is written and read back.

Layout (``rlvr.config.layout.TrialLayout``): ``checkpoints/step_<N:06d>/`` with ``trainable.safetensors`` (the
policy beyond the pristine base, what eval and analysis read), ``state.pt`` (learner optimizer/scheduler/RNG of
every rank, and the controller's ``TrialState``: data cursor, policy version, metrics so far, any prefetched batch) and
``meta.json``, written last: a checkpoint without meta.json is incomplete and ignored everywhere, so a crash while
writing one never corrupts the run. meta.json holds the sha256 of ``trainable.safetensors``; ``read_trainable``
checks it, so a file damaged or replaced after the fact is refused, not trained on, evaluated or exported.

``state.pt`` is read with torch's weights-only unpickler: a checkpoint in a shared bucket is read by every node
that resumes from it, and a full unpickle would run whatever code a crafted file names. Only the classes rlvr's
own states contain are allowed (``STATE_CLASSES``); a file naming anything else is refused.
"""

from __future__ import annotations

import hashlib
import io
import time
from dataclasses import dataclass
from typing import Any

from rlvr.config.layout import TrialLayout as L
from rlvr.config.schema import CheckpointConfig
from rlvr.storage import RunStorage

# Every class a state.pt of rlvr's holds beyond tensors and builtins: the prefetched batch of async rollouts,
# and DeepSpeed's optimizer state (its loss scaler, ZeRO stage and fragment addresses).
STATE_CLASSES = (
    "rlvr.trial.rollouts.Rollout",
    "rlvr.rollout.types.Completion",
    "rlvr.rewards.pool.RewardResult",
    "deepspeed.runtime.fp16.loss_scaler.LossScaler",
    "deepspeed.runtime.zero.config.ZeroStageEnum",
    "deepspeed.utils.tensor_fragment.fragment_address",
)


class UnsafeCheckpoint(ValueError):
    """A state file names code that rlvr's own checkpoints never contain."""


class CorruptCheckpoint(ValueError):
    """A checkpoint that is incomplete, or whose weights are not the ones it was saved with."""


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_trainable(storage: RunStorage, step: int) -> bytes:
    """The ``trainable.safetensors`` bytes of the checkpoint at ``step``, refused unless the checkpoint is complete
    and the bytes have the digest its meta.json recorded (checkpoints written before digests were recorded have
    none to check)."""
    where = storage.uri_of(L.checkpoint(step))
    meta = storage.read_json(L.checkpoint(step, L.COMPLETE))
    if meta is None:
        raise CorruptCheckpoint(
            f"{where}: no {L.COMPLETE}, so the checkpoint is incomplete (its writer stopped "
            f"mid-way); use another step (complete ones: {L.checkpoint_steps(storage) or 'none'})"
        )
    data = storage.read_bytes(L.checkpoint(step, L.TRAINABLE))
    if data is None:
        raise CorruptCheckpoint(
            f"{where}: {L.TRAINABLE} is missing although {L.COMPLETE} exists; the folder was "
            "damaged after it was written; use another step"
        )
    want = meta.get("trainable_sha256")
    if want is not None and _digest(data) != want:
        raise CorruptCheckpoint(
            f"{where}: {L.TRAINABLE} has sha256 {_digest(data)[:12]}..., not the {want[:12]}... "
            f"recorded in {L.COMPLETE}; the file changed after the checkpoint was written; use "
            "another step"
        )
    return data


def load_state_bytes(data: bytes, where: str) -> Any:
    """Unpickle a state.pt with the weights-only loader, allowing only ``STATE_CLASSES``."""
    import importlib

    import torch

    named = set(torch.serialization.get_unsafe_globals_in_checkpoint(io.BytesIO(data)))
    foreign = sorted(named - set(STATE_CLASSES))
    if foreign:
        raise UnsafeCheckpoint(
            f"{where}: names {foreign}, which rlvr never writes into a checkpoint; refusing to unpickle it (it could "
            "run code). Resume only from checkpoints rlvr wrote, or delete this checkpoint folder to use an older one"
        )
    allowed = []
    for name in named:
        module, _, attr = name.rpartition(".")
        allowed.append(getattr(importlib.import_module(module), attr))
    with torch.serialization.safe_globals(allowed):
        return torch.load(io.BytesIO(data), weights_only=True)


@dataclass
class Checkpoint:
    step: int
    learner: dict[str, Any]
    controller: dict[str, Any]
    path: str


class Checkpointer:
    def __init__(self, storage: RunStorage, cfg: CheckpointConfig):
        self.storage, self.cfg = storage, cfg

    def steps(self) -> list[int]:
        """Steps of the complete checkpoints, oldest first."""
        return L.checkpoint_steps(self.storage)

    def save(self, step: int, learner_state: dict[str, Any], controller_state: dict[str, Any]) -> str:
        import safetensors.torch
        import torch

        ranks = learner_state["ranks"]
        trainable = {k: v.contiguous() for k, v in ranks[0]["trainable"].items()}
        rest = {
            "world_size": learner_state["world_size"],
            "ranks": [{k: v for k, v in r.items() if k != "trainable"} for r in ranks],
        }
        buf = io.BytesIO()
        torch.save({"learner": rest, "controller": controller_state}, buf)
        weights = safetensors.torch.save(trainable)
        self.storage.write_bytes(L.checkpoint(step, L.TRAINABLE), weights)
        self.storage.write_bytes(L.checkpoint(step, L.STATE), buf.getvalue())
        self.storage.write_json(
            L.checkpoint(step, L.COMPLETE),
            {"step": step, "saved_at": time.time(), "trainable_sha256": _digest(weights)},
        )
        self._prune()
        return self.storage.uri_of(L.checkpoint(step))

    def load_latest(self) -> Checkpoint | None:
        steps = self.steps()
        return self.load(steps[-1]) if steps else None

    def load(self, step: int) -> Checkpoint:
        import safetensors.torch

        trainable = safetensors.torch.load(read_trainable(self.storage, step))
        state_file = L.checkpoint(step, L.STATE)
        state = load_state_bytes(self.storage.read_bytes(state_file), self.storage.uri_of(state_file))
        learner = state["learner"]
        learner["ranks"][0]["trainable"] = trainable
        return Checkpoint(step, learner, state["controller"], self.storage.uri_of(L.checkpoint(step)))

    def _prune(self) -> None:
        """Keep the newest ``keep_last`` checkpoints and those asked for analysis."""
        steps = self.steps()
        keep = set(steps[-self.cfg.keep_last :]) | set(self.cfg.analysis_steps)
        for step in steps:
            if step not in keep:
                self.storage.fs.delete_dir(self.storage.path(L.checkpoint(step)))
