"""What a rollout engine is built from: its own config sections and the values the trial plan resolved for it.

Like ``rlvr.learner.spec.LearnerSpec`` for a learner rank: an engine reads its context and adapter rank from here,
never from a config copy with a resolved value written back into it. Importing this module imports no GPU library.
"""

from __future__ import annotations

from dataclasses import dataclass

from rlvr.config.schema import ModelConfig, RolloutConfig, TrialConfig
from rlvr.config.trial_plan import TrialPlan


@dataclass(frozen=True)
class EngineSpec:
    model: ModelConfig
    rollout: RolloutConfig
    max_model_len: int | None = None
    """The engine's context (vLLM's ``max_model_len``): in a trial the plan's (``engine_context``); None: the
    model's own."""
    max_lora_rank: int | None = None
    """The largest adapter rank the engine serves; None when it is sent merged weights (or serves none)."""
    threads: int = 1
    """torch threads of the engine actor on CPU."""
    transport: str = "buckets"
    """How weight syncs reach the engine (the plan's, rlvr.config.transport): buckets needs nothing of the engine;
    nccl or ipc starts it with vLLM's weight transfer backend."""

    def __post_init__(self):
        if self.rollout.max_model_len not in (None, self.max_model_len):
            raise ValueError(
                f"rollout.max_model_len: {self.rollout.max_model_len} differs from the engine's context "
                f"{self.max_model_len}; the engine reads its context from EngineSpec.max_model_len alone"
            )

    @classmethod
    def from_trial(cls, cfg: TrialConfig, plan: TrialPlan | None = None) -> EngineSpec:
        """The spec of a trial's engines; ``plan`` is the trial's (computed here when not given)."""
        plan = plan or TrialPlan.from_config(cfg)
        return cls(
            model=cfg.model,
            rollout=cfg.rollout,
            max_model_len=plan.max_model_len,
            max_lora_rank=plan.engine_lora_rank,
            threads=plan.actor_threads,
            transport=plan.transport,
        )
