"""Building every method on a tiny model: gradients reach only the adapter, counts match the formulas, and a
model that is not what the config asked for is refused."""

from __future__ import annotations

import pytest
import torch

from rlvr.config.methods import method_names, method_spec
from rlvr.peft_methods.build import AdapterMismatch, build_adapted, verify_adapted
from rlvr.peft_methods.policy import build_policy

from .conftest import TINY, small_cfg, tiny_model

H, FF, L = TINY.hidden_size, TINY.intermediate_size, TINY.num_layers
KV = H // TINY.num_heads * TINY.num_kv_heads
# (in, out) of each linear module of one tiny decoder layer.
DIMS = {
    "q_proj": (H, H),
    "k_proj": (H, KV),
    "v_proj": (H, KV),
    "o_proj": (H, H),
    "gate_proj": (H, FF),
    "up_proj": (H, FF),
    "down_proj": (FF, H),
}
ALL = list(DIMS)


def _ids():
    return torch.randint(0, 128, (2, 10), generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("name", method_names())
def test_forward_backward_reaches_only_the_adapter(name):
    policy = build_policy(tiny_model(), small_cfg(name), total_steps=10)
    policy.model.train()
    loss = policy.model(input_ids=_ids()).logits.float().logsumexp(-1).mean()
    extra = policy.extra_loss()
    (loss if extra is None else loss + extra).backward()
    trainable = {n for n, p in policy.model.named_parameters() if p.requires_grad}
    with_grad = {n for n, p in policy.model.named_parameters() if p.grad is not None}
    assert trainable and with_grad == trainable
    record = policy.record()
    assert record["verified"] and record["method"] == name and record["route"] == method_spec(name).route


def _lora(r, modules, extra_per_module=lambda i, o: 0):
    return L * sum(r * (i + o) + extra_per_module(i, o) for m, (i, o) in DIMS.items() if m in modules)


@pytest.mark.parametrize(
    "name, cfg_overrides, expected",
    [
        ("lora", {}, _lora(8, ALL)),
        ("dora", {}, _lora(8, ALL, lambda i, o: o)),  # + magnitude vector per output
        ("adalora", {}, _lora(8, ALL, lambda i, o: 8)),  # + singular values E
        ("vera", {}, L * sum(8 + o for i, o in DIMS.values())),  # lambda_d (r) + lambda_b (out)
        ("ia3", {}, L * sum(i if m == "down_proj" else o for m, (i, o) in DIMS.items())),  # ff scales the input
        ("ln_tuning", {}, L * H),
        ("miss", {}, L * 8 * sum(o for i, o in DIMS.values())),  # one r x out block per module
        ("lora_fa", {}, L * sum(8 * o for i, o in DIMS.values())),  # A frozen at init: only B (out x r) trains
        ("lora", {"target_modules": ["q_proj", "down_proj"], "rank": 4}, _lora(4, ["q_proj", "down_proj"])),
    ],
)
def test_trainable_count_matches_the_method_formula(name, cfg_overrides, expected):
    policy = build_policy(tiny_model(), small_cfg(name, **cfg_overrides), total_steps=10)
    assert policy.record()["trainable_params"] == expected


def test_lora_fa_counts_what_its_optimizer_trains():
    policy = build_policy(tiny_model(), small_cfg("lora_fa"), total_steps=10)
    policy.make_optimizer(1e-3, 0.0, (0.9, 0.999))
    trained = sum(p.numel() for p in policy.model.parameters() if p.requires_grad)
    assert policy.record()["trainable_params"] == trained


def test_full_finetuning_trains_every_tensor():
    model = tiny_model()
    total = sum(p.numel() for p in model.parameters())
    record = build_policy(model, small_cfg("full"), total_steps=10).record()
    assert record["trainable_params"] == total and record["trainable_pct"] == 100.0


def test_asking_for_dora_and_getting_plain_lora_is_caught():
    spec, base = method_spec("lora"), tiny_model()
    params = sum(p.numel() for p in base.parameters())
    plain = build_adapted(base, spec, small_cfg("lora", rank=8, alpha=16), total_steps=10)
    with pytest.raises(AdapterMismatch, match="use_dora: asked True, built False"):
        verify_adapted(plain, method_spec("dora"), small_cfg("dora", rank=8, alpha=16), params)


def test_asking_for_rslora_and_getting_plain_scaling_is_caught():
    base = tiny_model()
    params = sum(p.numel() for p in base.parameters())
    plain = build_adapted(base, method_spec("lora"), small_cfg("lora"), total_steps=10)
    with pytest.raises(AdapterMismatch, match="use_rslora"):
        verify_adapted(plain, method_spec("rslora"), small_cfg("rslora"), params)


def test_a_different_adapter_type_is_caught():
    base = tiny_model()
    params = sum(p.numel() for p in base.parameters())
    lora = build_adapted(base, method_spec("lora"), small_cfg("lora"), total_steps=10)
    with pytest.raises(AdapterMismatch, match="asked for a VeraConfig, the model has LoraConfig"):
        verify_adapted(lora, method_spec("vera"), small_cfg("vera"), params)


def test_missing_target_modules_are_caught():
    base = tiny_model()
    params = sum(p.numel() for p in base.parameters())
    narrow = build_adapted(base, method_spec("lora"), small_cfg("lora", target_modules=["q_proj"]), total_steps=10)
    with pytest.raises(AdapterMismatch, match="target_modules"):
        verify_adapted(narrow, method_spec("lora"), small_cfg("lora", target_modules=["q_proj", "v_proj"]), params)


def test_record_holds_the_resolved_peft_config():
    record = build_policy(tiny_model(), small_cfg("dora", alpha=32, target_modules=None), total_steps=10).record()
    assert record["peft_config"]["use_dora"] is True
    assert record["peft_config"]["r"] == 8 and record["peft_config"]["lora_alpha"] == 32
    assert set(record["modules"]) == {"q_proj", "v_proj"}  # peft's qwen2 default when none are given
    assert 0 < record["trainable_pct"] < 100


def test_milora_starts_on_the_smallest_singular_directions():
    base = tiny_model()
    w = base.model.layers[0].self_attn.q_proj.weight.detach().clone()
    policy = build_policy(base, small_cfg("milora", alpha=8), total_steps=10)
    layer = policy.layers["model.layers.0.self_attn.q_proj"]
    b, a = layer.lora_B["default"].weight.detach(), layer.lora_A["default"].weight.detach()
    s = torch.linalg.svdvals(w)
    assert torch.allclose(torch.linalg.svdvals(b @ a)[:8], s[-8:], atol=1e-5)
    # The residual base plus the adapter is the original weight.
    assert torch.allclose(layer.get_base_layer().weight + b @ a, w, atol=1e-6)
