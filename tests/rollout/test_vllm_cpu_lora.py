"""The single-adapter fast path gives vLLM's CPU LoRA kernels' numbers, for one adapter and for mixed batches."""

from __future__ import annotations

import pytest
import torch

from rlvr.rollout.vllm_cpu_lora import _single_adapter, install_single_adapter_fast_path

lora_ops = pytest.importorskip("vllm.lora.ops.torch_ops.lora_ops")


def _case(indices: list[int]):
    g = torch.Generator().manual_seed(len(indices) + sum(indices))
    tokens, rank, width = len(indices), 8, 48
    return {
        "x": torch.randn(tokens, width, generator=g),
        "a": torch.randn(3, 1, rank, width, generator=g),  # 3 adapter slots
        "h": torch.randn(tokens, rank, generator=g),
        "b": torch.randn(3, 1, width, rank, generator=g),
        "out": torch.randn(tokens, 2 * width, generator=g),
        "idx": torch.tensor(indices),
    }


@pytest.mark.parametrize("indices", [[1] * 7, [-1] * 5, [0, 2, 2, 1, -1], [2]], ids=["one", "last-slot", "mixed", "single-token"])
def test_fast_path_matches_the_kernels(indices):
    import vllm.lora.ops.torch_ops as torch_ops  # the package keeps the unwrapped kernels

    c = _case(indices)
    got, want = torch.zeros(len(indices), 8), torch.zeros(len(indices), 8)
    _single_adapter(torch_ops.bgmv_shrink)(c["x"], c["a"], got, c["idx"], 0.5)
    torch_ops.bgmv_shrink(c["x"], c["a"], want, c["idx"], 0.5)
    torch.testing.assert_close(got, want)

    got, want = c["out"].clone(), c["out"].clone()
    _single_adapter(torch_ops.bgmv_expand)(c["h"], c["b"], got, c["idx"], add_inputs=True)
    torch_ops.bgmv_expand(c["h"], c["b"], want, c["idx"], add_inputs=True)
    torch.testing.assert_close(got, want)

    got, want = c["out"].clone(), c["out"].clone()
    _single_adapter(torch_ops.bgmv_expand_slice)(c["h"], c["b"], got, c["idx"], 48, 48, True)
    torch_ops.bgmv_expand_slice(c["h"], c["b"], want, c["idx"], 48, 48, True)
    torch.testing.assert_close(got, want)


def test_install_wraps_each_kernel_once_where_the_cpu_wrapper_and_sgmv_find_it():
    from vllm.lora.punica_wrapper import punica_cpu

    install_single_adapter_fast_path()
    first = punica_cpu.bgmv_shrink
    install_single_adapter_fast_path()
    assert punica_cpu.bgmv_shrink is first
    for module in (lora_ops, punica_cpu):
        for name in ("bgmv_shrink", "bgmv_expand", "bgmv_expand_slice"):
            wrapped = getattr(module, name)
            assert wrapped.rlvr_single_adapter and not getattr(wrapped.__wrapped__, "rlvr_single_adapter", False)
