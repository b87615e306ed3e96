"""The transformers engine is a drop-in for vLLM: same greedy tokens, sampling log-probs equal to its own score()."""

from __future__ import annotations

import pytest
from rollout_helpers import hf_model, lora_policy, lora_update, next_version, pristine_update

from rlvr.rollout.hf_engine import HFEngine
from rlvr.rollout.registry import make_engine
from rlvr.rollout.types import SamplingSpec
from rlvr.sync.servable import UnservableUpdate

GREEDY = SamplingSpec(temperature=0.0, max_new_tokens=12)


@pytest.fixture(scope="module")
def hf_engine(engine_args):
    engine = make_engine("hf", **engine_args)
    yield engine
    engine.close()


def tokens(groups):
    return [c.token_ids for g in groups for c in g]


@pytest.mark.slow
def test_batched_greedy_equals_vllm_for_adapter_then_base(hf_engine, vllm_engine, tiny_path, prompts):
    # Base weights after an adapter: peft has wrapped the modules, so the reload must see through it.
    for update in (lora_update(lora_policy(hf_model(tiny_path), seed=21), next_version()), pristine_update(tiny_path)):
        hf_engine.load_policy(update)
        vllm_engine.load_policy(update)
        assert tokens(hf_engine.generate(prompts, GREEDY)) == tokens(vllm_engine.generate(prompts, GREEDY))


def test_sampling_logprobs_equal_score_and_seeds_repeat(hf_engine, prompts):
    spec = SamplingSpec(n=3, temperature=1.0, top_p=0.9, max_new_tokens=10, seed=5)
    groups = hf_engine.generate(prompts, spec)
    assert [len(g) for g in groups] == [3] * len(prompts)
    for prompt, group in zip(prompts, groups):
        for c in group:
            assert c.finish_reason in ("stop", "length") and len(c.token_ids) == len(c.logprobs)
            assert c.logprobs == pytest.approx(hf_engine.score(prompt, c.token_ids), abs=1e-4)
    assert tokens(hf_engine.generate(prompts, spec)) == tokens(groups)


def test_rejects_unservable_adapters_before_touching_the_model(hf_engine, tiny_path, prompts):
    before = tokens(hf_engine.generate(prompts, GREEDY))
    dora = lora_update(lora_policy(hf_model(tiny_path), seed=22, use_dora=True), next_version())
    with pytest.raises(UnservableUpdate, match="DoRA"):
        hf_engine.load_policy(dora)
    assert tokens(hf_engine.generate(prompts, GREEDY)) == before


def test_registry_names_every_engine_and_rejects_unknown_ones():
    from rlvr.rollout.registry import ENGINES
    from rlvr.rollout.vllm_engine import VLLMEngine

    assert ENGINES == {"vllm": VLLMEngine, "hf": HFEngine}
    with pytest.raises(ValueError, match="rollout.engine: 'sglang' is not an engine; allowed: vllm, hf"):
        make_engine("sglang")
