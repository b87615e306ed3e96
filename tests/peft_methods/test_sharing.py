"""Which methods share a batch on the original base, and their export there: W0 + s B A from the exported LoRA
is the merged route's weights (fp32), at the rank the sharing check promises, servable with no base change."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
import torch

from rlvr.config.methods import method_info, method_names
from rlvr.config.sharing import batch_sharing_refusal, shared_adapter_rank, shares_batch
from rlvr.peft_methods.policy import build_policy
from rlvr.peft_methods.weights import from_bytes
from rlvr.sync.servable import check_servable, served_lora_rank

from .conftest import perturb, small_cfg, tiny_model

SHARED = [n for n in method_names() if shares_batch(small_cfg(n))]
# fp32: W_res + s B A against W0 + s (B A - B0 A0) differ by rounding of the weights' size (~1e-7 here).
WEIGHT_TOL = 1e-6
_PREFIX = "base_model.model."


def _trained(name: str, **overrides):
    policy = build_policy(tiny_model(), small_cfg(name, **overrides), total_steps=10)
    perturb(policy)
    return policy


def _weights_from_lora(update) -> dict[str, torch.Tensor]:
    """W0 + scaling * B A for every module of a plain-LoRA update, W0 from a fresh (original) base."""
    config, tensors = update.lora_config, from_bytes(update.lora_tensors)
    assert not config.get("rank_pattern") and not config.get("alpha_pattern")
    r, alpha = config["r"], config["lora_alpha"]
    scaling = alpha / r**0.5 if config.get("use_rslora") else alpha / r
    original = tiny_model().state_dict()
    out = {}
    for key, a in tensors.items():
        if ".lora_A." not in key:
            continue
        module = key.removeprefix(_PREFIX).removesuffix(".lora_A.weight")
        b = tensors[key.replace(".lora_A.", ".lora_B.")]
        out[f"{module}.weight"] = original[f"{module}.weight"].float() + scaling * (b.float() @ a.float())
    return out


def test_the_methods_that_share_a_batch_are_every_low_rank_delta_on_the_original_base():
    assert set(SHARED) == {
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
    reasons = {"dora": "magnitude", "ia3": "full rank", "ln_tuning": "layer-norm", "full": "every weight"}
    for name, why in reasons.items():
        assert why in batch_sharing_refusal(small_cfg(name))
    assert "not low-rank" in batch_sharing_refusal(small_cfg("miss", options={"init_weights": "bat"}))


def test_the_shared_rank_doubles_for_residual_inits_and_must_fit_vllm():
    ranks = [shared_adapter_rank(small_cfg(n, rank=8)) for n in ("lora", "adalora", "vera", "miss", "pissa")]
    assert ranks == [8, 8, 8, 8, 16]
    assert shared_adapter_rank(small_cfg("pissa", rank=None)) == 2 * 16  # the table's default rank
    assert shared_adapter_rank(small_cfg("full")) is None
    assert shares_batch(small_cfg("pissa", rank=256)) and shares_batch(small_cfg("lora", rank=512))
    assert "rank 1024, above vLLM's largest 512" in batch_sharing_refusal(small_cfg("milora", rank=512))


@pytest.mark.parametrize("name", SHARED)
def test_the_shared_export_is_the_merged_routes_weights(name):
    policy = _trained(name)
    update = policy.export(3, include_base=True, route="native")
    assert update.route == "native" and update.base_weights is None  # the engine keeps the original base
    rank = shared_adapter_rank(policy.cfg)
    assert update.lora_config["r"] == rank
    check_servable(update, served_lora_rank(rank))
    merged = from_bytes(policy.export(3, include_base=True, route="merged").base_weights)
    served = _weights_from_lora(update)
    assert set(served) == set(merged) == {f"{m}.weight" for m in policy.layers}
    gap = max((served[k] - merged[k]).abs().max().item() for k in merged)
    assert gap < WEIGHT_TOL, gap


@pytest.mark.parametrize("name", [n for n in SHARED if method_info(n).route == "native"])
def test_a_native_method_shares_its_own_export_unchanged(name):
    policy = _trained(name)
    own, shared = policy.export(2, include_base=False), policy.export(2, include_base=False, route="native")
    assert (own.lora_tensors, own.lora_config) == (shared.lora_tensors, shared.lora_config)


def test_asking_for_the_shared_export_leaves_the_methods_own_route_alone():
    policy = _trained("pissa")
    policy.export(1, include_base=False, route="native")
    own = policy.export(0, include_base=False)
    assert own.route == "converted" and own.base_weights is not None and own.lora_config["r"] == 8


@pytest.mark.parametrize("name", ["pissa", "miss", "vera"])
def test_the_shared_export_gathers_adapter_tensors_only(name):
    # under ZeRO-3 a gather makes its parameters whole on every rank; the shared export reads no base weight
    policy = _trained(name)
    asked: list[torch.nn.Parameter] = []

    @contextmanager
    def gather(params):
        asked.extend(params)
        yield

    plain = policy.export(1, include_base=False, route="native")
    gathered = policy.export(1, include_base=False, route="native", gather=gather)
    assert (gathered.lora_tensors, gathered.lora_config) == (plain.lora_tensors, plain.lora_config)
    trainable = {id(p) for p in policy.model.parameters() if p.requires_grad}
    assert asked and {id(p) for p in asked} <= trainable


@pytest.mark.parametrize("name", ["dora", "ia3", "full"])
def test_a_method_that_cannot_share_refuses_the_native_export_with_its_reason(name):
    with pytest.raises(ValueError, match=f"{name}: cannot export as native; .+ and .+"):
        _trained(name).export(1, include_base=False, route="native")
