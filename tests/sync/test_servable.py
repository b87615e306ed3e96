"""check_servable turns every adapter vLLM would reject into one clear error, before the engine sees it."""

from __future__ import annotations

import pytest
import torch
from peft import LoraConfig, get_peft_model, get_peft_model_state_dict
from safetensors.torch import save

from rlvr.config.schema import TinyModelConfig
from rlvr.models.tiny import build_model
from rlvr.sync.servable import UnservableUpdate, check_servable, served_lora_rank
from rlvr.sync.update import PolicyUpdate

TINY = TinyModelConfig(hidden_size=32, intermediate_size=64, num_layers=1, num_heads=2, num_kv_heads=1)


def update(version=3, route="native", base_weights=None, **lora):
    model = get_peft_model(build_model(TINY), LoraConfig(**{"r": 8, "target_modules": ["q_proj"], **lora}))
    return PolicyUpdate(
        version=version,
        route=route,
        lora_tensors=save(get_peft_model_state_dict(model)),
        lora_config=model.peft_config["default"].to_dict(),
        base_weights=base_weights,
    )


def test_plain_lora_and_rslora_within_the_rank_are_servable():
    check_servable(update(), 8)
    check_servable(update(use_rslora=True, r=1), 8)


@pytest.mark.parametrize(
    ("lora", "max_rank", "message"),
    [
        (
            {"use_dora": True},
            8,
            "lora_config.use_dora: True: vLLM does not support DoRA; export DoRA on the merged route",
        ),
        ({"r": 16}, 8, "lora_config.r: rank 16 exceeds the engine's max_lora_rank 8"),
        ({"rank_pattern": {"q_proj": 32}}, 16, "rank 32 exceeds the engine's max_lora_rank 16"),
        ({"modules_to_save": ["lm_head"]}, 8, "lora_config.modules_to_save"),
        ({"init_lora_weights": "pissa"}, 8, "init_lora_weights: 'pissa' changes the base"),
        ({}, None, "the engine was started without LoRA"),
    ],
)
def test_unservable_adapters_name_the_field_and_the_fix(lora, max_rank, message):
    with pytest.raises(UnservableUpdate, match="policy v3 \\(native\\) cannot be served") as err:
        check_servable(update(**lora), max_rank)
    assert message in str(err.value)


def test_dora_magnitude_tensors_are_caught_even_if_the_config_hides_dora():
    dora = update(use_dora=True)
    dora.lora_config["use_dora"] = False
    with pytest.raises(UnservableUpdate, match="non-LoRA tensor.*lora_magnitude_vector"):
        check_servable(dora, 8)


def test_tensor_rank_above_the_slot_is_caught_when_the_config_lies():
    big = update(r=16)
    big.lora_config["r"] = 8
    with pytest.raises(UnservableUpdate, match="has rank 16 above the engine's max_lora_rank 8"):
        check_servable(big, 8)


def test_routes_must_carry_what_they_need():
    with pytest.raises(UnservableUpdate, match="the native route never changes the base"):
        check_servable(update(base_weights=b"x"), 8)
    with pytest.raises(UnservableUpdate, match="route 'merged' needs base_weights and no adapter"):
        check_servable(PolicyUpdate(version=1, route="merged"), None)
    check_servable(PolicyUpdate(version=1, route="merged", base_weights=save({"w": torch.zeros(1)})), None)


def test_served_rank_rounds_up_to_vllm_slots():
    assert [served_lora_rank(r) for r in (1, 2, 8, 9, 300, 512)] == [1, 8, 8, 16, 320, 512]
    with pytest.raises(ValueError, match="max_lora_rank: 513 exceeds"):
        served_lora_rank(513)


def test_an_empty_adapter_is_rejected():
    empty = update()
    empty.lora_tensors = save({})
    with pytest.raises(UnservableUpdate, match="lora_tensors: no tensors"):
        check_servable(empty, 8)
