"""A trial's checkpoints: the one place state that must survive is written and read back.

Layout: ``checkpoints/step_<N:06d>/`` with ``trainable.safetensors`` (the policy beyond the pristine base, what
analysis reads), ``state.pt`` (learner optimizer/scheduler/RNG of every rank, the controller's data cursor,
policy version and metrics so far) and ``meta.json``, written last: a checkpoint without meta.json is
incomplete and ignored, so a crash while writing one never corrupts the run.
"""

from __future__ import annotations

import io
import re
import time
from dataclasses import dataclass
from typing import Any

import pyarrow.fs as pafs

from rlvr.config.schema import CheckpointConfig
from rlvr.storage import RunStorage

_STEP_DIR = re.compile(r"^step_(\d{6})$")


@dataclass
class Checkpoint:
    step: int
    learner: dict[str, Any]
    controller: dict[str, Any]
    path: str


def _folder(step: int) -> str:
    return f"checkpoints/step_{step:06d}"


class Checkpointer:
    def __init__(self, storage: RunStorage, cfg: CheckpointConfig):
        self.storage, self.cfg = storage, cfg

    def steps(self) -> list[int]:
        """Steps of the complete checkpoints, oldest first."""
        selector = pafs.FileSelector(self.storage.path("checkpoints"), allow_not_found=True)
        found = []
        for info in self.storage.fs.get_file_info(selector):
            m = _STEP_DIR.match(info.base_name)
            if info.type == pafs.FileType.Directory and m and self.storage.exists(f"checkpoints/{info.base_name}/meta.json"):
                found.append(int(m.group(1)))
        return sorted(found)

    def save(self, step: int, learner_state: dict[str, Any], controller_state: dict[str, Any]) -> str:
        import safetensors.torch
        import torch

        folder = _folder(step)
        ranks = learner_state["ranks"]
        trainable = {k: v.contiguous() for k, v in ranks[0]["trainable"].items()}
        rest = {"world_size": learner_state["world_size"], "ranks": [{k: v for k, v in r.items() if k != "trainable"} for r in ranks]}
        buf = io.BytesIO()
        torch.save({"learner": rest, "controller": controller_state}, buf)
        self.storage.write_bytes(f"{folder}/trainable.safetensors", safetensors.torch.save(trainable))
        self.storage.write_bytes(f"{folder}/state.pt", buf.getvalue())
        self.storage.write_json(f"{folder}/meta.json", {"step": step, "saved_at": time.time()})
        self._prune()
        return self.storage.uri_of(folder)

    def load_latest(self) -> Checkpoint | None:
        steps = self.steps()
        return self.load(steps[-1]) if steps else None

    def load(self, step: int) -> Checkpoint:
        import safetensors.torch
        import torch

        folder = _folder(step)
        trainable = safetensors.torch.load(self.storage.read_bytes(f"{folder}/trainable.safetensors"))
        state = torch.load(io.BytesIO(self.storage.read_bytes(f"{folder}/state.pt")), weights_only=False)
        learner = state["learner"]
        learner["ranks"][0]["trainable"] = trainable
        return Checkpoint(step, learner, state["controller"], self.storage.uri_of(folder))

    def _prune(self) -> None:
        """Keep the newest ``keep_last`` checkpoints and those asked for analysis."""
        steps = self.steps()
        keep = set(steps[-self.cfg.keep_last :]) | set(self.cfg.analysis_steps)
        for step in steps:
            if step not in keep:
                self.storage.fs.delete_dir(self.storage.path(_folder(step)))
