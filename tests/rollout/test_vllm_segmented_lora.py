"""A batch mixing four adapters and the bare base runs on rlvr's segmented CPU LoRA kernels and gives every request
exactly the bits (tokens and log-probs) it gets when its policy is served alone by a one-slot engine, as a solo
trial serves it (fp32)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from rlvr.config.schema import ALL_LINEAR
from rlvr.rollout.types import SamplingSpec, SlotBatch

from .rollout_helpers import hf_model, lora_policy, lora_update, next_version, pristine_update

pytestmark = pytest.mark.slow
ADAPTERS = 4  # in slots 1-4; slot 0 holds none, so its requests run on the bare base
SPECS = {
    "greedy": SamplingSpec(temperature=0.0, max_new_tokens=16),
    "seeded": SamplingSpec(n=2, temperature=1.0, max_new_tokens=16, seed=7),
}
STOCK_KERNELS = ("sgmv_shrink", "sgmv_expand", "sgmv_expand_slice", "bgmv_expand_slice")


def _batches(prompts, spec: SamplingSpec) -> list[SlotBatch]:
    """Every slot with its own seeds; slot 2 twice, apart (its rows are not contiguous: the kernels' sorted path),
    the second time with the prompts reversed."""
    batches = []
    for i, slot in enumerate((2, 0, 1, 3, 4, 2)):
        seed = None if spec.seed is None else spec.seed + 100 * i
        batches.append(SlotBatch(slot, prompts[::-1] if i == 5 else prompts, replace(spec, seed=seed)))
    return batches


@pytest.fixture(scope="module")
def updates(tiny_path):
    """Slot s (1-4) serves updates[s - 1], a random rank-8 LoRA on every linear module; slot 0 the base."""
    return [
        lora_update(lora_policy(hf_model(tiny_path), seed=300 + s, target_modules=ALL_LINEAR), next_version())
        for s in range(ADAPTERS)
    ]


@pytest.fixture(scope="module")
def mixed_engine(engine_args, updates):
    from rlvr.rollout.vllm_engine import VLLMEngine

    engine = VLLMEngine(**engine_args, adapter_slots=ADAPTERS + 1)
    for slot, update in enumerate(updates, start=1):
        engine.load_policy(update, slot=slot)
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def solo(vllm_engine, tiny_path, updates, prompts):
    """Per spec, what each batch of ``_batches`` gives when its slot's policy is served alone by the session's
    one-slot engine, all of the slot's batches in one call (a tenant's requests, as its solo trial sends them)."""
    policies = [pristine_update(tiny_path), *updates]
    alone = {name: {} for name in SPECS}
    for slot, policy in enumerate(policies):
        vllm_engine.load_policy(policy)
        for name, spec in SPECS.items():
            own = [(i, b) for i, b in enumerate(_batches(prompts, spec)) if b.slot == slot]
            out = vllm_engine.generate_mixed([SlotBatch(0, b.prompts, b.spec) for _, b in own])
            alone[name].update({i: groups for (i, _), groups in zip(own, out)})
    vllm_engine.load_policy(pristine_update(tiny_path))  # no adapter left for later tests
    return {name: [by_batch[i] for i in sorted(by_batch)] for name, by_batch in alone.items()}


@pytest.mark.parametrize("name", SPECS)
def test_a_mixed_call_gives_every_request_the_bits_of_its_policy_served_alone(mixed_engine, solo, prompts, name):
    mixed = mixed_engine.generate_mixed(_batches(prompts, SPECS[name]))
    tokens = [[[c.token_ids for c in group] for group in batch] for batch in mixed]
    assert len({str(t) for t in tokens[:5]}) == 5, "the five policies differ, so must their samples"
    # Completion equality compares token ids and every log-prob with ==
    assert mixed == solo[name]


def test_a_mixed_call_runs_on_the_segmented_kernels_one_segment_per_adapter(mixed_engine, prompts, monkeypatch):
    from vllm.lora.punica_wrapper import punica_cpu

    import rlvr.rollout.vllm_cpu_lora as kernels

    steps, products, stock = [], [], []

    def recorded_segments(indices, rows):
        steps.append(segments(indices, rows))
        return steps[-1]

    def recorded_deltas(inputs, stacked, segs, dtype):
        products.append(len(segs.spans))
        return deltas(inputs, stacked, segs, dtype)

    segments, deltas = kernels.segments, kernels._deltas
    monkeypatch.setattr(kernels, "segments", recorded_segments)
    monkeypatch.setattr(kernels, "_deltas", recorded_deltas)
    for name in STOCK_KERNELS:
        monkeypatch.setattr(punica_cpu, name, lambda *args, name=name, **kwargs: stock.append(name))
    batches = _batches(prompts, SPECS["greedy"])
    mixed_engine.llm.reset_prefix_cache()  # so that the first step prefills every prompt token
    mixed_engine.generate_mixed(batches)

    assert not stock, f"vLLM's stock kernels ran: {sorted(set(stock))}"
    assert punica_cpu.bgmv_shrink is kernels.bgmv_shrink and punica_cpu.bgmv_expand is kernels.bgmv_expand
    prefill = steps[0]  # every prompt is prefilled in the first step, in the order of the batches
    prompt_rows = [len(p) for b in batches for p in b.prompts]
    base_rows = sum(len(p) for b in batches if b.slot == 0 for p in b.prompts)
    assert prefill.rows == sum(prompt_rows)
    assert prefill.order is not None, "slot 2's rows are apart: the kernels must group them"
    assert len(prefill.spans) == ADAPTERS and len({index for index, _, _ in prefill.spans}) == ADAPTERS
    assert sum(stop - start for _, start, stop in prefill.spans) == prefill.rows - base_rows  # base rows: no delta
    assert len(steps[1].spans) == ADAPTERS  # the first decode step: one row per running request, by slot
    assert products and max(products) == ADAPTERS
