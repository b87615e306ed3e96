"""Weight math for export: effective weights of adapted modules and LoRA forms, all in fp32, nothing in place.

The effective weight of an adapted linear layer is read off its own forward pass: with dropout off and the
base bias zeroed, ``layer(I)`` is ``W_eff^T`` for every method whose adapted layer stays linear in x (LoRA,
DoRA, VeRA, IA3, MiSS, OFT, BOFT, HRA, LoHa, LoKr, FourierFT, RandLoRA, RoAd, DeLoRA, SHiRA, ...). This
uses peft's own forward instead of re-deriving each method's merge formula, and never touches the
learner's weights: the base weight is swapped for the pristine fp32 copy inside ``functional_call``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from itertools import chain
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

ADAPTER = "default"


def effective_linear(layer: torch.nn.Module, base_weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(W_eff, b_eff) in fp32 of an adapted linear layer sitting on ``base_weight`` (fp32)."""
    import torch
    from torch.func import functional_call

    device = next(layer.parameters()).device
    state = {
        n: t.detach().float() if t.is_floating_point() else t
        for n, t in chain(layer.named_parameters(), layer.named_buffers())
    }
    state["base_layer.weight"] = base_weight.to(device)
    bias = state.get("base_layer.bias")
    was_training = layer.training
    layer.eval()
    try:
        with torch.no_grad(), _without_forward_hooks(layer):
            if bias is not None:
                state["base_layer.bias"] = torch.zeros_like(bias)
            eye = torch.eye(base_weight.shape[1], device=device)
            weight = functional_call(layer, state, (eye,)).T.contiguous()
            if bias is None:
                return weight, None
            # Some methods rescale the bias too (IA3, RoAd on biased projections): read it off f(0).
            state["base_layer.bias"] = bias
            eff_bias = functional_call(layer, state, (torch.zeros(1, base_weight.shape[1], device=device),))[0]
            return weight, eff_bias
    finally:
        layer.train(was_training)


@contextmanager
def _without_forward_hooks(module: torch.nn.Module) -> Iterator[None]:
    """The module's plain forward: ZeRO-3's hooks would fetch and release the substituted fp32 tensors as if
    they were its sharded parameters (the caller has gathered those already)."""
    saved = [(m, dict(m._forward_pre_hooks), dict(m._forward_hooks)) for m in module.modules()]
    try:
        for m, _, _ in saved:
            m._forward_pre_hooks.clear()
            m._forward_hooks.clear()
        yield
    finally:
        for m, pre, post in saved:
            m._forward_pre_hooks.update(pre)
            m._forward_hooks.update(post)


def effective_norm(layer: torch.nn.Module) -> torch.Tensor:
    """The trained copy of a norm layer under LN tuning."""
    return layer.ln_tuning_layers[ADAPTER].weight.detach().float()


def adalora_as_lora(layer: torch.nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """AdaLoRA's B (A * E) * s / (ranknum + 1e-5) as a plain LoRA (A', B') with scaling 1, masked ranks as zeros."""
    scale = layer.scaling[ADAPTER] / (layer.ranknum[ADAPTER].item() + 1e-5)
    a = (layer.lora_A[ADAPTER] * layer.lora_E[ADAPTER]).detach().float()
    b = layer.lora_B[ADAPTER].detach().float() * scale
    return a, b


def vera_as_lora(layer: torch.nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """VeRA's diag(l_b) B diag(l_d) A as a plain LoRA (A', B') with scaling 1: the shared frozen projections sliced
    to the layer's shape (as its forward slices them), the trained vectors folded in."""
    a = layer.vera_A[ADAPTER][:, : layer.in_features].float() * layer.vera_lambda_d[ADAPTER].detach().float()[:, None]
    b = layer.vera_B[ADAPTER][: layer.out_features, :].float() * layer.vera_lambda_b[ADAPTER].detach().float()[:, None]
    return a, b


def lora_factors(layer: torch.nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    return layer.lora_A[ADAPTER].weight.detach().float(), layer.lora_B[ADAPTER].weight.detach().float()


def to_bytes(tensors: dict[str, torch.Tensor]) -> bytes:
    from safetensors.torch import save

    return save({k: v.detach().contiguous().cpu() for k, v in tensors.items()})


def from_bytes(data: bytes) -> dict[str, torch.Tensor]:
    from safetensors.torch import load

    return load(data)
