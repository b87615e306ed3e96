"""The transformers engine is a drop-in for vLLM: same greedy tokens, sampling log-probs equal to its own score()."""

from __future__ import annotations

import pytest

from rlvr.rollout.hf_engine import HFEngine
from rlvr.rollout.registry import make_engine
from rlvr.rollout.types import SamplingSpec
from rlvr.sync.servable import UnservableUpdate

from .rollout_helpers import hf_logprobs, hf_model, lora_policy, lora_update, next_version, pristine_update

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
    spec = SamplingSpec(n=3, temperature=1.0, max_new_tokens=10, seed=5)
    groups = hf_engine.generate(prompts, spec)
    assert [len(g) for g in groups] == [3] * len(prompts)
    for prompt, group in zip(prompts, groups):
        for c in group:
            assert c.finish_reason in ("stop", "length") and len(c.token_ids) == len(c.logprobs)
            assert c.logprobs == pytest.approx(hf_engine.score(prompt, c.token_ids), abs=1e-4)
    assert tokens(hf_engine.generate(prompts, spec)) == tokens(groups)


def test_sampling_logprobs_at_temperature_0_7_are_the_processed_ones_the_learner_computes(
    hf_engine, tiny_path, prompts
):
    hf_engine.load_policy(pristine_update(tiny_path))
    groups = hf_engine.generate(prompts, SamplingSpec(n=2, temperature=0.7, max_new_tokens=10, seed=5))
    for prompt, group in zip(prompts, groups):
        for c in group:
            assert c.logprobs == pytest.approx(
                hf_logprobs(hf_engine.model, prompt, c.token_ids, temperature=0.7), abs=1e-4
            )


def test_top_p_log_probs_are_renormalised_over_the_nucleus(hf_engine, tiny_path, prompts):
    hf_engine.load_policy(pristine_update(tiny_path))
    (group,) = hf_engine.generate(prompts[:1], SamplingSpec(n=4, temperature=1.0, top_p=0.5, max_new_tokens=10, seed=5))
    for c in group:
        # what the token was drawn from: the nucleus holds at least half the mass, so log-probs rise by up to log 2
        gains = [p - r for p, r in zip(c.logprobs, hf_engine.score(prompts[0], c.token_ids))]
        assert all(-1e-5 <= g <= 0.6932 for g in gains) and max(gains) > 0.01


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
