"""Exports reproduce the learner's policy: base + export equals the adapter model (fp32, < 1e-5) on every route."""

from __future__ import annotations

import pytest
import torch
from peft import PeftModel

from rlvr.config.methods import adapter_refusal, method_info, method_names
from rlvr.peft_methods.policy import build_policy
from rlvr.peft_methods.weights import from_bytes, to_bytes
from rlvr.sync.update import PolicyUpdate

from .conftest import perturb, small_cfg, tiny_model, write_adapter

TOL = 1e-5
NON_MERGED = [n for n in method_names() if method_info(n).route != "merged"]


def _ids():
    return torch.randint(0, 128, (2, 12), generator=torch.Generator().manual_seed(1))


def _logits(model) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(input_ids=_ids()).logits


def _trained(name: str, **overrides):
    policy = build_policy(tiny_model(), small_cfg(name, **overrides), total_steps=10)
    perturb(policy)
    return policy


def _with_base(update) -> torch.nn.Module:
    """A fresh base with the update's base weights loaded (strict names: every sent tensor must exist)."""
    model = tiny_model()
    if update.base_weights is not None:
        weights = from_bytes(update.base_weights)
        missing = set(weights) - set(model.state_dict())
        assert not missing, missing
        model.load_state_dict(weights, strict=False)
    return model


@pytest.mark.parametrize("name", method_names())
def test_merged_export_reproduces_the_learner(name):
    policy = _trained(name)
    update = policy.export(version=3, include_base=False, route="merged")
    assert update.route == "merged" and update.lora_tensors is None
    assert (_logits(_with_base(update)) - _logits(policy.model)).abs().max() < TOL


@pytest.mark.parametrize("name", NON_MERGED)
def test_adapter_export_reproduces_the_learner(name, tmp_path):
    policy = _trained(name)
    update = policy.export(version=0, include_base=False)
    assert update.route == method_info(name).route
    served = PeftModel.from_pretrained(_with_base(update), write_adapter(update, tmp_path / "adapter"))
    assert (_logits(served) - _logits(policy.model)).abs().max() < TOL


def test_residual_base_is_sent_with_version_zero_or_when_asked():
    policy = _trained("pissa")
    assert policy.export(0, include_base=False).base_weights is not None
    assert policy.export(5, include_base=False).base_weights is None
    assert policy.export(5, include_base=True).base_weights is not None
    assert _trained("lora").export(0, include_base=True).base_weights is None


@pytest.mark.parametrize(
    "name, route", [("dora", "native"), ("vera", "converted"), ("full", "native"), ("lora", "converted")]
)
def test_export_refuses_a_route_the_method_cannot_take(name, route):
    with pytest.raises(ValueError, match=f"cannot export as {route}"):
        _trained(name).export(1, include_base=False, route=route)


def test_merged_export_sends_only_changed_tensors_in_model_dtype():
    model = tiny_model().to(torch.bfloat16)
    with torch.no_grad():  # Qwen2 initialises biases to zero, which any scaling leaves unchanged
        for layer in model.model.layers:
            layer.self_attn.q_proj.bias.normal_()
    policy = build_policy(
        model,
        small_cfg("ia3", target_modules=["q_proj", "down_proj"], options={"feedforward_modules": ["down_proj"]}),
        total_steps=10,
    )
    perturb(policy)
    weights = from_bytes(policy.export(1, include_base=False).base_weights)
    # IA3 scales q_proj's output, so its bias changes too; down_proj has no bias.
    assert set(weights) == {
        f"model.layers.{i}.{m}"
        for i in range(2)
        for m in ("self_attn.q_proj.weight", "self_attn.q_proj.bias", "mlp.down_proj.weight")
    }
    assert all(t.dtype == torch.bfloat16 for t in weights.values())


def test_full_finetuning_sends_every_trainable_tensor_after_version_zero_and_none_before():
    """No per-step comparison with the pristine copy: version 0 is the checkpoint the engines loaded, every later
    version carries every tensor, at the learner's value in the model dtype (tied embeddings once)."""
    model = tiny_model().to(torch.bfloat16)
    policy = build_policy(model, small_cfg("full"), total_steps=10)
    with torch.no_grad():
        policy.model.model.norm.weight.add_(0.5)
    assert not from_bytes(policy.export(0, include_base=True).base_weights)
    sent = from_bytes(policy.export(1, include_base=False).base_weights)
    params = dict(policy.model.named_parameters())
    assert set(sent) == set(params)
    assert all(t.dtype == torch.bfloat16 and torch.equal(t, params[n]) for n, t in sent.items())


@pytest.mark.parametrize("name", ["dora", "pissa", "adalora", "ln_tuning"])
def test_effective_weights_are_the_merged_weights_in_fp32(name):
    policy = _trained(name)
    effective = policy.effective_weights()
    merged = from_bytes(policy.export(1, include_base=False, route="merged").base_weights)
    assert set(effective) == {f"{m}.weight" for m in policy.layers}
    for key, w in effective.items():
        assert w.dtype == torch.float32 and torch.equal(w, merged[key])


@pytest.mark.parametrize("name", ["pissa", "milora", "full"])
def test_reference_policy_is_the_original_model(name):
    original = _logits(tiny_model())
    policy = _trained(name)
    with policy.disable_adapter():
        assert (_logits(policy.model) - original).abs().max() < TOL
    assert (_logits(policy.model) - original).abs().max() > 1e-3


