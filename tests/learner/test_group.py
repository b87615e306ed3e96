import os

import pytest
import ray
import torch

from rlvr.learner.actor import LearnerGroup
from rlvr.learner.learner import Learner

from .batches import fixed_batch
from .conftest import trial_cfg

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def local_ray(tmp_path_factory):
    os.environ["RAY_AUTH_MODE"] = "disabled"
    ray.init(address="local", include_dashboard=False, num_cpus=2, _temp_dir=str(tmp_path_factory.mktemp("ray")),
             log_to_driver=False)
    yield
    ray.shutdown()


def test_two_deepspeed_ranks_give_the_same_update_as_one(tiny_path, local_ray):
    # dapo's token normaliser must stay global when the batch is split; two mini-batches of 4 -> 2 per rank each,
    # and completions of different lengths make the per-rank token counts differ
    cfg = trial_cfg(**{"learner.backend": "deepspeed", "learner.zero_stage": 2, "algorithm.mini_batches": 2,
                       "learner.micro_batch_size": 1, "algorithm.loss": "dapo"})
    batches = [fixed_batch(seed=s) for s in range(2)]
    single = Learner(cfg, tiny_path)
    single_metrics = [single.train_step(b) for b in batches]

    group = LearnerGroup(cfg, tiny_path, num_learners=2)
    try:
        group_metrics = [group.train_step(b) for b in batches]
        state = group.state()
        continued = group.train_step(fixed_batch(seed=9))
    finally:
        group.close()
    restored = LearnerGroup(cfg, tiny_path, num_learners=2)
    try:
        restored.load_state(state)
        after_restore = restored.train_step(fixed_batch(seed=9))
    finally:
        restored.close()
    for s, g in zip(single_metrics, group_metrics):
        assert g["loss"] == pytest.approx(s["loss"], rel=1e-4, abs=1e-6)
        assert g["grad_norm"] == pytest.approx(s["grad_norm"], rel=1e-4)
        assert g["tokens"] == s["tokens"]
    ours = single.policy.trainable_state_dict()
    for k, v in state["ranks"][0]["trainable"].items():
        torch.testing.assert_close(v, ours[k], rtol=1e-4, atol=1e-6)
    # all ranks restore their own optimizer partition: the restored group continues like the original
    assert after_restore["loss"] == pytest.approx(continued["loss"], rel=1e-6)
    assert after_restore["grad_norm"] == pytest.approx(continued["grad_norm"], rel=1e-6)
