"""The segmented CPU LoRA kernels give every row its own adapter's delta, and rows without adapter none."""

from __future__ import annotations

import pytest
import torch

from rlvr.rollout.vllm_cpu_lora import expand, install_segmented_lora_kernels, segments, shrink

punica_cpu = pytest.importorskip("vllm.lora.punica_wrapper.punica_cpu")
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
    rows = [inputs[i] @ stacked[j, 0].T if j >= 0 else torch.zeros(stacked.shape[2]) for i, j in enumerate(indices)]
    return torch.stack(rows)


@pytest.mark.parametrize("indices", CASES.values(), ids=CASES.keys())
def test_each_row_gets_its_own_adapters_delta_and_no_adapter_rows_none(indices):
    c, segs = _case(indices), segments(torch.tensor(indices), len(indices))
    got = torch.full((len(indices), RANK), 7.0)  # stale buffer contents must not survive
    shrink(c["x"], c["a"], got, segs, 0.5)
    torch.testing.assert_close(got, 0.5 * _per_row(c["x"], c["a"], indices))

    delta, left, right = _per_row(c["h"], c["b"], indices), c["out"][:, :WIDTH], c["out"][:, WIDTH:]
    got = c["out"].clone()
    expand(c["h"], c["b"], got, segs, add_inputs=True)
    torch.testing.assert_close(got, torch.cat([left + delta, right], 1))
    got = c["out"].clone()
    expand(c["h"], c["b"], got, segs, True, WIDTH, WIDTH)
    torch.testing.assert_close(got, torch.cat([left, right + delta], 1))
    got = c["out"].clone()
    expand(c["h"], c["b"], got, segs, False, WIDTH, WIDTH)
    torch.testing.assert_close(got, torch.cat([left, delta], 1))


def test_rows_are_sorted_only_when_an_adapters_rows_are_not_contiguous():
    grouped = segments(torch.tensor(CASES["grouped"]), 8)
    assert grouped.order is None and grouped.spans == [(0, 0, 2), (2, 2, 5), (1, 5, 6)]
    interleaved = segments(torch.tensor([1, -1, 0, 1]), 4)
    assert interleaved.order.tolist() == [1, 2, 0, 3] and interleaved.spans == [(0, 1, 2), (1, 2, 4)]


def test_the_stock_kernels_still_give_no_adapter_rows_the_last_slots_adapter():
    # why the kernels are replaced and not only sped up (docs/platform-notes.md); if this fails, vLLM fixed it
    import vllm.lora.ops.torch_ops as torch_ops

    c = _case([0, -1])
    got = torch.zeros(2, RANK)
    torch_ops.bgmv_shrink(c["x"], c["a"], got, c["idx"], 1.0)
    torch.testing.assert_close(got[1], c["x"][1] @ c["a"][SLOTS - 1, 0].T)


@pytest.mark.parametrize("lora_ids", [[7, 9, 9, 0, 7, 8, 0, 9], [8] * 6], ids=["mixed", "one"])
def test_the_patched_cpu_wrapper_applies_each_tokens_adapter_in_a_lora_layer(lora_ids):
    from vllm.lora.layers import LoRAMapping

    install_segmented_lora_kernels()
    install_segmented_lora_kernels()  # idempotent
    wrapper = punica_cpu.PunicaWrapperCPU(64, 8, "cpu")
    slot_of = {7: 0, 8: 1, 9: 2}  # vLLM's lora_index_to_id: slot -> adapter id; id 0 is no adapter
    wrapper.update_metadata(LoRAMapping(lora_ids, lora_ids, is_prefill=True), [7, 8, 9], SLOTS, 128)
    indices = [slot_of.get(i, -1) for i in lora_ids]
    c = _case(indices)
    a, b = c["a"], torch.randn(SLOTS, 1, 2 * WIDTH, RANK)
    y = c["out"].clone()
    # a packed layer of two output slices (as q/k/v or gate/up), each with its own A and B
    wrapper.add_lora_linear(y, c["x"], (a, a.flip(0)), (b[:, :, :WIDTH], b[:, :, WIDTH:]), 1.0, (WIDTH, WIDTH))
    want = torch.cat(
        [
            _per_row(_per_row(c["x"], a, indices), b[:, :, :WIDTH], indices),
            _per_row(_per_row(c["x"], a.flip(0), indices), b[:, :, WIDTH:], indices),
        ],
        1,
    )
    torch.testing.assert_close(y, c["out"] + want)
