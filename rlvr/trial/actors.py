"""The trial's worker actors, placed in the trial's placement group, behind the engine and reward interfaces.

``EngineSet`` looks like one RolloutEngine (rlvr.rollout.types) and ``RewardSet`` like one RewardPool, so the
RL loop and the evaluation runner use them exactly as they would use a local engine and pool.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import ray
from ray.util.placement_group import get_current_placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from rlvr.config.schema import TrialConfig
from rlvr.config.trial_plan import TrialPlan
from rlvr.learner.actor import LearnerGroup
from rlvr.learner.spec import LearnerSpec
from rlvr.rewards.pool import RewardItem, RewardResult
from rlvr.rewards.worker import RewardWorker
from rlvr.rollout.spec import EngineSpec
from rlvr.rollout.types import Completion, SamplingSpec
from rlvr.rollout.worker import RolloutWorker
from rlvr.sync.update import PolicyUpdate
from rlvr.trial.dispatch import QueuedRound


def _placement(bundle: int) -> dict[str, Any]:
    """Pin an actor to a bundle of the trial's placement group (its slot in rlvr.config.trial_plan.BundleSlots)."""
    pg = get_current_placement_group()
    if pg is None:
        return {}
    return {"scheduling_strategy": PlacementGroupSchedulingStrategy(pg, placement_group_bundle_index=bundle)}


def start_parts(
    cfg: TrialConfig,
    plan: TrialPlan,
    model_path: str,
    keep_base: bool = False,
    meanwhile: Callable[[], None] = lambda: None,
    adapter_slots: int = 1,
    max_lora_rank: int | None = None,
    learner: Callable[[], Any] | None = None,
) -> tuple[EngineSet, RewardSet, Any, dict]:
    """Start a trial's engines, reward actors and learners, each in its plan slot, and return them with the seconds
    each part added to the start-up (t_learner: ``meanwhile`` and the learners, then what the engines and reward
    actors added beyond it). Engines and reward actors start while the learners build. ``keep_base``: for a warm
    pool, whose learners keep the pristine base for the next lease. A tenant pool (rlvr.pool.tenants) passes its
    engines' ``adapter_slots`` and ``max_lora_rank`` and builds its own ``learner``."""
    t0 = time.perf_counter()
    engines = EngineSet(cfg, plan, model_path, adapter_slots, max_lora_rank)
    rewards = RewardSet(cfg, plan)
    meanwhile()
    if learner is not None:
        learner = learner()
    else:
        learner = LearnerGroup(
            LearnerSpec.from_trial(cfg, plan),
            model_path,
            placement=get_current_placement_group(),
            bundles=plan.slots.learners,
            gpus=plan.learner_gpus,
            keep_base=keep_base,
        )
    t1 = time.perf_counter()
    ray.get([a.__ray_ready__.remote() for a in engines.actors])
    t2 = time.perf_counter()
    ray.get([a.__ray_ready__.remote() for a in rewards.actors])
    startup = {"t_learner": t1 - t0, "t_engines": t2 - t1, "t_rewards": time.perf_counter() - t2}
    return engines, rewards, learner, startup


def _split(items: list, parts: int) -> list[list]:
    bounds = [round(i * len(items) / parts) for i in range(parts + 1)]
    return [items[bounds[i] : bounds[i + 1]] for i in range(parts)]


def engine_parts(prompts: int, engines: int) -> list[list[int]]:
    """The prompt indices each engine gets, split evenly; engines beyond the prompts get none (left out)."""
    return [p for p in _split(list(range(prompts)), engines) if p]


def in_prompt_order(parts: list[list[int]], results: list[list[list[Completion]]]) -> list[list[Completion]]:
    """Each engine's groups (for its part of the prompts) as one list in prompt order, every completion numbered
    by its prompt's global index: to the caller the engines are one engine."""
    out: list[list[Completion]] = []
    for part, groups in zip(parts, results):
        for local, group in enumerate(groups):
            for c in group:
                c.prompt_index = part[local]
            out.append(group)
    return out


