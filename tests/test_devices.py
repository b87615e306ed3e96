"""Actors placed on GPUs that CUDA cannot use stop with the reason instead of silently running on CPU."""

from __future__ import annotations

import pytest
import torch

pytestmark = pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine where CUDA is unusable")


@pytest.fixture(scope="module")
def fake_gpu_ray(no_shared_ray):
    import ray

    from rlvr.trial.local_ray import init_local_ray

    init_local_ray(num_cpus=4, num_gpus=2)  # declared GPUs that torch cannot see
    yield ray
    ray.shutdown()


def test_a_rollout_engine_on_a_gpu_without_cuda_names_the_problem(fake_gpu_ray):
    from rlvr.config.schema import ModelConfig, RolloutConfig
    from rlvr.rollout.spec import EngineSpec
    from rlvr.rollout.worker import RolloutWorker

    spec = EngineSpec(ModelConfig(), RolloutConfig(engine="hf"))
    worker = RolloutWorker.options(num_cpus=1, num_gpus=1).remote(spec, "unused", 0)
    with pytest.raises(Exception, match=r"rollout engine: Ray assigned GPU\(s\) .* model.gpus_per_engine"):
        fake_gpu_ray.get(worker.version.remote())


def test_a_learner_on_a_gpu_without_cuda_names_the_problem(fake_gpu_ray):
    from rlvr.learner.actor import LearnerActor

    actor = fake_gpu_ray.remote(LearnerActor).options(num_cpus=1, num_gpus=1).remote()
    with pytest.raises(
        Exception, match=r"learner rank 0: Ray assigned GPU\(s\) .*torch.cuda.is_available\(\) is False"
    ):
        fake_gpu_ray.get(actor.setup.remote(None, "unused", 0, 1, "127.0.0.1", 0))


def test_cpu_actors_are_not_affected(fake_gpu_ray):
    from rlvr.devices import require_cuda

    @fake_gpu_ray.remote(num_cpus=1)
    def on_cpu():
        require_cuda("engine", "model.gpus_per_engine")
        return "ok"

    assert fake_gpu_ray.get(on_cpu.remote()) == "ok"
