"""RewardWorker: the Ray actor scores a batch through its pool and reports the pool's counts."""

import pytest

from rlvr.config.schema import RewardConfig
from rlvr.rewards.pool import RewardItem


@pytest.mark.slow
def test_reward_worker_actor_scores_a_batch_through_its_pool(local_ray):
    ray = local_ray
    from rlvr.rewards.worker import RewardWorker

    worker = RewardWorker.remote(RewardConfig(workers=1, timeout_s=5.0))
    try:
        items = [RewardItem("\\boxed{\\frac{1}{2}}", "0.5"), RewardItem("\\boxed{3}", "4")]
        results = ray.get(worker.score.remote(items))
        assert [r.correct for r in results] == [True, False]
        assert ray.get(worker.stats.remote())["scored"] == 2
        ray.get(worker.close.remote())
    finally:
        ray.kill(worker)
