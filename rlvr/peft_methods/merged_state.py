"""The whole merged model, tensor by tensor, as vLLM's weight transfer backends send it (rlvr.learner.transfer).

vLLM's NCCL and IPC engines load through its layerwise reload, which rebuilds a layer from the tensors that
arrive and keeps its own for a layer that gets none (vllm model_executor/model_loader/reload/layerwise.py): a
packed layer sent in part (q_proj without k_proj and v_proj) would lose the parts not sent. So this stream is
every tensor of the checkpoint, in the policy's dtype, under its HF name: the adapted modules' merged weights
(from the pristine fp32 copy, as the bucketed export computes them), every other parameter as the learner holds
it. Unlike the bucketed export (``AdapterPolicy._merged_weights``), which sends the adapted modules' tensors only
(every trainable one for full fine-tuning), everything is sent, GPU to GPU.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from rlvr.peft_methods.base import Gather
from rlvr.peft_methods.build import _HF_PREFIX
from rlvr.peft_methods.weights import ADAPTER, effective_linear, effective_norm

if TYPE_CHECKING:
    import torch

    from rlvr.peft_methods.policy import AdapterPolicy


def _owner(name: str, layers: dict) -> str | None:
    """The adapted module a parameter name belongs to (its base layer or its adapter), if any."""
    parts = name.split(".")
    for end in range(len(parts) - 1, 0, -1):
        prefix = ".".join(parts[:end])
        if prefix in layers:
            return prefix
    return None


def merged_names(policy: AdapterPolicy) -> list[tuple[str, torch.Size, str]]:
    """(HF name, shape, where it comes from) of every tensor the stream yields, in order: where is
    ``"param:<learner name>"`` for a parameter sent as held, ``"weight:<module>"`` / ``"bias:<module>"`` for an
    adapted module's merged weight and bias. Tied parameters appear once (named_parameters' rule, which is how
    the checkpoint stores them)."""
    out, seen = [], set()
    for full, p in policy.model.named_parameters():
        name = full.removeprefix(_HF_PREFIX)
        module = _owner(name, policy.layers)
        if module is None:
            out.append((name, _full_shape(p), f"param:{full}"))
            continue
        if module in seen:
            continue
        seen.add(module)
        base = policy.layers[module].get_base_layer()
        out.append((f"{module}.weight", _full_shape(base.weight), f"weight:{module}"))
        if getattr(base, "bias", None) is not None:
            out.append((f"{module}.bias", _full_shape(base.bias), f"bias:{module}"))
    return out


def _full_shape(p: torch.Tensor) -> torch.Size:
    """A parameter's whole shape (ZeRO-3 keeps a partition in .data and the full shape in ds_shape)."""
    import torch

    return torch.Size(getattr(p, "ds_shape", p.shape))


def merged_state(policy: AdapterPolicy, gather: Gather) -> Iterator[tuple[str, torch.Tensor]]:
    """Every tensor of ``merged_names``, in its order, as fresh tensors in the policy's dtype on the learner's
    device. Under ZeRO-3 each yield happens inside the gather of its parameters (a collective): every rank must
    iterate the stream in lockstep."""
    dtype = policy.dtype
    params = dict(policy.model.named_parameters())
    for name, _, source in merged_names(policy):
        kind, _, key = source.partition(":")
        if kind == "param":
            p = params[key]
            with gather([p]):
                yield name, p.detach().to(dtype, copy=True)
            continue
        if kind == "bias":
            continue  # sent right after its module's weight, from the same gather
        layer = policy.layers[key]
        with gather(layer.parameters()):
            if hasattr(layer, "ln_tuning_layers"):
                w, b = effective_norm(layer), getattr(layer.ln_tuning_layers[ADAPTER], "bias", None)
                b = None if b is None else b.detach()
            else:
                w, b = effective_linear(layer, policy._adapter_base(key))
            yield name, w.to(dtype, copy=True)
            if b is not None:
                yield f"{key}.bias", b.to(dtype, copy=True)
