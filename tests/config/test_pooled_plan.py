"""The pooled plan (rlvr.config.pooled_plan): tenants of one pool key share one decode and one learner; its
arithmetic on a small grid checked by hand, the bounds on K, and the trials that stay alone."""

import math

import pytest

from rlvr.config.loader import ConfigError, load_trial
from rlvr.config.memory_plan import DTYPE_BYTES, decode_seconds, plan_trial, total_params, train_seconds
from rlvr.config.memory_report import plan_command
from rlvr.config.pooled_plan import pooled_plan, tenant_refusal
from rlvr.pool.warm import pool_key

STUDY = ["model=r1-distill-qwen-1.5b", "steps=10", "checkpoint.every_steps=10"]


def _trials(*methods_and_seeds, over=()):
    return [
        (f"m/p/{method}/seed{seed}", load_trial("study", [*STUDY, f"method=paper/{method}", f"seed={seed}", *over]))
        for method, seed in methods_and_seeds
    ]


def test_k_tenants_decode_once_reading_the_base_once_and_update_one_after_another():
    trials = _trials(*[("lora", s) for s in (1, 2, 3, 4, 5)], ("dora", 1))
    plan = pooled_plan(trials, tenants=2, key=pool_key)
    [group] = plan.groups
    assert group.k == 2 and group.pools == [[0, 1], [2, 3], [4]] and group.gpus == 2
    cfg = trials[0][1]
    arch, b = cfg.model.architecture, DTYPE_BYTES[cfg.model.dtype]
    # by hand, from the solo plan's bandwidth model: a decoding step reads the base once, and each running
    # sequence's KV cache (half-full on average): K and V of every layer's KV heads per token
    completion, context, seqs = 16384, 512 + 16384, 16 * 8
    head_dim = arch.hidden_size // arch.num_attention_heads
    kv_per_token = 2 * arch.num_hidden_layers * arch.num_key_value_heads * head_dim * b
    bandwidth = 4.8e12 * 0.5
    base = completion * total_params(arch) * b / bandwidth
    per_tenant = completion * seqs * context / 2 * kv_per_token / bandwidth
    assert decode_seconds(cfg, 2) == pytest.approx(base + 2 * per_tenant)
    assert decode_seconds(cfg) == pytest.approx(base + per_tenant)
    update = 128 * context * 8 * total_params(arch) / (989e12 * 0.35)  # checkpointing: 8 FLOPs per parameter
    assert train_seconds(cfg) == pytest.approx(update)
    pooled = 2 * 10 * (2 * (base + 2 * per_tenant + 2 * update) + (base + per_tenant + update)) / 3600
    assert group.gpu_hours == pytest.approx(pooled)
    assert plan.gpu_hours == pytest.approx(pooled + plan_trial(trials[-1][1]).gpu_hours)
    solo = sum(plan_trial(c).gpu_hours for _, c in trials)
    # what sharing saves is the base's reads: one per pool of two instead of one per trial
    assert solo - plan.gpu_hours == pytest.approx(2 * 10 * 2 * base / 3600)
    # a pool's tenants count as one trial against max_concurrent: three pools and DoRA, 2 GPUs each
    assert plan.peak_gpus(None) == 8 and plan.peak_gpus(4) == 8 and plan.peak_gpus(3) == 6


def test_methods_that_cannot_share_a_batch_or_a_learner_stay_alone_with_the_reason():
    plan = pooled_plan(_trials(("dora", 1), ("ia3", 1), ("ln_tuning", 1), ("full", 1), ("lora", 1)), 4, pool_key)
    assert [label.split("/")[2] for label, _, _ in plan.solo] == ["dora", "ia3", "ln_tuning", "full"]
    assert [g.labels for g in plan.groups] == [["m/p/lora/seed1"]]
    assert "DoRA" in plan.solo[0][2] and "full rank" in plan.solo[3][2]
    ds = load_trial("study", [*STUDY, "method=paper/lora", "learner.backend=deepspeed", "learner.num_learners=2"])
    assert "deepspeed learner of 2 rank(s)" in tenant_refusal(ds)
    assert tenant_refusal(load_trial("study", [*STUDY, "method=paper/lora", "rollout.engine=hf"])) is not None
    off = pooled_plan(_trials(("lora", 1), ("lora", 2)), 1, pool_key)
    assert off.groups == [] and {why for _, _, why in off.solo} == {"sweep.tenants is 1"}


