"""MiLoRA's initialisation (not in peft): the adapter starts on the SMALLEST r singular triplets of W.

Mirrors peft's PiSSA init (same factor split and scaling) with the other end of the spectrum. The residual
base W - s B0 A0 is written by the policy, which owns the pristine fp32 copy of W.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def milora_init(model: torch.nn.Module, adapter: str = "default") -> None:
    import torch
    from peft.tuners.lora import LoraLayer

    with torch.no_grad():
        for layer in model.modules():
            if not isinstance(layer, LoraLayer) or adapter not in layer.lora_A:
                continue
            weight = layer.get_base_layer().weight
            r, scale = layer.r[adapter], layer.scaling[adapter]
            u, s, vh = torch.linalg.svd(weight.float(), full_matrices=False)
            root = (s[-r:] / scale).sqrt()
            a, b = root[:, None] * vh[-r:], u[:, -r:] * root[None, :]
            layer.lora_A[adapter].weight.copy_(a.to(layer.lora_A[adapter].weight.dtype))
            layer.lora_B[adapter].weight.copy_(b.to(layer.lora_B[adapter].weight.dtype))
