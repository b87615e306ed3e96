"""Different methods' shared exports served by the REAL vLLM CPU engine in ONE generate call on the original base:
each samples what it samples served alone, and its greedy tokens are its learner's (fp32)."""

from __future__ import annotations

import pytest
import torch

from rlvr.config.schema import ModelConfig, RolloutConfig
from rlvr.config.sharing import shared_adapter_rank
from rlvr.models.tiny import build_model
from rlvr.peft_methods.policy import build_policy
from rlvr.rollout.spec import EngineSpec
from rlvr.rollout.types import SamplingSpec, SlotBatch

from .conftest import SERVED, perturb, small_cfg

pytestmark = pytest.mark.slow

# The shared exports that differ from the method's own route: a residual init at rank 2r (its engine would
# otherwise serve the residual base), AdaLoRA and VeRA folded, MiSS converted (otherwise merged).
METHODS = ["pissa", "adalora", "vera", "miss"]
PROMPTS = [[5, 17, 40, 66, 23, 9], [81, 3, 3, 52, 70], [7, 7, 100, 12]]
GREEDY = SamplingSpec(temperature=0.0, max_new_tokens=8)
SEEDED = SamplingSpec(n=2, temperature=1.0, max_new_tokens=8, seed=11)
# Measured: 0.0 (fp32, tiny model); the bound leaves room for a summation order that changes with the batch.
LOGPROB_GAP = 1e-5


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """One engine on the ORIGINAL base, slot i serving METHODS[i]'s shared export; the learners beside it."""
    from rlvr.models.tiny import build_tokenizer, save_tiny
    from rlvr.rollout.vllm_engine import VLLMEngine

    torch.manual_seed(0)
    path = save_tiny(build_model(SERVED), build_tokenizer(), tmp_path_factory.mktemp("served"))
    policies = []
    for i, name in enumerate(METHODS):
        policy = build_policy(build_model(SERVED), small_cfg(name), total_steps=10)
        perturb(policy, seed=i, scale=0.1)
        policies.append(policy)
    rank = max(shared_adapter_rank(p.cfg) for p in policies)
    spec = EngineSpec(
        ModelConfig(name="tiny", dtype="float32"), RolloutConfig(kv_cache_gib=1), max_model_len=128, max_lora_rank=rank
    )
    engine = VLLMEngine(str(path), spec, seed=0, adapter_slots=len(METHODS))
    for slot, policy in enumerate(policies):
        engine.load_policy(policy.export(slot + 1, include_base=True, route="native"), slot=slot)
    yield engine, policies
    engine.close()


def _tokens(groups):
    return [[c.token_ids for c in g] for g in groups]


def _gap(mixed, alone) -> float:
    """Largest log-prob gap over batches, prompts, samples and tokens."""
    return max(
        abs(a - b)
        for bm, ba in zip(mixed, alone)
        for gm, ga in zip(bm, ba)
        for cm, ca in zip(gm, ga)
        for a, b in zip(cm.logprobs, ca.logprobs)
    )


def _learner_greedy(policy) -> list[list[int]]:
    policy.model.eval()
    out = []
    with torch.no_grad():
        for p in PROMPTS:
            mask = torch.ones(1, len(p), dtype=torch.long)
            ids = policy.model.generate(
                input_ids=torch.tensor([p]), attention_mask=mask, max_new_tokens=GREEDY.max_new_tokens, do_sample=False
            )
            out.append(ids[0, len(p) :].tolist())
    return out


@pytest.mark.parametrize("spec", [GREEDY, SEEDED], ids=["greedy", "seeded"])
def test_one_call_serves_each_methods_export_as_it_is_served_alone(served, spec):
    engine, _ = served
    batches = [SlotBatch(slot, PROMPTS, spec) for slot in range(len(METHODS))]
    alone = [engine.generate_mixed([b])[0] for b in batches]
    mixed = engine.generate_mixed(batches)
    assert [_tokens(g) for g in mixed] == [_tokens(g) for g in alone]
    assert _gap(mixed, alone) <= LOGPROB_GAP
    assert len({str(_tokens(g)) for g in mixed}) == len(METHODS), "the methods' policies differ, so must their samples"


def test_each_slot_serves_its_learners_policy_on_the_original_base(served):
    engine, policies = served
    mixed = engine.generate_mixed([SlotBatch(slot, PROMPTS, GREEDY) for slot in range(len(METHODS))])
    for groups, policy in zip(mixed, policies):
        got = [g[0].token_ids for g in groups]
        # Truncate at EOS: peft pads after it, vLLM stops.
        assert got == [w[: len(g)] for w, g in zip(_learner_greedy(policy), got)], policy.spec.name
    assert engine.versions == [1, 2, 3, 4]
