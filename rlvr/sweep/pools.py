"""The sweep's warm pools (rlvr.pool): one PoolHost per placement group, kept between trials.

A pool is made for a trial whose pool key has no pool with room, in a placement group of that trial's bundles (so
it takes from the cluster what the trial would), preferring a trial whose key no pool serves yet; later trials with
the same key run on it while it has room. When a new pool has to wait for room, idle pools (whose keys no pending
trial needs, as those start first) are retired to make it. A pool whose host died (its node was lost) is dropped;
its trials are retried like any failed attempt, on a new pool wherever there is room.

Tenancy (``SweepConfig.tenants`` > 1, rlvr.pool.tenants): a trial that can be a tenant as configured (its policy a
LoRA on the original base served natively: rlvr.pool.tenants.tenancy_refusal) runs in a tenant pool of its tenant
key, up to ``tenants`` trials at once, each in a slot of its own; its engines serve the key's adapter rank. The
others keep pools of one trial at a time. No config is rewritten to make a tenant, so a trial gives in a pool
what its config gives alone.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import ray
from ray.util.placement_group import PlacementGroup, remove_placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from rlvr.config.grid import TrialSpec
from rlvr.pool.host import PoolHost
from rlvr.pool.tenants import tenancy_refusal, tenant_key
from rlvr.pool.warm import pool_key

log = logging.getLogger("rlvr.sweep")


@dataclass
class Pool:
    name: str
    key: str
    pg: PlacementGroup
    host: ray.actor.ActorHandle
    capacity: int = 1  # trials at once: a tenant pool's tenants, else 1
    slots: set[int] = field(default_factory=set)  # the tenants' slots in use
    last_used: float = field(default_factory=time.monotonic)

    @property
    def busy(self) -> bool:
        return len(self.slots) >= self.capacity


class SweepPools:
    def __init__(self, cpus_per_host: float, tenants: int = 1):
        self.cpus_per_host = cpus_per_host
        self.tenants = tenants
        self.pools: list[Pool] = []
        self._made = 0
        self._keys: dict[str, tuple[str, bool]] = {}

    def _key(self, spec: TrialSpec) -> tuple[str, bool]:
        if spec.trial_id not in self._keys:
            tenant = self.tenants > 1 and tenancy_refusal(spec.config) is None
            self._keys[spec.trial_id] = (tenant_key(spec.config) if tenant else pool_key(spec.config), tenant)
        return self._keys[spec.trial_id]

    def key(self, spec: TrialSpec) -> str:
        return self._key(spec)[0]

    def idle(self, spec: TrialSpec) -> Pool | None:
        """A pool of the trial's key with room for it, a tenant pool with tenants running first (joining it adds
        no engine batch or learner process)."""
        key = self.key(spec)
        room = [p for p in self.pools if not p.busy and p.key == key]
        return min(room, key=lambda p: not p.slots, default=None)

    def unserved(self, pending: list[TrialSpec]) -> TrialSpec:
        """The trial to place a new pool for: the first whose key no pool serves, else the first."""
        served = {p.key for p in self.pools}
        return next((s for s in pending if self.key(s) not in served), pending[0])

    def add(self, spec: TrialSpec, pg: PlacementGroup) -> Pool:
        """A new pool in ``pg`` (placed for ``spec``), its host in bundle 0."""
        self._made += 1
        name = f"pool-{self._made}"
        key, tenant = self._key(spec)
        capacity = self.tenants if tenant else 1
        strategy = PlacementGroupSchedulingStrategy(
            pg, placement_group_bundle_index=0, placement_group_capture_child_tasks=True
        )
        host = PoolHost.options(
            num_cpus=self.cpus_per_host, scheduling_strategy=strategy, name=None, max_concurrency=capacity + 1
        ).remote(name, capacity)  # the key holds the adapter rank: the first tenant's is every tenant's
        pool = Pool(name, key, pg, host, capacity)
        self.pools.append(pool)
        log.info("pool_created pool=%s key=%s tenants=%d for=%s", name, pool.key, capacity, spec.trial_id)
        return pool

    def lease(self, pool: Pool) -> int | None:
        """Take a slot of ``pool``: a tenant pool's lowest free one, None in a pool of one trial at a time."""
        slot = min(set(range(pool.capacity)) - pool.slots)
        pool.slots.add(slot)
        return slot if pool.capacity > 1 else None

    def give_back(self, pool: Pool, slot: int | None, host_died: bool) -> None:
        pool.slots.discard(slot or 0)
        pool.last_used = time.monotonic()
        if host_died:
            self.drop(pool)

    def retire_idle(self) -> bool:
        """Retire the idle pool used longest ago, to make room for another; False when none is idle."""
        idle = sorted((p for p in self.pools if not p.slots), key=lambda p: p.last_used)
        if idle:
            self.drop(idle[0])
        return bool(idle)

    def drop(self, pool: Pool) -> None:
        if pool in self.pools:
            self.pools.remove(pool)
            try:
                ray.get(pool.host.close.remote(), timeout=30)
            except (ray.exceptions.RayError, TimeoutError):
                pass  # a dead host's actors went with it
            ray.kill(pool.host)
            remove_placement_group(pool.pg)
            log.info("pool_closed pool=%s key=%s", pool.name, pool.key)

    def close(self) -> None:
        for pool in list(self.pools):
            self.drop(pool)
