"""Which transport carries a policy update to the engines, decided once per trial (``choose_transport``).

Two interchangeable strategies (rlvr.trial.weight_sync runs them):
- ``buckets``: the learner exports a PolicyUpdate (safetensors bytes), the engine stages it in slices of
  ``rollout.sync_bucket_mb`` and reloads the tensors it lists (rlvr.sync.buckets). Every route, every platform;
  the CPU rehearsal of every trial.
- ``nccl`` / ``ipc``: vLLM's weight transfer backends (``LLM(weight_transfer_config=...)``,
  vllm distributed/weight_transfer/): learner rank 0 broadcasts every tensor of the merged model from its GPU
  to the engine's workers over NCCL, or hands them CUDA IPC handles of its own GPU memory when the engine
  shares that GPU (``rollout.colocate``). Merged route only: the backends load checkpoint-format weights
  through vLLM's layerwise reload, not adapters. Both need CUDA (docs/cluster.md, item 6).

``rollout.weight_transfer: buckets`` (the default) keeps every trial on the bucketed path; ``auto`` takes
vLLM's transport wherever one applies and falls back to buckets elsewhere (always on CPU).
"""

from __future__ import annotations

from typing import Literal

from rlvr.config.methods import Route
from rlvr.config.schema import LearnerConfig, ModelConfig, RolloutConfig

Transport = Literal["buckets", "nccl", "ipc"]


def choose_transport(rollout: RolloutConfig, model: ModelConfig, learner: LearnerConfig, route: Route) -> Transport:
    """The transport of a trial's weight syncs; raises ValueError naming ``rollout.weight_transfer`` when an
    explicit backend cannot run on this layout. ``auto`` falls back to ``buckets`` silently: that path is
    always possible."""
    setting = rollout.weight_transfer
    if setting == "buckets":
        return "buckets"
    why_not, backend = _why_not(rollout, model, learner, route)
    if why_not is None and setting in ("auto", backend):
        return backend
    if setting == "auto":
        return "buckets"
    reason = why_not or f"this layout takes {backend}, not {setting}"
    raise ValueError(
        f"rollout.weight_transfer: {setting} cannot carry this trial's updates ({reason}); "
        "use auto (vLLM's transport where it applies, buckets elsewhere) or buckets"
    )


def _why_not(
    rollout: RolloutConfig, model: ModelConfig, learner: LearnerConfig, route: Route
) -> tuple[str | None, Transport]:
    """(None, the backend this layout takes) when vLLM's transport applies, else (the reason, that backend)."""
    backend: Transport = "ipc" if rollout.colocate else "nccl"
    if route != "merged":
        return f"route {route} sends adapters, which vLLM's transfer backends do not load", backend
    if rollout.engine != "vllm":
        return f"rollout.engine {rollout.engine} has no weight transfer backend", backend
    if model.gpus_per_engine < 1 or model.gpus_per_learner < 1:
        return "no GPUs: vLLM's NCCL and IPC backends allocate CUDA memory (vLLM-CPU has neither)", backend
    if rollout.colocate and model.gpus_per_engine > 1:
        # IPC handles are per GPU (keyed by its UUID): a TP worker on a GPU no learner rank shares gets none,
        # and NCCL refuses two ranks of one group on the same GPU.
        return "a colocated engine with tensor parallelism spans GPUs no learner rank shares", backend
    if rollout.colocate and rollout.num_engines != learner.num_learners:
        return (
            "CUDA IPC needs a learner rank on every engine's GPU (rollout.num_engines = learner.num_learners)",
            backend,
        )
    return None, backend


def nccl_world_size(gpus_per_engine: int) -> int:
    """Ranks of one engine's transfer group: learner rank 0 (rank 0, the sender) and the engine's TP workers
    (vLLM puts them at rank_offset 1: nccl_engine.py, NCCLTrainerWeightTransferEngine.trainer_init)."""
    return 1 + max(1, gpus_per_engine)
