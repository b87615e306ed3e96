"""The sweep's warm pools (rlvr.pool): one PoolHost per placement group, kept between trials.

A pool is made for a trial whose pool key has no idle pool, in a placement group of that trial's bundles (so it
takes from the cluster what the trial would), preferring a trial whose key no pool serves yet; later trials with
the same key run on it while it is idle. When a new pool has to wait for room, idle pools (whose keys no pending
trial needs, as those start first) are retired to make it. A pool whose host died (its node was lost) is dropped; its
trial is retried like any failed attempt, on a new pool wherever there is room.
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
from rlvr.pool.warm import pool_key

log = logging.getLogger("rlvr.sweep")


@dataclass
class Pool:
    name: str
    key: str
    pg: PlacementGroup
    host: ray.actor.ActorHandle
    busy: bool = False
    last_used: float = field(default_factory=time.monotonic)


class SweepPools:
    def __init__(self, cpus_per_host: float):
        self.cpus_per_host = cpus_per_host
        self.pools: list[Pool] = []
        self._made = 0
        self._keys: dict[str, str] = {}

    def key(self, spec: TrialSpec) -> str:
        if spec.trial_id not in self._keys:
            self._keys[spec.trial_id] = pool_key(spec.config)
        return self._keys[spec.trial_id]

    def idle(self, spec: TrialSpec) -> Pool | None:
        key = self.key(spec)
        return next((p for p in self.pools if not p.busy and p.key == key), None)

    def unserved(self, pending: list[TrialSpec]) -> TrialSpec:
        """The trial to place a new pool for: the first whose key no pool serves, else the first."""
        served = {p.key for p in self.pools}
        return next((s for s in pending if self.key(s) not in served), pending[0])

    def add(self, spec: TrialSpec, pg: PlacementGroup) -> Pool:
        """A new pool in ``pg`` (placed for ``spec``), its host in bundle 0."""
        self._made += 1
        name = f"pool-{self._made}"
        strategy = PlacementGroupSchedulingStrategy(
            pg, placement_group_bundle_index=0, placement_group_capture_child_tasks=True
        )
        host = PoolHost.options(num_cpus=self.cpus_per_host, scheduling_strategy=strategy, name=None).remote(name)
        pool = Pool(name, self.key(spec), pg, host)
        self.pools.append(pool)
        log.info("pool_created pool=%s key=%s for=%s", name, pool.key, spec.trial_id)
        return pool

    def lease(self, pool: Pool) -> None:
        pool.busy = True

    def give_back(self, pool: Pool, host_died: bool) -> None:
        pool.busy, pool.last_used = False, time.monotonic()
        if host_died:
            self.drop(pool)

    def retire_idle(self) -> bool:
        """Retire the idle pool used longest ago, to make room for another; False when none is idle."""
        idle = sorted((p for p in self.pools if not p.busy), key=lambda p: p.last_used)
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
