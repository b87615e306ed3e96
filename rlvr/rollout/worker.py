"""A Ray actor around one rollout engine; placement (num_cpus, num_gpus) comes from the caller's .options()."""

from __future__ import annotations

import ray

from rlvr.devices import require_cuda
from rlvr.rollout.registry import make_engine
from rlvr.rollout.spec import EngineSpec
from rlvr.rollout.types import Completion, SamplingSpec, SlotBatch
from rlvr.sync.update import PolicyUpdate


@ray.remote
class RolloutWorker:
    """Thin shell: every call goes straight to the engine built by make_engine. With ``adapter_slots`` > 1 (a
    tenant pool's engine, rlvr.pool.tenants) the slot-aware calls take the tenant's slot; None is the solo call."""

    def __init__(self, spec: EngineSpec, model_path: str, seed: int, adapter_slots: int = 1):
        import os

        import torch

        require_cuda("rollout engine", "model.gpus_per_engine")
        # vLLM logs every adapter load at INFO: one line per policy version drowns the trial's own progress.
        os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")

        # Before the engine starts: vLLM's CPU worker forbids changing it afterwards.
        torch.set_num_threads(spec.threads)
        slots = {"adapter_slots": adapter_slots} if adapter_slots > 1 else {}
        self.engine = make_engine(spec.rollout.engine, model_path=model_path, spec=spec, seed=seed, **slots)

    def generate(self, prompts: list[list[int]], spec: SamplingSpec) -> list[list[Completion]]:
        return self.engine.generate(prompts, spec)

    def generate_mixed(self, batches: list[SlotBatch]) -> list[list[list[Completion]]]:
        return self.engine.generate_mixed(batches)

    def load_policy(self, update: PolicyUpdate, slot: int | None = None) -> None:
        self.engine.load_policy(update) if slot is None else self.engine.load_policy(update, slot)

    # vLLM's weight-sync control plane under its own names, so that vLLM's RayVLLMWeightSyncClient drives this
    # actor (vllm distributed/weight_transfer/clients.py; rlvr.learner.transfer)
    def init_weight_transfer_engine(self, request) -> None:
        self.engine.weight_transfer("init_weight_transfer_engine", request)

    def start_weight_update(self) -> None:
        self.engine.weight_transfer("start_weight_update")

    def update_weights(self, request) -> None:
        self.engine.weight_transfer("update_weights", request)

    def finish_weight_update(self) -> None:
        self.engine.weight_transfer("finish_weight_update")

    def shutdown_weight_transfer_engine(self) -> None:
        self.engine.weight_transfer("shutdown_weight_transfer_engine")

    def transferred(self, version: int) -> None:
        self.engine.transferred(version)

    def score(self, prompt: list[int], completion: list[int], slot: int | None = None) -> list[float]:
        return self.engine.score(prompt, completion) if slot is None else self.engine.score(prompt, completion, slot)

    def sleep(self) -> None:
        self.engine.sleep()

    def wake_up(self) -> None:
        self.engine.wake_up()

    def reset(self, seed: int) -> None:
        self.engine.reset(seed)

    def reset_slot(self, slot: int) -> None:
        self.engine.reset_slot(slot)

    def version(self) -> int | None:
        return self.engine.version

    def close(self) -> None:
        self.engine.close()
