"""A tenant pool: up to K trials ("tenants") of one pool key run at once on one set of parts (issue 24).

Each tenant is an ordinary TrialController running its ordinary loop in a thread of its own (the sweep's PoolHost,
or a test); ``seat`` hands it an object with WarmPool's lease interface, which rlvr.trial.runner.run_trial takes.
Lifecycle (docs/architecture.md, tenant pools):

- parts: ONE EngineSet whose engines hold K adapter slots (vLLM ``max_loras``) of adapters up to the pool's rank,
  ONE RewardSet, and each tenant's learner. The first lease starts them, as a cold trial starts its own.
- lease: the tenant takes a free slot; only that slot is reset (its adapter dropped, the engines' base checked
  against the pristine digest) and only its learner (a fresh policy, optimizer, schedule and RNG from the trial's
  seed on the pristine base). The others run on undisturbed.
- the barrier: the tenant's engines are a ``SlotEngines`` view; its generate requests go through the pool's
  GenerateBatcher (rlvr.pool.batcher), one mixed-adapter generate call per engine for every tenant's requests.
  Its syncs, probes and evaluations use its own slot only.
- release: the slot and the learner are free for the next tenant. A lease that ends in an error drops its own
  parts: the tenant is dropped from the learner process and its slot reset. If that shows a SHARED part lost (an
  engine, a reward actor or the learner process that no longer answers), every part is closed: the other tenants'
  next calls fail, so each ends its lease the same way (leaving the closed parts' barrier, so a tenant still on
  them meets their failure rather than waiting for it) and restarts from its last checkpoint on new parts, through
  run_trial's actor restarts and then the sweep's retries, as after a lost node.

Learner: ONE learner process (rlvr.learner.tenants.TenantLearnerActor, in the plan's learner bundle) holds the base
once and each tenant's policy, optimizer, schedule and RNG; a tenant sees it as a TenantLearnerGroup (LearnerGroup's
interface), and its updates run one after another with the others' (the actor serialises calls).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import ray

from rlvr.config.pooled_plan import tenant_refusal
from rlvr.config.schema import TrialConfig
from rlvr.config.trial_plan import TrialPlan
from rlvr.learner.actor import learner_options
from rlvr.learner.spec import LearnerSpec
from rlvr.learner.tenants import TenantLearnerActor, TenantLearnerGroup
from rlvr.models.loading import resolve_transformers
from rlvr.pool.batcher import GenerateBatcher, Request
from rlvr.pool.warm import pool_key
from rlvr.rollout.types import Completion, SamplingSpec
from rlvr.sync.update import PolicyUpdate
from rlvr.trial.actors import EngineSet, RewardSet, start_parts

log = logging.getLogger("rlvr.pool")

RESET_TIMEOUT_S = 120.0  # a failed tenant's slot reset: an engine that does not answer by then is lost


def tenancy_refusal(cfg: TrialConfig) -> str | None:
    """Why this trial, as configured, cannot be a tenant (it runs in a solo warm pool), or None when it can: the
    pooled plan's rules (method, engine, learner: rlvr.config.pooled_plan.tenant_refusal), then what a running
    tenant pool needs of its config."""
    why = tenant_refusal(cfg)
    if why is not None:
        return why
    plan = TrialPlan.from_config(cfg)
    rules = (
        (cfg.rollout.colocate, "rollout.colocate: its engines sleep for one learner"),
        (cfg.rollout.dispatch_groups is not None, "rollout.dispatch_groups: tenants' requests are batched, not queued"),
        (plan.transport != "buckets", f"weight transfer {plan.transport} replaces the base every tenant shares"),
    )
    return next((why for refused, why in rules if refused), None)


def tenant_key(cfg: TrialConfig) -> str:
    """The pool key of a tenant: its engines' adapter rank and its resolved route (rlvr.pool.warm.pool_key)."""
    return pool_key(cfg, tenant=True)


