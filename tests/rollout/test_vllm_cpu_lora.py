"""The segmented CPU LoRA kernels give every row its own adapter's delta, and rows without adapter none."""

from __future__ import annotations

import pytest
import torch

from rlvr.rollout import vllm_cpu_lora
from rlvr.rollout.vllm_cpu_lora import install_segmented_lora_kernels

lora_ops = pytest.importorskip("vllm.lora.ops.torch_ops.lora_ops")
RANK, WIDTH, SLOTS = 8, 48, 3
CASES = {
    "one": [1] * 7,
    "no-adapter": [-1] * 5,
    "grouped": [0, 0, 2, 2, 2, 1, -1, -1],
    "interleaved": [0, 2, 2, 1, -1, 0, 1, 2, -1, 0],
    "single-token": [2],
}


def _case(indices: list[int]):
    g = torch.Generator().manual_seed(len(indices) + sum(indices))
    tokens = len(indices)
    return {
        "x": torch.randn(tokens, WIDTH, generator=g),
        "a": torch.randn(SLOTS, 1, RANK, WIDTH, generator=g),
        "h": torch.randn(tokens, RANK, generator=g),
        "b": torch.randn(SLOTS, 1, WIDTH, RANK, generator=g),
        "out": torch.randn(tokens, 2 * WIDTH, generator=g),
        "idx": torch.tensor(indices),
    }


def _per_row(inputs, stacked, indices):
    """Each row times its own adapter's matrix, one row at a time; zeros for index -1."""
    return torch.stack([
        inputs[i] @ stacked[j, 0].T if j >= 0 else torch.zeros(stacked.shape[2]) for i, j in enumerate(indices.tolist())
    ])


@pytest.mark.parametrize("indices", CASES.values(), ids=CASES.keys())
def test_each_row_gets_its_own_adapters_delta_and_no_adapter_rows_none(indices):
    c = _case(indices)
    got = torch.full((len(indices), RANK), 7.0)  # stale buffer contents must not survive
    vllm_cpu_lora.bgmv_shrink(c["x"], c["a"], got, c["idx"], 0.5)
    torch.testing.assert_close(got, 0.5 * _per_row(c["x"], c["a"], c["idx"]))

    delta = _per_row(c["h"], c["b"], c["idx"])
    got = c["out"].clone()
    vllm_cpu_lora.bgmv_expand(c["h"], c["b"], got, c["idx"], add_inputs=True)
    torch.testing.assert_close(got, torch.cat([c["out"][:, :WIDTH] + delta, c["out"][:, WIDTH:]], 1))

    got = c["out"].clone()
    vllm_cpu_lora.bgmv_expand_slice(c["h"], c["b"], got, c["idx"], WIDTH, WIDTH, True)
    torch.testing.assert_close(got, torch.cat([c["out"][:, :WIDTH], c["out"][:, WIDTH:] + delta], 1))

    got = c["out"].clone()
    vllm_cpu_lora.bgmv_expand_slice(c["h"], c["b"], got, c["idx"], WIDTH, WIDTH, False)
    torch.testing.assert_close(got, torch.cat([c["out"][:, :WIDTH], delta], 1))


def test_rows_with_an_adapter_get_the_stock_kernels_numbers():
    import vllm.lora.ops.torch_ops as torch_ops  # the package keeps the stock kernels

    c = _case(CASES["interleaved"])
    keep = c["idx"] >= 0
    got, want = torch.zeros(len(c["idx"]), RANK), torch.zeros(len(c["idx"]), RANK)
    vllm_cpu_lora.bgmv_shrink(c["x"], c["a"], got, c["idx"], 0.5)
    torch_ops.bgmv_shrink(c["x"], c["a"], want, c["idx"], 0.5)
    torch.testing.assert_close(got[keep], want[keep])


def test_the_stock_kernels_still_give_no_adapter_rows_the_last_slots_adapter():
    # why the kernels are replaced and not only sped up (docs/platform-notes.md); if this fails, vLLM fixed it
    import vllm.lora.ops.torch_ops as torch_ops

    c = _case([0, -1])
    got = torch.zeros(2, RANK)
    torch_ops.bgmv_shrink(c["x"], c["a"], got, c["idx"], 1.0)
    torch.testing.assert_close(got[1], c["x"][1] @ c["a"][SLOTS - 1, 0].T)


def test_installed_kernels_are_what_the_cpu_wrapper_and_the_stock_sgmv_kernels_call():
    from vllm.lora.punica_wrapper import punica_cpu

    install_segmented_lora_kernels()
    install_segmented_lora_kernels()
    for module in (lora_ops, punica_cpu):
        for name in ("bgmv_shrink", "bgmv_expand", "bgmv_expand_slice"):
            assert getattr(module, name) is getattr(vllm_cpu_lora, name)
    # prefill: two sequences (3 tokens of slot 1, 2 tokens without adapter) through the stock sgmv kernel
    c = _case([1, 1, 1, -1, -1])
    got = torch.zeros(5, RANK)
    starts, lengths, slots = torch.tensor([0, 3]), torch.tensor([3, 2]), torch.tensor([1, -1])
    lora_ops.sgmv_shrink(c["x"], c["a"], got, starts, lengths, slots, 2, 3, 5, 1.0)
    torch.testing.assert_close(got, _per_row(c["x"], c["a"], c["idx"]))
