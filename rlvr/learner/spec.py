"""What a learner rank is built from: its own config sections and the values the trial plan resolved for it.

A learner reads no other part's section (no ``rollout.*``): what it needs from elsewhere (the scoring
temperature, the Dr.GRPO normaliser) comes resolved from ``rlvr.config.trial_plan.TrialPlan``, like the learning rate,
the sync route and the micro-batching budget. Importing this module imports no GPU library.
"""

from __future__ import annotations

from dataclasses import dataclass

from rlvr.config.methods import Route
from rlvr.config.schema import AlgorithmConfig, LearnerConfig, MethodConfig, ModelConfig, TrialConfig
from rlvr.config.trial_plan import MicroBatching, TrialPlan


@dataclass(frozen=True)
class LearnerSpec:
    model: ModelConfig
    method: MethodConfig
    algorithm: AlgorithmConfig
    learner: LearnerConfig
    seed: int
    """The trial's seed: adapter initialisation (the same on every rank), then seed + rank for dropout."""
    steps: int
    """The trial's policy updates: the length of the learning-rate schedule."""
    lr: float
    route: Route
    temperature: float
    dr_grpo_norm: int
    micro_batching: MicroBatching
    colocated: bool = False
    """The rank shares its GPU with a sleeping engine: a step ends by handing PyTorch's cached blocks back to
    CUDA, so the engine's wake-up finds the memory the plan's colocation check counted as free."""

    @classmethod
    def from_trial(cls, cfg: TrialConfig, plan: TrialPlan | None = None) -> LearnerSpec:
        """The spec of a trial's learners; ``plan`` is the trial's (computed here when not given)."""
        plan = plan or TrialPlan.from_config(cfg)
        return cls(
            model=cfg.model,
            method=cfg.method,
            algorithm=cfg.algorithm,
            learner=cfg.learner,
            seed=cfg.seed,
            steps=cfg.steps,
            lr=plan.lr,
            route=plan.route,
            temperature=plan.sampling_temperature,
            dr_grpo_norm=plan.dr_grpo_norm,
            micro_batching=plan.micro_batching,
            colocated=plan.slots.colocated,
        )