@pytest.mark.parametrize("name", ["lora", "pissa", "adalora", "vera", "full"])
def test_checkpoint_state_restores_the_policy(name):
    policy = _trained(name)
    state = policy.trainable_state_dict()
    fresh = build_policy(tiny_model(), small_cfg(name), total_steps=10)
    fresh.load_trainable_state_dict(state)
    assert (_logits(fresh.model) - _logits(policy.model)).abs().max() < TOL


def test_optimizers_give_each_method_its_learning_rates():
    plus = _trained("lora_plus", options={"loraplus_lr_ratio": 2.0}).make_optimizer(1e-5, 0.0, (0.9, 0.99))
    assert sorted({g["lr"] for g in plus.param_groups if g["params"]}) == [1e-5, 2e-5]
    fa_policy = _trained("lora_fa")
    fa = fa_policy.make_optimizer(1e-5, 0.0, (0.9, 0.99))
    assert all(not p.requires_grad for n, p in fa_policy.model.named_parameters() if "lora_A" in n)
    assert all(g["betas"] == (0.9, 0.99) for g in fa.param_groups)


def test_adalora_penalty_equals_the_one_peft_adds_with_labels():
    policy = _trained("adalora")
    ids = _ids()
    with_penalty = policy.model(input_ids=ids, labels=ids).loss
    plain = policy.model.base_model.model(input_ids=ids, labels=ids).loss
    assert torch.allclose(policy.extra_loss(), with_penalty - plain, atol=1e-6)
    assert policy.extra_loss().requires_grad


def test_adalora_reallocates_rank_and_still_exports_exactly(tmp_path):
    policy = build_policy(
        tiny_model(), small_cfg("adalora", options={"target_r": 4, "tinit": 1, "tfinal": 2}), total_steps=8
    )
    opt = policy.make_optimizer(1e-2, 0.0, (0.9, 0.999))
    for step in range(8):
        loss = policy.model(input_ids=_ids()).logits.logsumexp(-1).mean() + policy.extra_loss()
        loss.backward()
        opt.step()
        policy.after_optimizer_step(step)
        opt.zero_grad()
    kept = sum(int((layer.lora_E["default"] != 0).sum()) for layer in policy.layers.values())
    assert kept == 4 * len(policy.layers)  # the budget ends at target_r per module on average
    update = policy.export(8, include_base=False)
    served = PeftModel.from_pretrained(tiny_model(), write_adapter(update, tmp_path / "a"))
    assert (_logits(served) - _logits(policy.model)).abs().max() < TOL


@pytest.mark.parametrize("name", method_names())
def test_every_export_passes_the_engines_servable_check(name):
    from rlvr.sync.servable import check_servable

    check_servable(_trained(name).export(0, include_base=True), max_lora_rank=8)


@pytest.mark.parametrize("name,route", [("dora", "merged"), ("full", "merged"), ("lora", "native")])
def test_export_gathers_one_module_at_a_time(name, route):
    # under ZeRO-3 each gather makes its parameters whole on every rank: never ask for the whole model at once
    from contextlib import contextmanager

    policy = _trained(name)
    asked: list[list[torch.nn.Parameter]] = []

    @contextmanager
    def gather(params):
        asked.append(list(params))
        yield

    plain = policy.export(version=1, include_base=False, route=route)
    gathered = policy.export(version=1, include_base=False, route=route, gather=gather)
    assert (gathered.base_weights, gathered.lora_tensors) == (plain.base_weights, plain.lora_tensors)
    total = sum(p.numel() for p in policy.model.parameters())
    assert asked and max(sum(p.numel() for p in ps) for ps in asked) < total / 4


AS_ADAPTER = [n for n in method_names() if adapter_refusal(small_cfg(n)) is None]


@pytest.mark.parametrize("name", AS_ADAPTER)
def test_original_base_adapter_reproduces_the_learner_on_the_original_base(name, tmp_path):
    # rlvr export --format adapter: one plain LoRA on the untouched base, residual inits and conversions included
    policy = _trained(name)
    tensors, config = policy.original_base_adapter()
    update = PolicyUpdate(0, "native", lora_tensors=to_bytes(tensors), lora_config=config)
    served = PeftModel.from_pretrained(tiny_model(), write_adapter(update, tmp_path / "adapter"))
    assert (_logits(served) - _logits(policy.model)).abs().max() < TOL


def test_the_methods_exported_as_adapters_are_every_lora_adalora_vera_and_miss():
    assert set(AS_ADAPTER) == {
        "lora",
        "rslora",
        "lora_plus",
        "lora_fa",
        "lora_rank1",
        "adalora",
        "pissa",
        "milora",
        "olora",
        "vera",
        "miss",
    }
    assert "not low-rank" in adapter_refusal(small_cfg("miss", options={"init_weights": "bat"}))


@pytest.mark.parametrize("name", ["dora", "ia3", "ln_tuning", "full", "loha"])
def test_a_method_that_is_no_low_rank_delta_refuses_the_adapter_form(name):
    with pytest.raises(ValueError, match=f"{name} cannot be exported as a LoRA adapter: .+"):
        _trained(name).original_base_adapter()
