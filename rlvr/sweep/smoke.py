"""A stand-in trial for smoke-testing a cluster and the sweep machinery without models or GPUs.

``smoke_trial`` keeps run_trial's contract (resume from the newest checkpoint in the trial directory,
checkpoint and raise TrialPreempted on SIGTERM, return final metrics) but its "training" is a sleep per step.
Its checkpoint records every step ever applied, so a test can prove that across crashes, retries and
resumes no step was lost or applied twice. Submit it on a new cluster with
``ray_jobs/sweep.py CONFIG --trial-fn rlvr.sweep.smoke:smoke_trial`` to check placement, retries and storage.

Knobs (environment, since the trial contract has no place for them): RLVR_SMOKE_STEP_S seconds per step
(default 0.05); RLVR_SMOKE_FAIL_AT=N raises once at step N, in the first attempt only.
"""

from __future__ import annotations

import os
import signal
import time

from rlvr.config.layout import TrialLayout
from rlvr.config.schema import TrialConfig
from rlvr.errors import TrialPreempted
from rlvr.storage import RunStorage


def _checkpoint(storage: RunStorage, applied: list[int]) -> str:
    storage.write_json("checkpoint.json", {"step": len(applied), "applied": applied})
    return storage.uri_of("checkpoint.json")


def smoke_trial(cfg: TrialConfig, trial_dir: str, step_s: float | None = None, fail_at: int | None = None) -> dict:
    """Knobs given as arguments (functools.partial) win over the environment."""
    storage = RunStorage(trial_dir)
    state = storage.read_json("checkpoint.json") or {"applied": []}
    applied: list[int] = state["applied"]
    step_s = float(os.environ.get("RLVR_SMOKE_STEP_S", "0.05")) if step_s is None else step_s
    fail_at = int(os.environ.get("RLVR_SMOKE_FAIL_AT", "0")) if fail_at is None else fail_at
    first_attempt = not storage.exists("smoke-started")
    storage.write_bytes("smoke-started", b"")
    checkpoint = None
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    for step in range(len(applied) + 1, cfg.steps + 1):
        if stop:
            checkpoint = _checkpoint(storage, applied)
            storage.write_json(
                TrialLayout.PROGRESS,
                {"step": len(applied), "reward": len(applied) / cfg.steps, "checkpoint": checkpoint},
            )
            raise TrialPreempted(f"stopped at step {len(applied)}; checkpoint {checkpoint}")
        if first_attempt and step == fail_at:
            raise RuntimeError(f"injected failure at step {step} (RLVR_SMOKE_FAIL_AT)")
        time.sleep(step_s)
        applied.append(step)
        reward = step / cfg.steps
        if step % cfg.checkpoint.every_steps == 0 or step == cfg.steps:
            checkpoint = _checkpoint(storage, applied)
        storage.write_json(TrialLayout.PROGRESS, {"step": step, "reward": reward, "checkpoint": checkpoint})
    return {"final_reward": len(applied) / cfg.steps, "steps_done": len(applied), "applied": applied}
