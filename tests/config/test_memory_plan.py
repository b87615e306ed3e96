"""The memory plan: right parameter counts, itemised actors, the paper sweeps fit an H200, and misfits refused."""

import subprocess
import sys

import pytest

from rlvr.config.loader import ConfigError, build, find_config, load_raw, load_sweep, load_trial
from rlvr.config.memory_plan import plan_problems, plan_trial, total_params, trainable_params
from rlvr.config.memory_report import plan_command
from rlvr.config.schema import ModelConfig


@pytest.mark.parametrize("model", ["r1-distill-qwen-1.5b", "r1-distill-qwen-7b"])
def test_parameter_count_matches_the_model_built_from_the_architecture(model):
    from rlvr.models.loading import meta_model

    path = find_config(model, "models")
    cfg = build(ModelConfig, load_raw(path), str(path))
    assert total_params(cfg.architecture) == sum(p.numel() for p in meta_model(cfg).parameters())


def test_lora_trainable_count_bounds_peft_from_above_by_a_little():
    cfg = load_trial("study", ["model=r1-distill-qwen-1.5b", "method=paper/lora"])
    in_out = 2 * (1536 + 1536) + 2 * (1536 + 256) + 3 * (1536 + 8960)  # q, o; k, v; gate, up, down
    lora = cfg.method.rank * 28 * in_out  # what peft trains for LoRA r16 on all seven modules
    assert lora <= trainable_params(cfg) <= lora * 1.05


@pytest.mark.parametrize("sweep", ["paper-1.5b", "paper-7b"])
def test_paper_sweeps_fit_an_h200_by_the_plan(sweep):
    from rlvr.config.grid import expand

    for spec in expand(load_sweep(sweep)):  # loading validates: a misfit would raise here
        cfg = spec.config
        assert cfg.resources.gpu_memory_gib == 139 and cfg.learner.gradient_checkpointing
        assert plan_problems(cfg) == []
        learner = next(a for a in plan_trial(cfg).actors if a.name == "learner")
        assert set(learner.items) == {"weights", "gradients", "optimizer", "activations", "working"}
        assert 10 < learner.total < 139 * 0.9


def test_a_trial_that_cannot_fit_is_refused_naming_the_actor_and_numbers():
    with pytest.raises(ConfigError) as err:
        load_trial("study", ["model=r1-distill-qwen-7b", "learner.gradient_checkpointing=false"])
    msg = str(err.value)
    assert "resources.gpu_memory_gib: the learner needs" in msg and "activations" in msg and "leaves 125.1" in msg


def test_activations_are_linear_in_the_token_budget_and_zero_stages_shard_state():
    def learner(*over):
        cfg = load_trial(
            "study", ["model=r1-distill-qwen-7b", "method=paper/full", "resources.gpu_memory_gib=null", *over]
        )
        return next(a for a in plan_trial(cfg).actors if a.name == "learner").items

    a, b = learner("learner.max_tokens_per_micro_batch=32768"), learner("learner.max_tokens_per_micro_batch=65536")
    assert b["activations"] == pytest.approx(2 * a["activations"])
    z1 = learner("learner.backend=deepspeed", "learner.zero_stage=1", "learner.num_learners=2")
    z3 = learner("learner.backend=deepspeed", "learner.zero_stage=3", "learner.num_learners=2")
    assert z1["optimizer"] == pytest.approx(b["optimizer"] / 2) and z1["weights"] == b["weights"]
    assert z3["weights"] == pytest.approx(b["weights"] / 2) and z3["gradients"] == pytest.approx(b["gradients"] / 2)


def test_plan_command_prints_every_actor_gpus_nodes_and_gpu_hours():
    out = plan_command("paper-7b", [])
    for text in (
        "engine",
        "learner",
        "reward",
        "kv_cache",
        "activations",
        "GPU-hours",
        "node(s) of 8",
        "3 trial(s), 9 GPUs",
    ):
        assert text in out, text
    assert "GPU-hours" in plan_command("study", ["model=r1-distill-qwen-1.5b"])


