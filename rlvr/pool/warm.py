"""A warm pool: one set of a trial's parts (engines, reward actors, learners) that trial after trial leases.

Lease lifecycle (docs/architecture.md, warm pools): the first lease starts the parts as a cold trial would (the
learners also keep the pristine base on the host); every later lease resets them to what a fresh start for that
trial would give: engines serve the pristine base (reloaded if an update changed it, checked by digest) with no
adapter, an empty prefix cache and the trial's seeds; learners build the trial's policy, optimizer and schedule
on a copy of the pristine base (digest checked) with RNG from the trial's seed; reward counters start at zero.
A lease that ends in any exception closes the parts, so the next lease starts new ones: a part that raised is
never reused. Trials share a pool only when their parts are started with the same arguments (``pool_key``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from typing import Any

from rlvr.config.schema import TrialConfig
from rlvr.config.trial_plan import TrialPlan
from rlvr.learner.spec import LearnerSpec

log = logging.getLogger("rlvr.pool")


def pool_key(cfg: TrialConfig, tenant: bool = False) -> str:
    """What a trial's parts are started with apart from its seed: trials with the same key can share a pool.
    The method, algorithm, data and seed are the lease's; model, rollout, learner, reward and placement are the
    pool's (with the plan's engine context and adapter rank, which the engines are started with: a padded rank
    changes the adapter products' last bits, so trials of other ranks never share engines). A ``tenant``'s key
    reads its resolved route (auto and native are one engine for a LoRA)."""
    plan = TrialPlan.from_config(cfg)
    shape = {
        **{k: getattr(cfg, k).model_dump(mode="json") for k in ("model", "rollout", "learner", "reward")},
        "placement": cfg.placement,
        "max_model_len": plan.max_model_len,
        "bundles": plan.bundles(1.0),
        "engine_lora_rank": plan.engine_lora_rank,
    }
    if tenant:
        shape["rollout"]["sync_route"] = plan.route
    return hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()[:12]


class WarmPool:
    """The parts of one pool key, in the process that runs its trials' loops (a sweep's PoolHost actor, or a
    test). ``lease`` hands them to a TrialController, ``release`` takes them back (closing them after a failure)."""

    def __init__(self, name: str = "pool"):
        self.name = name
        self.key: str | None = None
        self.parts: tuple[Any, Any, Any] | None = None  # EngineSet, RewardSet, LearnerGroup
        self.leased: Any = None  # the TrialController holding the lease
        self.leases = 0

    def lease(self, controller: Any) -> None:
        """Attach the pool's parts to ``controller``, started or reset for its trial; ``controller.startup``
        gets the seconds it took (t_reset for a warm lease, the start-up's split for the first)."""
        from rlvr.trial.actors import start_parts

        if self.leased is not None:
            raise RuntimeError(f"{self.name}: already leased to {self.leased.cfg.name}")
        cfg, plan = controller.cfg, controller.plan
        key = pool_key(cfg)
        if self.key is not None and key != self.key:
            raise ValueError(f"{self.name}: trial {cfg.name} has pool key {key}, this pool serves {self.key}")
        self.key, self.leased = key, controller  # from here a failure ends the lease: rlvr.trial.runner releases it
        t0 = time.perf_counter()
        if self.parts is None:
            engines, rewards, learner, startup = start_parts(cfg, plan, controller.model_path, keep_base=True)
            self.parts = (engines, rewards, learner)
        else:
            engines, rewards, learner = self.parts
            self._reset(cfg, plan)
            startup = {"t_reset": time.perf_counter() - t0}
        self.leases += 1
        controller.attach(engines, rewards, learner, owned=False)
        controller.startup = {**startup, "pool_leases": self.leases}
        log.info(
            "pool_lease pool=%s key=%s trial=%s lease=%d seconds=%.2f",
            self.name,
            key,
            cfg.name,
            self.leases,
            time.perf_counter() - t0,
        )

    def _reset(self, cfg: TrialConfig, plan: TrialPlan) -> None:
        import ray

        engines, rewards, learner = self.parts
        # every part resets at once: the learners' rebuild is the long one
        ray.get(engines.reset(cfg) + rewards.reset(cfg) + learner.reset(LearnerSpec.from_trial(cfg, plan)))

    def release(self, failed: bool) -> None:
        """End the lease; after a failure the parts are closed, so the next lease starts new ones."""
        self.leased = None
        if failed:
            log.info("pool_discard pool=%s: the lease ended in an error, its parts are replaced", self.name)
            self.close()

    def request_stop(self) -> None:
        """Ask the leased trial to checkpoint and stop (what SIGTERM does to a trial in its own process)."""
        if self.leased is not None:
            self.leased.stop_requested = True

    def close(self) -> None:
        if self.parts is not None:
            for part in self.parts:
                part.close()
        self.parts = None
