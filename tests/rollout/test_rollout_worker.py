"""The Ray actor is a thin shell: a vLLM engine inside it generates, hot-swaps and scores like the engine itself."""

from __future__ import annotations

import pytest

from rlvr.rollout.types import SamplingSpec

from .rollout_helpers import hf_greedy, hf_logprobs, hf_model, lora_policy, lora_update, next_version


@pytest.mark.slow
def test_rollout_worker_serves_and_swaps_a_policy_in_a_local_ray_cluster(engine_args, tiny_path, prompts, local_ray):
    ray = local_ray
    from rlvr.rollout.worker import RolloutWorker

    worker = RolloutWorker.options(num_cpus=1).remote(**engine_args)
    try:
        assert ray.get(worker.version.remote()) is None
        policy = lora_policy(hf_model(tiny_path), seed=31)
        version = next_version()
        ray.get(worker.load_policy.remote(lora_update(policy, version)))
        groups = ray.get(worker.generate.remote(prompts, SamplingSpec(temperature=0.0, max_new_tokens=12)))
        assert [g[0].token_ids for g in groups] == hf_greedy(policy, prompts)
        scored = ray.get(worker.score.remote(prompts[0], groups[0][0].token_ids))
        assert scored == pytest.approx(hf_logprobs(policy, prompts[0], groups[0][0].token_ids), abs=1e-4)
        assert ray.get(worker.version.remote()) == version
        ray.get(worker.close.remote())
    finally:
        ray.kill(worker)