def test_the_plan_imports_no_gpu_library():
    code = (
        "import sys, rlvr.config.memory_report, rlvr.config.validate; from rlvr.pool.warm import pool_key; "
        "from rlvr.config.memory_report import plan_command; plan_command('paper-1.5b', [], key=pool_key); "
        "bad = [m for m in ('torch', 'vllm', 'deepspeed', 'ray') if m in sys.modules]; assert not bad, bad"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr


def test_colocated_trials_count_shared_gpus_once_and_refuse_a_learner_that_leaves_the_engine_no_room():
    shared = ["model=r1-distill-qwen-1.5b", "rollout.colocate=true", "rollout.gpu_memory_utilization=null"]
    cfg = load_trial("study", shared)  # the engine's default share of a shared GPU: 0.45
    assert cfg.rollout.memory_share == 0.45 and plan_trial(cfg).gpus == cfg.rollout.num_engines
    assert plan_trial(load_trial("study", ["model=r1-distill-qwen-1.5b"])).gpus == 2 * cfg.rollout.num_engines
    with pytest.raises(
        ConfigError, match=r"rollout.colocate: the learner keeps .* GiB on the GPU while the engine takes"
    ):
        load_trial(
            "study",
            [
                "model=r1-distill-qwen-7b",
                "method=paper/full",
                "rollout.colocate=true",
                "rollout.gpu_memory_utilization=0.6",
            ],
        )


@pytest.mark.parametrize("max_model_len", [None, 12345])
def test_the_memory_plan_sizes_the_kv_cache_of_the_context_the_engines_get(max_model_len):
    from rlvr.config.memory_plan import DTYPE_BYTES, GIB, kv_bytes_per_token
    from rlvr.rollout.spec import EngineSpec

    over = [] if max_model_len is None else [f"rollout.max_model_len={max_model_len}"]
    cfg = load_trial("study", ["model=r1-distill-qwen-1.5b", "resources.gpu_memory_gib=null", *over])
    context = EngineSpec.from_trial(cfg).max_model_len
    assert max_model_len is None or context == max_model_len
    engine = next(a for a in plan_trial(cfg).actors if a.name == "engine")
    per_token = kv_bytes_per_token(cfg.model.architecture, DTYPE_BYTES[cfg.model.dtype])
    assert engine.items["kv_cache"] == pytest.approx(per_token * context / GIB)


def _items(*over):
    cfg = load_trial("study", ["model=r1-distill-qwen-1.5b", *over])
    return {a.name: a.items for a in plan_trial(cfg).actors}


def test_vllm_weight_transfer_buffers_are_counted_on_the_learner_and_engine_gpus():
    from rlvr.config.memory_plan import GIB

    dora = ["method=paper/dora", "rollout.weight_transfer=auto"]
    assert all("transfer" not in items for items in _items("method=paper/dora").values()), "buckets: none"
    assert "transfer" not in _items("method=paper/lora", "rollout.weight_transfer=auto")["learner"], "adapters"
    # a chunk is under one bucket (rollout.sync_bucket_mb) plus the largest tensor (the head, 151,936 x 1,536 bf16)
    head = 151936 * 1536 * 2
    chunk = 512 * 2**20 + head
    nccl = _items(*dora)  # two chunks in flight and the next being made, on each side
    assert nccl["learner"]["transfer"] == pytest.approx(3 * chunk / GIB)
    assert nccl["engine"]["transfer"] == pytest.approx((3 * chunk + head) / GIB), "and the module being loaded"
    ipc = _items(*dora, "rollout.colocate=true", "rollout.gpu_memory_utilization=0.6")
    assert ipc["learner"]["transfer"] == pytest.approx(chunk / GIB)  # one buffer and the tensor copied into it
    assert ipc["engine"]["transfer"] == pytest.approx((512 * 2**20 + head) / GIB)  # one chunk's clones, a module
    assert _items(*dora, "rollout.sync_bucket_mb=128")["engine"]["transfer"] < nccl["engine"]["transfer"]


def test_transfer_buffers_that_do_not_fit_beside_vllms_share_or_a_buffer_too_small_for_ipc_are_refused():
    with pytest.raises(ConfigError, match=r"the engine's weight-transfer buffers need 3.2 GiB beside vLLM's share"):
        _items("method=paper/dora", "rollout.weight_transfer=auto", "rollout.gpu_memory_utilization=0.99")
    full = ["method=paper/full", "rollout.weight_transfer=auto", "rollout.colocate=true"]
    _items(*full, "rollout.weight_transfer=buckets", "rollout.gpu_memory_utilization=0.73")  # 33.1 of 33.8 GiB
    with pytest.raises(ConfigError, match=r"rollout.colocate: the learner keeps 34.0 GiB .* transfer buffers 0.9"):
        _items(*full, "rollout.gpu_memory_utilization=0.73")
    seven = ["model=r1-distill-qwen-7b", "method=paper/dora", "rollout.weight_transfer=ipc", "rollout.colocate=true"]
    with pytest.raises(ConfigError, match=r"rollout.sync_bucket_mb: 512 MiB is smaller than .* \(1,040 MiB\)"):
        load_trial("study", [*seven, "rollout.gpu_memory_utilization=0.5"])
    load_trial("study", [*seven, "rollout.gpu_memory_utilization=0.5", "rollout.sync_bucket_mb=1040"])


def test_the_preflights_memory_check_counts_the_transfer_buffers():
    from rlvr.cluster.probe import FAIL, OK, memory_check

    over = ["method=paper/dora", "rollout.gpu_memory_utilization=0.99", "resources.gpu_memory_gib=null"]
    assert memory_check([load_trial("study", ["model=r1-distill-qwen-1.5b", *over])], 139).status == OK
    check = memory_check(
        [load_trial("study", ["model=r1-distill-qwen-1.5b", *over, "rollout.weight_transfer=auto"])], 139
    )
    assert check.status == FAIL and "weight-transfer buffers need 3.2 GiB" in check.detail
