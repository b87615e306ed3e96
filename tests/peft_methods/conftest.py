"""Tiny models and small method configs shared by the peft_methods tests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from rlvr.config.methods import method_spec
from rlvr.config.schema import ALL_LINEAR, MethodConfig, TinyModelConfig
from rlvr.models.tiny import build_model

TINY = TinyModelConfig(
    hidden_size=64,
    intermediate_size=128,
    num_layers=2,
    num_heads=4,
    num_kv_heads=2,
    max_position_embeddings=128,
    pretrain_steps=0,
)
# The model the vLLM tests serve (head_dim 32: vLLM's CPU attention has no kernel for head_dim 16).
SERVED = TinyModelConfig(
    hidden_size=128,
    intermediate_size=256,
    num_layers=2,
    num_heads=4,
    num_kv_heads=2,
    max_position_embeddings=128,
    pretrain_steps=0,
    seed=3,
)

# Settings the tiny shapes need: AdaLoRA's target below its initial rank, RoAd groups dividing k/v's width 32;
# FourierFT's default scaling 150 on randomly perturbed spectra inflates activations until fp32 rounding alone
# exceeds the 1e-5 equality tolerance.
TINY_OPTIONS = {
    "adalora": {"target_r": 4},
    "road": {"group_size": 8},
    "ia3": {"feedforward_modules": ["down_proj"]},
    "fourierft": {"scaling": 10.0},
}


@pytest.fixture(autouse=True)
def _one_thread_and_seeded():
    torch.set_num_threads(1)
    torch.manual_seed(0)  # peft initialises adapters from the global generator


def tiny_model() -> torch.nn.Module:
    return build_model(TINY)


def small_cfg(name: str, **overrides) -> MethodConfig:
    """All seven linear modules (the norms for LN tuning), rank 8 (1 for lora_rank1), no dropout."""
    spec = method_spec(name)
    rank = (1 if name == "lora_rank1" else 8) if spec.has_rank else None
    targets = None if spec.config_class is None else ["post_attention_layernorm"] if name == "ln_tuning" else ALL_LINEAR
    fields = dict(name=name, rank=rank, dropout=0.0, target_modules=targets, options=TINY_OPTIONS.get(name, {}))
    return MethodConfig(**{**fields, **overrides})


def perturb(policy, seed: int = 0, scale: float = 0.05) -> None:
    """Move every trainable tensor off its init so adapters are non-trivial (LoRA's B starts at zero)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in policy.model.parameters():
            if p.requires_grad:
                p.add_(scale * torch.randn(p.shape, generator=g).to(p.dtype))


def write_adapter(update, path: Path) -> Path:
    """A saved-adapter directory (what peft's from_pretrained and vLLM's LoRARequest read)."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "adapter_config.json").write_text(json.dumps(update.lora_config))
    (path / "adapter_model.safetensors").write_bytes(update.lora_tensors)
    return path
