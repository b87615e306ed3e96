"""One engine, several policies: a generate call mixing adapter slots samples what each policy samples alone."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from rlvr.rollout.types import SamplingSpec, SlotBatch

from .rollout_helpers import hf_greedy, hf_logprobs, hf_model, lora_policy, lora_update, merged_update, next_version

pytestmark = pytest.mark.slow
SLOTS = 5  # slot 0 serves the base, slots 1-3 adapters, slot 4 stays empty
ALL_LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
# Measured gap between a request's log-probs in a mixed call and alone: 0.0 (fp32, tiny model); the bound leaves
# room for a floating-point summation order that changes with the batch's rows.
LOGPROB_GAP = 1e-5


@pytest.fixture(scope="module")
def mixed_engine(engine_args):
    from rlvr.rollout.vllm_engine import VLLMEngine

    engine = VLLMEngine(**engine_args, adapter_slots=SLOTS)
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def policies(mixed_engine, tiny_path):
    """Slots 1-3 each serve a random all-linear LoRA; slot 0 serves the bare base."""
    served = {0: hf_model(tiny_path)}
    for slot in (1, 2, 3):
        served[slot] = lora_policy(hf_model(tiny_path), seed=100 + slot, target_modules=ALL_LINEAR)
        mixed_engine.load_policy(lora_update(served[slot], next_version()), slot=slot)
    return served


def _tokens(groups):
    return [[c.token_ids for c in g] for g in groups]


def _gap(mixed, alone) -> float:
    pairs = [(cm, ca) for gm, ga in zip(mixed, alone) for cm, ca in zip(gm, ga)]
    return max(abs(a - b) for cm, ca in pairs for a, b in zip(cm.logprobs, ca.logprobs))


GREEDY = SamplingSpec(temperature=0.0, max_new_tokens=12)


@pytest.mark.parametrize(
    "spec", [GREEDY, SamplingSpec(n=2, temperature=1.0, max_new_tokens=16, seed=5)], ids=["greedy", "seeded"]
)
def test_a_mixed_call_samples_what_each_slot_samples_alone(mixed_engine, policies, prompts, spec):
    # slot 1 twice: its rows are not contiguous in the batch (the kernels' interleaved path)
    seeded = [replace(spec, seed=None if spec.seed is None else spec.seed + slot) for slot in range(4)]
    batches = [SlotBatch(slot, prompts, seeded[slot]) for slot in (1, 0, 2, 3, 1)]
    alone = [mixed_engine.generate_mixed([b])[0] for b in batches]
    mixed = mixed_engine.generate_mixed(batches)
    assert [_tokens(g) for g in mixed] == [_tokens(g) for g in alone]
    assert max(_gap(m, a) for m, a in zip(mixed, alone)) <= LOGPROB_GAP
    assert len({str(_tokens(g)) for g in mixed[:4]}) == 4, "the slots' policies differ, so their samples must too"
    if spec.temperature == 0.0:
        for batch, groups in zip(batches, mixed):
            assert [g[0] for g in _tokens(groups)] == hf_greedy(policies[batch.slot], prompts)


def test_reloading_one_slot_leaves_the_others_serving(mixed_engine, policies, tiny_path, prompts):
    fresh = lora_policy(hf_model(tiny_path), seed=200, target_modules=ALL_LINEAR)
    mixed_engine.load_policy(lora_update(fresh, next_version()), slot=2)
    mixed = mixed_engine.generate_mixed([SlotBatch(s, prompts, GREEDY) for s in (1, 2)])
    got = [[g[0] for g in _tokens(groups)] for groups in mixed]
    assert got == [hf_greedy(p, prompts) for p in (policies[1], fresh)]
    want = hf_logprobs(fresh, prompts[0], prompts[1])
    assert mixed_engine.score(prompts[0], prompts[1], slot=2) == pytest.approx(want, abs=1e-4)
    mixed_engine.load_policy(lora_update(policies[2], next_version()), slot=2)


def test_slots_are_checked_before_the_engine_is_touched(mixed_engine, policies, engine_args):
    from rlvr.rollout.vllm_engine import VLLMEngine

    spec, served = SamplingSpec(max_new_tokens=4), list(mixed_engine.versions)
    with pytest.raises(ValueError, match=r"slot: 5 is not one of this engine's 5 adapter slot\(s\).*slots >= 6"):
        mixed_engine.generate_mixed([SlotBatch(5, [[1, 2]], spec)])
    with pytest.raises(ValueError, match=r"slot: -1 is not one of"):
        mixed_engine.load_policy(lora_update(policies[1], next_version()), slot=-1)
    with pytest.raises(ValueError, match=r"slot 4: holds no policy yet; load_policy\(update, slot=4\) first"):
        mixed_engine.generate_mixed([SlotBatch(1, [[1, 2]], spec), SlotBatch(4, [[1, 2]], spec)])
    base_change = merged_update({"model.norm.weight": torch.ones(128)}, next_version())
    shared = r"slot 0: .*changes the base weights, which the policies in slots \[1, 2, 3\] share"
    with pytest.raises(ValueError, match=shared):
        mixed_engine.load_policy(base_change)
    with pytest.raises(ValueError, match=r"slot 3: .* carries base_weights; only slot 0 may change the base"):
        mixed_engine.load_policy(base_change, slot=3)
    with pytest.raises(ValueError, match="adapter_slots: 2 slots hold adapters; give max_lora_rank"):
        VLLMEngine(**{**engine_args, "spec": replace(engine_args["spec"], max_lora_rank=None)}, adapter_slots=2)
    assert mixed_engine.versions == served