class EngineSet:
    """``rollout.num_engines`` rollout actors serving the same policy; prompts are split across them evenly, or
    handed out in chunks from a queue with ``rollout.dispatch_groups`` (rlvr.trial.dispatch). A tenant pool's
    engines (rlvr.pool.tenants) hold ``adapter_slots`` policies of adapters up to ``max_lora_rank``."""

    def __init__(
        self,
        cfg: TrialConfig,
        plan: TrialPlan,
        model_path: str,
        adapter_slots: int = 1,
        max_lora_rank: int | None = None,
    ):
        spec = EngineSpec.from_trial(cfg, plan)
        if max_lora_rank is not None:
            spec = dataclasses.replace(spec, max_lora_rank=max_lora_rank)
        self.dispatch_groups = cfg.rollout.dispatch_groups
        self.actors = [
            RolloutWorker.options(num_cpus=1, num_gpus=plan.engine_gpus, **_placement(bundle)).remote(
                spec, model_path=model_path, seed=cfg.seed + i, adapter_slots=adapter_slots
            )
            for i, bundle in enumerate(plan.slots.engines)
        ]

    def generate(self, prompts: list[list[int]], spec: SamplingSpec) -> list[list[Completion]]:
        return self.collect(self.launch(prompts, spec))

    def launch(self, prompts: list[list[int]], spec: SamplingSpec) -> list[tuple[list[int], Any]] | QueuedRound:
        """Start generating without waiting: (global prompt indices, result ref) per engine, or a queued round."""
        if self.dispatch_groups is not None:

            def submit(engine: int, part: list[list[int]], part_spec: SamplingSpec):
                return self.actors[engine].generate.remote(part, part_spec).future()

            return QueuedRound(submit, len(self.actors), prompts, spec, self.dispatch_groups)
        parts = engine_parts(len(prompts), len(self.actors))
        return [(part, a.generate.remote([prompts[i] for i in part], spec)) for a, part in zip(self.actors, parts)]

    def collect(self, launched: list[tuple[list[int], Any]] | QueuedRound) -> list[list[Completion]]:
        """Wait for a launch; groups in prompt order."""
        if isinstance(launched, QueuedRound):
            return launched.collect()
        return in_prompt_order([part for part, _ in launched], ray.get([ref for _, ref in launched]))

    def load_policy(self, update: PolicyUpdate) -> None:
        ref = ray.put(update)  # one copy in the object store, however many engines read it
        ray.get([a.load_policy.remote(ref) for a in self.actors])

    def transferred(self, version: int) -> None:
        """Every engine serves ``version``, which the learner just sent through vLLM's transfer."""
        ray.get([a.transferred.remote(version) for a in self.actors])

    def close_transfer(self) -> None:
        ray.get([a.shutdown_weight_transfer_engine.remote() for a in self.actors])

    def sleep(self) -> None:
        """rollout.colocate: every engine frees its GPU for the learner rank that shares it."""
        ray.get([a.sleep.remote() for a in self.actors])

    def wake_up(self) -> None:
        ray.get([a.wake_up.remote() for a in self.actors])

    def score(self, prompt: list[int], completion: list[int]) -> list[list[float]]:
        """Every engine's scores of the probe: each must serve the new version."""
        return ray.get([a.score.remote(prompt, completion) for a in self.actors])

    def reset(self, cfg: TrialConfig) -> list[ray.ObjectRef]:
        """A warm pool's lease: every engine as if just started for ``cfg`` (its seeds, its dispatch); returns the
        pending calls, so the other parts reset meanwhile."""
        self.dispatch_groups = cfg.rollout.dispatch_groups
        return [a.reset.remote(cfg.seed + i) for i, a in enumerate(self.actors)]

    def close(self) -> None:
        for a in self.actors:
            ray.kill(a)


class RewardSet:
    """``reward.num_actors`` reward actors; a batch is split across them."""

    def __init__(self, cfg: TrialConfig, plan: TrialPlan):
        self.actors = [RewardWorker.options(**_placement(bundle)).remote(cfg.reward) for bundle in plan.slots.rewards]

    def score(self, items: list[RewardItem]) -> list[RewardResult]:
        parts = [p for p in _split(items, len(self.actors)) if p]
        return [r for chunk in ray.get([a.score.remote(p) for a, p in zip(self.actors, parts)]) for r in chunk]

    def reset(self, cfg: TrialConfig) -> list[ray.ObjectRef]:
        """Counters from zero (a warm pool's lease); returns the pending calls."""
        return [a.reset.remote() for a in self.actors]

    def close(self) -> None:
        # Stop the verifier subprocesses cleanly first; a dead actor is killed all the same.
        ray.wait([a.close.remote() for a in self.actors], num_returns=len(self.actors), timeout=10)
        for a in self.actors:
            ray.kill(a)
