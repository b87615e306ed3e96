"""Segmented LoRA kernels for vLLM's CPU punica wrapper: the batch sorted into adapter segments, one matmul each.

vLLM's CPU kernels (vllm.lora.ops.torch_ops) gather a private copy of the adapter weights for every token
(``lora_b[indices]``) before an einsum; measured on the tiny model, that copy was ~85% of a LoRA rollout's time.
Here the rows are grouped by adapter index once per engine step (when the wrapper's metadata changes) and every
LoRA layer runs one matmul per adapter on its rows, so a batch that mixes K adapters costs per token what a
single-adapter batch costs.

They also fix what the stock kernels get wrong: a row with index -1 (a request without adapter) indexes
``lora_b[-1]``, the last slot's adapter, so in a batch mixing adapter and no-adapter requests the latter were
served an adapter. Here index -1 selects none: shrink writes zeros, expand adds nothing (or writes zeros when it
does not add), as vLLM's GPU kernels do.
"""

from __future__ import annotations

from typing import NamedTuple

import torch


class Segments(NamedTuple):
    """A batch's rows grouped by adapter index."""

    rows: int
    order: torch.Tensor | None  # a row order that groups the rows by adapter; None: already grouped
    spans: list[tuple[int, int, int]]  # (adapter index, start, stop) in that order; rows of index -1 in none


def segments(indices: torch.Tensor, rows: int) -> Segments:
    """The adapter segments of a batch of ``rows`` rows; one index serves every row (the stock kernels broadcast it)."""
    if indices.numel() == 1:
        index = int(indices)
        return Segments(rows, None, [(index, 0, rows)] if index >= 0 else [])
    order = None
    values, counts = torch.unique_consecutive(indices, return_counts=True)
    if values.numel() > 1 and len(set(values.tolist())) < values.numel():
        order = torch.argsort(indices, stable=True)
        values, counts = torch.unique_consecutive(indices[order], return_counts=True)
    spans, start = [], 0
    for value, count in zip(values.tolist(), counts.tolist()):
        if value >= 0:
            spans.append((value, start, start + count))
        start += count
    return Segments(rows, order, spans)


def _deltas(inputs: torch.Tensor, stacked: torch.Tensor, segs: Segments, dtype: torch.dtype) -> torch.Tensor:
    """inputs @ W[index].T for every row in segment order, from vLLM's stacked (slots, 1, out, in) weights;
    zeros for rows without adapter."""
    x = inputs.to(dtype)
    if segs.order is not None:
        x = x.index_select(0, segs.order)
    out = torch.zeros(segs.rows, stacked.shape[-2], dtype=dtype)
    for index, start, stop in segs.spans:
        w = stacked[index]
        w = w[0] if w.dim() == 3 else w
        torch.mm(x[start:stop], w.to(dtype).T, out=out[start:stop])
    return out


def _write(target: torch.Tensor, deltas: torch.Tensor, segs: Segments, add: bool) -> None:
    """target (+)= deltas, with the deltas' rows in segment order."""
    if segs.order is None and add:
        target.add_(deltas)
    elif segs.order is None:
        target.copy_(deltas)
    elif add:
        target.index_add_(0, segs.order, deltas)
    else:
        target.index_copy_(0, segs.order, deltas)


def shrink(inputs, lora_a, output, segs: Segments, scaling: float) -> None:
    deltas = _deltas(inputs, lora_a, segs, output.dtype)
    if scaling != 1.0:
        deltas.mul_(scaling)
    _write(output[:, : deltas.shape[1]], deltas, segs, add=False)


def expand(inputs, lora_b, output, segs: Segments, add_inputs: bool, offset: int = 0, size: int | None = None) -> None:
    """output[:, offset:offset + size] (+)= the deltas; without a size, the columns the deltas and output share
    (the adapter and the model may pad the output differently)."""
    if add_inputs and not segs.spans:
        return  # no row has an adapter
    deltas = _deltas(inputs, lora_b, segs, output.dtype)
    size = min(deltas.shape[1], output.shape[1]) if size is None else size
    _write(output[:, offset : offset + size], deltas[:, :size], segs, add_inputs)


# The CPU punica wrapper's methods, over the segments its metadata update computed for the step. vLLM runs the
# sgmv ("prefill") variants on every step on CPU; both variants get the same per-token indices.
def _update_metadata(self, *args, **kwargs):
    _STOCK["update_metadata"](self, *args, **kwargs)
    indices = self.token_lora_indices
    self.rlvr_segments = segments(indices, indices.numel())


def _shrink(self, y, x, w_t_all, scale):
    shrink(x, w_t_all, y, self.rlvr_segments, scale)


def _expand(self, y, x, w_t_all, add_inputs):
    expand(x, w_t_all, y, self.rlvr_segments, add_inputs)


def _expand_slice(self, y, x, w_t_all, y_offset, y_slice_size, add_inputs):
    expand(x, w_t_all, y, self.rlvr_segments, add_inputs, y_offset, y_slice_size)


# The per-call kernels the wrapper's logits and full-linear paths call with the sampler's indices.
def bgmv_shrink(inputs, lora_a_weights, output_tensor, lora_indices_tensor, scaling: float = 1.0):
    shrink(inputs, lora_a_weights, output_tensor, segments(lora_indices_tensor, inputs.shape[0]), scaling)


def bgmv_expand(inputs, lora_b_weights, output_tensor, lora_indices_tensor, add_inputs: bool = True):
    expand(inputs, lora_b_weights, output_tensor, segments(lora_indices_tensor, inputs.shape[0]), add_inputs)


_METHODS = {
    "update_metadata": _update_metadata,
    "_shrink_prefill": _shrink,
    "_shrink_decode": _shrink,
    "_expand_prefill": _expand,
    "_expand_decode": _expand,
    "_expand_slice_prefill": _expand_slice,
    "_expand_slice_decode": _expand_slice,
}
_STOCK: dict = {}


def install_segmented_lora_kernels() -> None:
    """Patch vLLM's CPU punica wrapper (its class, so wrappers already built follow). Idempotent."""
    from vllm.lora.punica_wrapper import punica_cpu

    cls = punica_cpu.PunicaWrapperCPU
    _STOCK.setdefault("update_metadata", cls.update_metadata)
    for name, method in _METHODS.items():
        setattr(cls, name, method)
    punica_cpu.bgmv_shrink, punica_cpu.bgmv_expand = bgmv_shrink, bgmv_expand
