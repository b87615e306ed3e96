"""PoolHost: the Ray actor a sweep runs a warm pool's trials in (the controller of each trial it is handed).

It sits in bundle 0 of the pool's placement group and captures its child actors into the group, so the pool's
engines, learners and reward actors land in its bundles, as a trial's own do, and live as long as the host.
It serves ``run`` (one trial at a time; with ``tenants`` > 1, a tenant pool's trials at once, each call in a thread
of its own: start it with ``max_concurrency`` tenants + 1) and ``stop``, which asks its trials to checkpoint and
stop, as SIGTERM does to a trial in its own process.
"""

from __future__ import annotations

import ray

from rlvr.pool.tenants import TenantPool
from rlvr.pool.warm import WarmPool


@ray.remote(max_concurrency=2)
class PoolHost:
    def __init__(self, name: str, tenants: int = 1):
        self.pool = WarmPool(name) if tenants == 1 else TenantPool(name, tenants)

    def run(self, cfg_json: str, trial_dir: str, slot: int | None = None) -> dict:
        from rlvr.config.schema import TrialConfig
        from rlvr.trial.runner import run_trial

        pool = self.pool.seat(slot) if isinstance(self.pool, TenantPool) else self.pool
        return run_trial(TrialConfig.model_validate_json(cfg_json), trial_dir, pool=pool)

    def stop(self) -> None:
        self.pool.request_stop()

    def close(self) -> None:
        self.pool.close()
