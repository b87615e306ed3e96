"""Segmented replacements for vLLM's CPU LoRA kernels (vllm.lora.ops.torch_ops): one matmul per adapter.

The stock kernels gather a private copy of the adapter weights for every token (``lora_b[indices]``) before an
einsum; measured on the tiny model, that copy was ~85% of a LoRA rollout's time (7x slower than merged weights).
These group the batch's rows by adapter index and run one matmul per adapter on its rows, so a batch that
mixes K adapters costs per token what a single-adapter batch costs.

They also fix what the stock kernels get wrong: a row with index -1 (a request without adapter) indexes
``lora_b[-1]``, the last slot's adapter, so in a batch mixing adapter and no-adapter requests the latter were
served an adapter. Here index -1 selects no adapter: shrink writes zeros, expand adds nothing (or writes zeros
when it does not add), which is what vLLM's GPU kernels do.
"""

from __future__ import annotations

import torch

_OPS = ("bgmv_shrink", "bgmv_expand", "bgmv_expand_slice")


def _segments(indices: torch.Tensor, rows: int) -> list[tuple[int, slice | torch.Tensor]]:
    """(adapter index, its rows) for every adapter in the batch; rows of index -1 belong to none.

    Rows come as slices when each adapter's rows are contiguous (a batch submitted grouped by adapter), else as
    index tensors. A single index covers every row, as the stock kernels broadcast it.
    """
    if indices.numel() == 1:
        index = int(indices)
        return [(index, slice(0, rows))] if index >= 0 else []
    values, counts = torch.unique_consecutive(indices, return_counts=True)
    values, counts = values.tolist(), counts.tolist()
    if len(set(values)) == len(values):
        starts = [0]
        for c in counts:
            starts.append(starts[-1] + c)
        return [(v, slice(s, s + c)) for v, s, c in zip(values, starts, counts) if v >= 0]
    return [(v, (indices == v).nonzero().squeeze(1)) for v in sorted(set(values)) if v >= 0]


def _weight(stacked: torch.Tensor, index: int, dtype: torch.dtype) -> torch.Tensor:
    """One adapter's (out, in) matrix from vLLM's stacked (slots, 1, out, in) or (slots, out, in) weights."""
    w = stacked[index]
    return (w[0] if w.dim() == 3 else w).to(dtype)


def _covers_all(segments, rows: int) -> bool:
    return sum(r.stop - r.start if isinstance(r, slice) else r.numel() for _, r in segments) == rows


def bgmv_shrink(inputs, lora_a_weights, output_tensor, lora_indices_tensor, scaling: float = 1.0):
    segments = _segments(lora_indices_tensor, inputs.shape[0])
    rank = lora_a_weights.shape[-2]
    out = output_tensor[:, :rank]
    if not _covers_all(segments, inputs.shape[0]):
        out.zero_()
    x = inputs.to(output_tensor.dtype)
    for index, rows in segments:
        out[rows] = scaling * (x[rows] @ _weight(lora_a_weights, index, x.dtype).T)


def _expand_into(inputs, weights, out, lora_indices_tensor, add_inputs: bool, width: int | None) -> None:
    """out[rows] (+)= inputs[rows] @ W[index].T per adapter, keeping the first ``width`` output columns."""
    segments = _segments(lora_indices_tensor, inputs.shape[0])
    if not add_inputs and not _covers_all(segments, inputs.shape[0]):
        out.zero_()
    x = inputs.to(out.dtype)
    for index, rows in segments:
        delta = x[rows] @ _weight(weights, index, x.dtype).T
        if width is not None:
            delta = delta[:, :width]
        if add_inputs:
            out[rows] += delta
        else:
            out[rows] = delta


def bgmv_expand(inputs, lora_b_weights, output_tensor, lora_indices_tensor, add_inputs: bool = True):
    # the adapter and the model may pad the output differently: the common columns
    width = min(lora_b_weights.shape[-2], output_tensor.shape[1])
    _expand_into(inputs, lora_b_weights, output_tensor[:, :width], lora_indices_tensor, add_inputs, width)


def bgmv_expand_slice(
    inputs, lora_b_weights, output_tensor, lora_indices_tensor, slice_offset: int, slice_size: int, add_inputs=True
):
    out = output_tensor[:, slice_offset : slice_offset + slice_size]
    _expand_into(inputs, lora_b_weights, out, lora_indices_tensor, add_inputs, None)


_SEGMENTED = {"bgmv_shrink": bgmv_shrink, "bgmv_expand": bgmv_expand, "bgmv_expand_slice": bgmv_expand_slice}


def install_segmented_lora_kernels() -> None:
    """Put the segmented kernels where vLLM's CPU punica wrapper and the stock sgmv kernels look them up
    (the sgmv kernels expand per-sequence indices to per-token ones and call bgmv). Idempotent."""
    from vllm.lora.ops.torch_ops import lora_ops
    from vllm.lora.punica_wrapper import punica_cpu

    for module in (lora_ops, punica_cpu):
        for name in _OPS:
            setattr(module, name, _SEGMENTED[name])