class SlotEngines:
    """EngineSet's interface for one tenant: its generate requests go through the pool's barrier, its policy to
    its own adapter slot, and its probe reads that slot."""

    def __init__(self, engines: EngineSet, batcher: GenerateBatcher, slot: int):
        self.actors, self.batcher, self.slot = engines.actors, batcher, slot

    def generate(self, prompts: list[list[int]], spec: SamplingSpec) -> list[list[Completion]]:
        return self.collect(self.launch(prompts, spec))

    def launch(self, prompts: list[list[int]], spec: SamplingSpec) -> Request:
        return self.batcher.submit(self.slot, prompts, spec)

    def collect(self, launched: Request) -> list[list[Completion]]:
        return self.batcher.collect(launched)

    def load_policy(self, update: PolicyUpdate) -> None:
        ref = ray.put(update)
        ray.get([a.load_policy.remote(ref, self.slot) for a in self.actors])

    def score(self, prompt: list[int], completion: list[int]) -> list[list[float]]:
        return ray.get([a.score.remote(prompt, completion, self.slot) for a in self.actors])

    def reset(self, cfg: TrialConfig) -> list[ray.ObjectRef]:
        """The slot as a fresh engine's: no adapter (the engines check their base is still the pristine one)."""
        return [a.reset_slot.remote(self.slot) for a in self.actors]


@dataclass
class _Parts:
    engines: EngineSet
    rewards: RewardSet
    batcher: GenerateBatcher


class Seat:
    """One tenant's place in a TenantPool, with WarmPool's lease interface (what run_trial calls); ``slot`` None
    takes the lowest free slot at the lease."""

    def __init__(self, pool: TenantPool, slot: int | None):
        self.pool, self.slot = pool, slot
        self.leased: Any = None  # the TrialController holding the lease
        self.taken: int | None = None  # the slot it holds
        self.parts: _Parts | None = None

    def lease(self, controller: Any) -> None:
        self.pool._lease(self, controller)

    def release(self, failed: bool) -> None:
        self.pool._release(self, failed)

    def request_stop(self) -> None:
        if self.leased is not None:
            self.leased.stop_requested = True


