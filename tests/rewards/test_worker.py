"""RewardWorker: the Ray actor scores a batch through its pool and reports the pool's counts."""

import os
import tempfile

import pytest

from rlvr.config.schema import RewardConfig
from rlvr.rewards.pool import RewardItem


@pytest.mark.slow
def test_reward_worker_actor_scores_a_batch_through_its_pool():
    import ray

    from rlvr.rewards.worker import RewardWorker

    os.environ["RAY_AUTH_MODE"] = "disabled"
    with tempfile.TemporaryDirectory(prefix="ray-rw-", dir="/tmp") as tmp:
        ray.init(address="local", include_dashboard=False, num_cpus=1, _temp_dir=tmp, log_to_driver=False)
        try:
            worker = RewardWorker.remote(RewardConfig(workers=1, timeout_s=5.0))
            items = [RewardItem("\\boxed{\\frac{1}{2}}", "0.5"), RewardItem("\\boxed{3}", "4")]
            results = ray.get(worker.score.remote(items))
            assert [r.correct for r in results] == [True, False]
            assert ray.get(worker.stats.remote())["scored"] == 2
            ray.get(worker.close.remote())
        finally:
            ray.shutdown()
