"""The engine's arguments, without starting one: the executor a tensor-parallel GPU engine runs on, and the
per-request seeds every platform gets (docs/cluster.md, section 11, items 5 and 10)."""

from __future__ import annotations

from rlvr.config.schema import ModelConfig, RolloutConfig
from rlvr.rollout.spec import EngineSpec
from rlvr.rollout.types import SamplingSpec
from rlvr.rollout.vllm_engine import engine_placement, sampling_params


def test_tensor_parallel_gpu_engines_run_on_the_multiprocessing_executor_not_rays():
    # Unset, vLLM picks its Ray executor inside the trial's placement group and asks for bundles it does not own.
    def spec(gpus: int) -> EngineSpec:
        return EngineSpec(ModelConfig(gpus_per_engine=gpus), RolloutConfig())

    tp2 = engine_placement(spec(2), on_gpu=True)
    assert tp2["distributed_executor_backend"] == "mp" and tp2["tensor_parallel_size"] == 2
    assert engine_placement(spec(1), on_gpu=True)["distributed_executor_backend"] == "uni"
    assert engine_placement(spec(2), on_gpu=False)["distributed_executor_backend"] == "uni"


def test_every_prompt_gets_its_own_seed_on_every_platform():
    params = sampling_params(SamplingSpec(n=4, seed=100), 3)
    assert [p.seed for p in params] == [100, 104, 108]
    assert [p.seed for p in sampling_params(SamplingSpec(n=4), 2)] == [None, None]


def test_a_cpu_engine_runs_every_slots_batch_at_once():
    # a tenant pool's mixed batch queued above the limit sees other row counts than each tenant alone
    spec = EngineSpec(ModelConfig(), RolloutConfig(), max_model_len=100)
    one, four = engine_placement(spec, on_gpu=False), engine_placement(spec, on_gpu=False, adapter_slots=4)
    assert (one["max_num_seqs"], four["max_num_seqs"]) == (256, 1024)
    assert four["max_num_batched_tokens"] == 1024 * 100