class TenantPool:
    """Up to ``tenants`` trials of one tenant key on one set of parts; adapters up to ``lora_rank`` (None: the
    first tenant's)."""

    def __init__(self, name: str = "pool", tenants: int = 2, lora_rank: int | None = None):
        self.name, self.tenants, self.lora_rank = name, tenants, lora_rank
        self.key: str | None = None
        self.parts: _Parts | None = None
        self.learner: Any = None  # the TenantLearnerActor
        self.learners: dict[int, TenantLearnerGroup] = {}
        self.seats: dict[int, Seat] = {}
        self.leases = 0
        self._lock = threading.Lock()
        resolve_transformers()  # before any tenant's thread runs

    def seat(self, slot: int | None = None) -> Seat:
        return Seat(self, slot)

    def _lease(self, seat: Seat, controller: Any) -> None:
        cfg, plan = controller.cfg, controller.plan
        why = tenancy_refusal(cfg)
        if why is not None:
            raise ValueError(f"{self.name}: trial {cfg.name} cannot be a tenant: {why}")
        key = tenant_key(cfg)
        rank = self.lora_rank or plan.engine_lora_rank
        if key != (self.key or key) or plan.engine_lora_rank > rank:
            raise ValueError(
                f"{self.name}: trial {cfg.name} (key {key}, adapter rank {plan.engine_lora_rank}) does not fit this "
                f"pool (key {self.key}, adapter rank {rank})"
            )
        t0 = time.perf_counter()
        with self._lock:
            free = [s for s in range(self.tenants) if s not in self.seats]
            slot = seat.slot if seat.slot is not None else (free or [None])[0]
            if slot not in free:
                raise RuntimeError(f"{self.name}: slot {slot} is not free (free: {free})")
            self.key, self.lora_rank, self.seats[slot] = key, rank, seat
            seat.leased, seat.taken = controller, slot  # from here a failure ends the lease: run_trial releases it
            spec = LearnerSpec.from_trial(cfg, plan)
            seat.parts = self.parts
            if self.parts is None:
                engines, rewards, learner, startup = start_parts(
                    cfg,
                    plan,
                    controller.model_path,
                    adapter_slots=self.tenants,
                    max_lora_rank=rank,
                    learner=lambda: self._learner_for(slot, spec, plan, controller.model_path),
                )
                self.parts = seat.parts = _Parts(engines, rewards, GenerateBatcher(engines.actors))
            else:
                engines, rewards = self.parts.engines, self.parts.rewards
                slot_view = SlotEngines(engines, self.parts.batcher, slot)
                pending = slot_view.reset(cfg)  # the engines reset while the learner builds the tenant
                self._learner_for(slot, spec, plan, controller.model_path)
                ray.get(pending)
                startup = {"t_reset": time.perf_counter() - t0}
            self.parts.batcher.register(slot)
            self.leases += 1
        controller.attach(SlotEngines(engines, self.parts.batcher, slot), rewards, self.learners[slot], owned=False)
        controller.startup = {**startup, "pool_leases": self.leases}
        log.info(
            "pool_lease pool=%s key=%s trial=%s slot=%d lease=%d seconds=%.2f",
            self.name,
            key,
            cfg.name,
            slot,
            self.leases,
            time.perf_counter() - t0,
        )

    def _learner_for(self, slot: int, spec: LearnerSpec, plan: TrialPlan, model_path: str) -> TenantLearnerGroup:
        """The slot's learner tenant, (re)built for ``spec``; the pool's learner process starts first if none runs
        (in the plan's learner bundle)."""
        from ray.util.placement_group import get_current_placement_group

        if self.learner is None:
            options = learner_options(spec, get_current_placement_group(), plan.slots.learners[0], plan.learner_gpus)
            self.learner = TenantLearnerActor.options(**options).remote(spec, model_path)
        group = self.learners.setdefault(slot, TenantLearnerGroup(self.learner, slot, spec))
        ray.get(group.reset(spec))
        return group

    def _release(self, seat: Seat, failed: bool) -> None:
        """End a tenant's lease; after a failure its own parts are dropped, and every part if a shared one is lost."""
        with self._lock:
            slot, parts = seat.taken, seat.parts
            seat.leased = seat.taken = seat.parts = None
            if self.seats.get(slot) is seat:
                del self.seats[slot]
            if parts is None:
                return
            # from closed parts too: a tenant still on them must meet their failure, never wait for this one
            parts.batcher.deregister(slot)
            if not failed or parts is not self.parts:
                return  # (its parts were closed after another tenant's failure)
            log.info("pool_tenant_failed pool=%s slot=%s: its learner is replaced and its slot reset", self.name, slot)
            self.learners.pop(slot, None)
            try:
                ray.get(
                    [a.reset_slot.remote(slot) for a in parts.engines.actors]
                    + [a.__ray_ready__.remote() for a in parts.rewards.actors]
                    + [self.learner.drop.remote(slot)],
                    timeout=RESET_TIMEOUT_S,
                )
            except (ray.exceptions.RayError, TimeoutError, RuntimeError) as err:
                log.info("pool_discard pool=%s: a shared part is lost (%s), every part is replaced", self.name, err)
                self._close()

    def request_stop(self) -> None:
        """Ask every tenant to checkpoint and stop (what SIGTERM does to a trial in its own process)."""
        for seat in list(self.seats.values()):
            seat.request_stop()

    def close(self) -> None:
        with self._lock:
            self._close()

    def run(self, runs: list[tuple[TrialConfig, str]]) -> list[BaseException | None]:
        """Run each (config, trial_dir) as a tenant, the i-th in slot i, all at once in threads of this process (as
        a PoolHost runs them); each one's error, or None."""
        from rlvr.trial.runner import run_trial

        errors: list[BaseException | None] = [None] * len(runs)

        def tenant(i: int) -> None:
            try:
                run_trial(runs[i][0], str(runs[i][1]), pool=self.seat(i))
            except BaseException as err:  # noqa: BLE001 - returned to the caller
                errors[i] = err

        threads = [threading.Thread(target=tenant, args=(i,), name=f"{self.name}-slot{i}") for i in range(len(runs))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return errors

    def _close(self) -> None:
        if self.parts is not None:
            self.parts.engines.close()
            self.parts.rewards.close()
        if self.learner is not None:
            ray.kill(self.learner)
        self.parts, self.learner, self.learners = None, None, {}
