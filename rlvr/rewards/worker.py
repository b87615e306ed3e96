"""RewardWorker: the Ray actor shell around RewardPool, so a trial can place reward scoring on any node."""

from __future__ import annotations

import ray

from rlvr.config.schema import RewardConfig
from rlvr.rewards.pool import RewardItem, RewardPool, RewardResult


@ray.remote(num_cpus=1)
class RewardWorker:
    """Scores batches; its verifier subprocesses live as long as the actor. Ask for more CPUs with
    ``RewardWorker.options(num_cpus=cfg.workers)`` where the cluster has them."""

    def __init__(self, cfg: RewardConfig):
        self.pool = RewardPool(cfg)

    def score(self, items: list[RewardItem]) -> list[RewardResult]:
        return self.pool.score(items)

    def reset(self) -> None:
        self.pool.reset()

    def stats(self) -> dict:
        return dict(self.pool.stats)

    def close(self) -> None:
        self.pool.close()
