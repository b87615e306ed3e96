"""How a trial's controller moves the learner's policy into its engines: one strategy per transport, picked from
the trial plan's (rlvr.config.transport.choose_transport decides it; ``weight_sync`` only builds it).

Both strategies answer ``push(version, include_base, timed)``; the controller probes the engines afterwards
whichever carried the update, so a transport that delivers the wrong weights fails the sync the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from rlvr.config.schema import RolloutConfig
from rlvr.config.transport import Transport
from rlvr.config.trial_plan import TrialPlan
from rlvr.sync.buckets import bucket_bytes

Timed = Callable[[str], AbstractContextManager]


class BucketedSync:
    """The learner exports a PolicyUpdate (bytes); the engines stage and reload it (rlvr.sync.buckets). Every
    route and platform: the fallback, and the CPU rehearsal of every trial."""

    def __init__(self, learner: Any, engines: Any):
        self.learner, self.engines = learner, engines

    def push(self, version: int, include_base: bool, timed: Timed) -> None:
        with timed("t_export"):
            update = self.learner.export(version, include_base)
        with timed("t_load"):
            self.engines.load_policy(update)

    def close(self) -> None:
        pass


class TransferSync:
    """vLLM's weight transfer (NCCL or CUDA IPC): learner rank 0 sends the whole merged model GPU to GPU and drives
    each engine's start / update / finish through vLLM's Ray client (rlvr.learner.transfer); the engines then
    record the version. The transfer groups open at the first push, when every actor is up."""

    def __init__(self, transport: Transport, learner: Any, engines: Any, gpus_per_engine: int, buffer_bytes: int):
        self.transport, self.learner, self.engines = transport, learner, engines
        self.gpus_per_engine, self.buffer_bytes = gpus_per_engine, buffer_bytes
        self.opened = False

    def push(self, version: int, include_base: bool, timed: Timed) -> None:
        with timed("t_load"):  # export and load are one stream here
            if not self.opened:
                self.learner.open_transfer(self.transport, self.engines.actors, self.gpus_per_engine, self.buffer_bytes)
                self.opened = True
            self.learner.send_weights(self.transport)
            self.engines.transferred(version)

    def close(self) -> None:
        if self.opened:
            self.learner.close_transfer()
            self.engines.close_transfer()
            self.opened = False


def weight_sync(plan: TrialPlan, rollout: RolloutConfig, learner: Any, engines: Any) -> BucketedSync | TransferSync:
    """The strategy for the plan's transport; ``rollout.sync_bucket_mb`` bounds the transfer's buffers too."""
    if plan.transport == "buckets":
        return BucketedSync(learner, engines)
    return TransferSync(plan.transport, learner, engines, plan.gpus_per_engine, bucket_bytes(rollout.sync_bucket_mb))