def test_trials_share_a_pool_only_with_the_same_pool_key():
    native = _trials(("pissa", 2), over=["rollout.sync_route=native"])
    plan = pooled_plan(_trials(("lora", 1), ("rslora", 1), ("lora", 2), ("pissa", 1)) + native, 4, pool_key)
    # LoRA r16, rsLoRA r32 and PiSSA as rank 64 start their engines with different LoRA ranks: three keys
    assert [[label.split("/", 2)[-1] for label in g.labels] for g in plan.groups] == [
        ["lora/seed1", "lora/seed2"],
        ["rslora/seed1"],
        ["pissa/seed2"],
    ]
    # PiSSA's own route is converted: its config is not rewritten to join, so it runs alone and says how to join
    assert [(label.split("/", 2)[-1], "sync_route: native" in why) for label, _, why in plan.solo] == [
        ("pissa/seed1", True)
    ]


def test_the_kv_cache_bounds_k_when_every_tenants_batch_at_full_length_would_not_fit():
    [group] = pooled_plan(_trials(*[("lora", s) for s in range(1, 7)]), 8, pool_key).groups
    cfg = group.configs[0]
    per_seq = 2 * 28 * 2 * 128 * 2 * (512 + 16384) / 2**30  # K and V, 28 layers, 2 KV heads of 128, bf16
    slot = 16 * 28 * (2 * (1536 + 1536) + 2 * (1536 + 256) + 3 * (1536 + 8960)) * 2 / 2**30  # A and B, r16
    free = 0.9 * 139 - plan_trial(cfg).actors[0].items["weights"] - 2.0
    kv = max(k for k in range(1, 9) if k * 128 <= math.floor((free - k * slot) / per_seq))
    assert kv == 2 and group.bounds["KV cache"] == 2 and group.k == 2 and group.binding == "KV cache"
    assert "holds" in " ".join(group.engine.notes) and group.engine.items["adapter_slots"] == pytest.approx(2 * slot)
    short = ["rollout.max_new_tokens=1024"]
    [group] = pooled_plan(_trials(*[("lora", s) for s in range(1, 7)], over=short), 4, pool_key).groups
    assert group.bounds["KV cache"] > 4 and group.k == 4 and group.binding == "max_loras"


def test_the_learner_bounds_k_by_the_base_once_and_each_tenants_state():
    # PiSSA tenants each keep their residual weights (W0 - B0 A0) beside the shared base: on a 30 GiB GPU two fit
    over = ["rollout.max_new_tokens=1024", "eval.max_new_tokens=1024", "resources.gpu_memory_gib=30"]
    over += ["rollout.sync_route=native"]
    [group] = pooled_plan(_trials(*[("pissa", s) for s in range(1, 5)], over=over), 4, pool_key).groups
    items = group.learner.items
    per_tenant = (items["adapters"] + items["optimizer"] + items["residual"]) / group.k
    update = items["gradients"] + items["activations"] + items["working"]
    bound = math.floor((30 * 0.9 - items["weights"] - update) / per_tenant)
    assert group.bounds["learner memory"] == bound == 2 and group.k == 2 and group.binding == "learner memory"
    assert items["residual"] == pytest.approx(2 * 28 * (2 * 1536 * 1536 + 2 * 1536 * 256 + 3 * 1536 * 8960) * 2 / 2**30)


def test_rlvr_plan_prints_the_pooled_plan_beside_an_unchanged_solo_plan():
    solo = plan_command("paper-1.5b", [])
    both = plan_command("paper-1.5b", [], key=pool_key)
    assert both.startswith(solo) and "~2,586 GPU-hours" in solo
    pooled = both[len(solo) :]
    assert "bound by KV cache" in pooled and "alone: dora/seed42" in pooled and "alone: full/seed42" in pooled
    assert "solo -> pooled: 28 -> " in pooled and "of solo)" in pooled
    assert "learner of 2 rank(s)" in plan_command("paper-7b", [], key=pool_key)
    assert "sweep.pools is false" in plan_command("paper-1.5b", ["pools=false"], key=pool_key)


def test_rlvr_plan_of_a_model_without_architecture_numbers_is_one_config_error():
    with pytest.raises(ConfigError, match="model 'tiny-qwen2' has no model.architecture"):
        plan_command("demo-cpu", [], key=pool_key)
