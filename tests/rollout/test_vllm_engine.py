"""The vLLM engine serves exactly the policy it was sent: fp32 greedy output and log-probs equal transformers + peft."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from rlvr.rollout.types import SamplingSpec
from rlvr.rollout.vllm_engine import AdapterRejected
from rlvr.sync.probe import StaleEngineError, check_sync
from rlvr.sync.servable import UnservableUpdate

from .rollout_helpers import (
    hf_greedy,
    hf_logprobs,
    hf_model,
    lora_policy,
    lora_update,
    merged_update,
    next_version,
    pristine_update,
)

pytestmark = pytest.mark.slow
GREEDY = SamplingSpec(temperature=0.0, max_new_tokens=12)


def greedy(engine, prompts):
    return [group[0].token_ids for group in engine.generate(prompts, GREEDY)]


def test_base_greedy_equals_transformers(vllm_engine, tiny_path, prompts):
    vllm_engine.load_policy(pristine_update(tiny_path))
    assert greedy(vllm_engine, prompts) == hf_greedy(hf_model(tiny_path), prompts)


def test_hot_swap_serves_each_new_version_like_peft_and_drops_the_old(vllm_engine, tiny_path, prompts):
    outputs = []
    for seed in (1, 2):
        policy = lora_policy(hf_model(tiny_path), seed=seed)
        vllm_engine.load_policy(lora_update(policy, next_version()))
        outputs.append(greedy(vllm_engine, prompts))
        assert outputs[-1] == hf_greedy(policy, prompts)
        assert set(vllm_engine.llm.llm_engine.list_loras()) == {vllm_engine._adapters[0].lora_int_id}
    assert outputs[0] != outputs[1]


def test_resending_a_version_with_new_weights_never_serves_the_stale_adapter(vllm_engine, tiny_path, prompts):
    # vLLM keeps the OLD weights when an adapter id is reused; a restored learner may resend a version.
    version = next_version()
    vllm_engine.load_policy(lora_update(lora_policy(hf_model(tiny_path), seed=3), version))
    fresh = lora_policy(hf_model(tiny_path), seed=4)
    vllm_engine.load_policy(lora_update(fresh, version))
    assert greedy(vllm_engine, prompts) == hf_greedy(fresh, prompts)


def test_invalid_updates_fail_cleanly_and_the_old_policy_keeps_serving(vllm_engine, tiny_path, prompts):
    policy = lora_policy(hf_model(tiny_path), seed=5)
    served = next_version()
    vllm_engine.load_policy(lora_update(policy, served))
    expected = hf_greedy(policy, prompts)

    dora = lora_update(lora_policy(hf_model(tiny_path), seed=6, use_dora=True), next_version())
    with pytest.raises(UnservableUpdate, match="DoRA"):
        vllm_engine.load_policy(dora)
    too_big = lora_update(lora_policy(hf_model(tiny_path), seed=6, rank=16), next_version())
    with pytest.raises(UnservableUpdate, match="max_lora_rank 8"):
        vllm_engine.load_policy(too_big)
    # Passes the static check, so vLLM's worker must reject it without harming the engine.
    unknown = merged_update({"model.layers.0.self_attn.nonexistent.weight": torch.zeros(2, 2)}, next_version())
    with pytest.raises(AdapterRejected, match="not in the base checkpoint"):
        vllm_engine.load_policy(unknown)

    assert vllm_engine.version == served
    assert greedy(vllm_engine, prompts) == expected


def test_base_reload_partial_packed_layer_equals_transformers(vllm_engine, tiny_path, prompts):
    # Only q_proj changes: vLLM packs it with k/v (and biases), which the engine completes from the base.
    model = hf_model(tiny_path)
    torch.manual_seed(7)
    q = model.model.layers[0].self_attn.q_proj.weight
    q.data += 0.5 * torch.randn_like(q)
    vllm_engine.load_policy(merged_update({"model.layers.0.self_attn.q_proj.weight": q.data}, next_version()))
    assert greedy(vllm_engine, prompts) == hf_greedy(model, prompts)


def test_converted_update_residual_base_plus_adapter_equals_peft(vllm_engine, tiny_path, prompts):
    model = hf_model(tiny_path)
    torch.manual_seed(8)
    residual = {}
    for name, param in model.named_parameters():
        if name.endswith(("q_proj.weight", "v_proj.weight", "gate_proj.weight")):
            param.data -= 0.3 * torch.randn_like(param)
            residual[name] = param.data.clone()
    policy = lora_policy(model, seed=9)
    update = lora_update(
        policy, next_version(), route="converted", base_weights=merged_update(residual, 0).base_weights
    )
    vllm_engine.load_policy(update)
    assert greedy(vllm_engine, prompts) == hf_greedy(policy, prompts)
    vllm_engine.load_policy(pristine_update(tiny_path))  # the residual base must not leak into later tests


def test_every_row_of_a_batch_gets_the_served_adapter_and_only_it(vllm_engine, tiny_path, prompts):
    policy = lora_policy(hf_model(tiny_path), seed=10)
    vllm_engine.load_policy(lora_update(policy, next_version()))
    assert greedy(vllm_engine, prompts * 4) == hf_greedy(policy, prompts * 4)
    # Back to the base right after an adapter sat in the engine's slot: no row may keep it.
    vllm_engine.load_policy(pristine_update(tiny_path))
    assert greedy(vllm_engine, prompts * 4) == hf_greedy(hf_model(tiny_path), prompts * 4)


def test_no_adapter_rows_of_a_batch_mixing_them_with_adapter_rows_get_the_base(vllm_engine, tiny_path, prompts):
    # vLLM's stock CPU kernels served these rows the last slot's adapter; rlvr.rollout.vllm_cpu_lora fixes it
    from vllm import SamplingParams

    policy = lora_policy(hf_model(tiny_path), seed=11)
    vllm_engine.load_policy(lora_update(policy, next_version()))
    outs = vllm_engine.llm.generate(
        [{"prompt_token_ids": p} for p in prompts] * 2,
        SamplingParams(temperature=0.0, max_tokens=12),
        lora_request=[vllm_engine._adapters[0]] * len(prompts) + [None] * len(prompts),
        use_tqdm=False,
    )
    tokens = [o.outputs[0].token_ids for o in outs]
    assert tokens[len(prompts) :] == hf_greedy(hf_model(tiny_path), prompts)
    assert tokens[: len(prompts)] == hf_greedy(policy, prompts)


def test_score_and_sampling_logprobs_match_transformers(vllm_engine, tiny_path, prompts):
    policy = lora_policy(hf_model(tiny_path), seed=12)
    vllm_engine.load_policy(lora_update(policy, next_version()))
    (group,) = vllm_engine.generate(prompts[:1], SamplingSpec(n=1, temperature=1.0, max_new_tokens=16, seed=0))
    sample = group[0]
    expected = hf_logprobs(policy, prompts[0], sample.token_ids)
    assert vllm_engine.score(prompts[0], sample.token_ids) == pytest.approx(expected, abs=1e-4)
    assert sample.logprobs == pytest.approx(expected, abs=1e-4)


def test_sampling_logprobs_at_temperature_0_7_are_the_processed_ones_the_learner_computes(
    vllm_engine, tiny_path, prompts
):
    # the TIS weight compares these with the learner's log_softmax(logits / T): raw log-probs would bias it
    policy = lora_policy(hf_model(tiny_path), seed=13)
    vllm_engine.load_policy(lora_update(policy, next_version()))
    (group,) = vllm_engine.generate(prompts[:1], SamplingSpec(n=2, temperature=0.7, max_new_tokens=16, seed=0))
    for sample in group:
        assert sample.logprobs == pytest.approx(
            hf_logprobs(policy, prompts[0], sample.token_ids, temperature=0.7), abs=1e-4
        )
    # the probe's score stays the raw (temperature 1) policy
    assert vllm_engine.score(prompts[0], group[0].token_ids) == pytest.approx(
        hf_logprobs(policy, prompts[0], group[0].token_ids), abs=1e-4
    )


def test_probe_raises_when_the_engine_serves_an_older_version(vllm_engine, tiny_path, prompts, tokenizer):
    from rlvr.sync.probe import probe_sequence

    prompt, completion = probe_sequence(tokenizer, 16)
    old = lora_policy(hf_model(tiny_path), seed=13)
    old_version = next_version()
    vllm_engine.load_policy(lora_update(old, old_version))
    served = vllm_engine.score(prompt, completion)
    assert check_sync(served, hf_logprobs(old, prompt, completion), 1e-3, old_version) < 1e-4
    new = lora_policy(hf_model(tiny_path), seed=14)  # the learner moved on; the engine never got it
    with pytest.raises(StaleEngineError, match=f"policy v{old_version + 1}"):
        check_sync(served, hf_logprobs(new, prompt, completion), 1e-3, old_version + 1)


def test_completions_carry_the_text_and_logprobs_of_vllms_own_per_token_output(vllm_engine, prompts, tokenizer):
    # rlvr asks for no text and flat log-probs, and decodes each text once at the end (rlvr.rollout.vllm_outputs);
    # stop tokens (left out of the text) and special tokens (skipped) among the samples
    from vllm import SamplingParams

    from rlvr.rollout.vllm_engine import sampling_params
    from rlvr.rollout.vllm_outputs import completions

    assert all(not p.detokenize and p.flat_logprobs for p in sampling_params(SamplingSpec(), 2))
    stops = tokenizer.convert_tokens_to_ids(["7"])

    def run(**text):
        params = [
            SamplingParams(n=3, temperature=1.0, max_tokens=24, seed=10 * i, logprobs=0, stop_token_ids=stops, **text)
            for i in range(len(prompts))
        ]
        return params, vllm_engine.llm.generate([{"prompt_token_ids": p} for p in prompts], params, use_tqdm=False)

    params, outs = run(detokenize=False, flat_logprobs=True)
    tok = vllm_engine.llm.get_tokenizer()
    ours = [
        [(c.token_ids, c.logprobs, c.text, c.finish_reason) for c in completions(i, o, p, tok)]
        for i, (o, p) in enumerate(zip(outs, params))
    ]
    stock = [
        [
            (list(c.token_ids), [s[t].logprob for s, t in zip(c.logprobs, c.token_ids)], c.text, c.finish_reason)
            for c in o.outputs
        ]
        for o in run()[1]
    ]
    assert ours == stock
    assert {c[3] for g in ours for c in g} == {"stop", "length"}


def test_seeded_sampling_repeats_and_repeated_prompts_get_different_samples(vllm_engine, prompts):
    spec = SamplingSpec(n=2, temperature=1.0, max_new_tokens=16, seed=3)
    samples = [c.token_ids for g in vllm_engine.generate([prompts[0]] * 2, spec) for c in g]
    assert [c.token_ids for g in vllm_engine.generate([prompts[0]] * 2, spec) for c in g] == samples
    assert len({tuple(s) for s in samples}) == 4
    assert vllm_engine.generate([], spec) == []


@pytest.mark.skipif(torch.cuda.is_available(), reason="vLLM-CPU seeds each request; on GPU the engine's seed governs")
def test_chunks_with_their_offset_seeds_sample_what_one_call_over_all_prompts_samples(vllm_engine, prompts):
    # what queued dispatch (rollout.dispatch_groups) relies on: a chunk's completions do not depend on its engine
    from rlvr.trial.dispatch import chunk_spec

    spec = SamplingSpec(n=3, temperature=1.0, max_new_tokens=10, seed=7)
    whole = vllm_engine.generate(prompts, spec)
    chunked = [g for a, b in ((0, 1), (1, 3), (3, 4)) for g in vllm_engine.generate(prompts[a:b], chunk_spec(spec, a))]
    assert [[c.token_ids for c in g] for g in chunked] == [[c.token_ids for c in g] for g in whole]


def test_an_update_in_many_buckets_serves_exactly_the_learners_weights(vllm_engine, engine_args, tiny_path, prompts):
    from rlvr.sync.buckets import bucket_bytes, split

    model = hf_model(tiny_path)
    torch.manual_seed(15)
    changed = {}
    for name, param in model.named_parameters():
        if ".layers." in name:
            param.data += 0.05 * torch.randn_like(param)
            changed[name] = param.data.clone()
    update = merged_update(changed, next_version())
    assert len(list(split(update.base_weights, bucket_bytes(engine_args["spec"].rollout.sync_bucket_mb)))) > 20
    vllm_engine.load_policy(update)
    assert greedy(vllm_engine, prompts) == hf_greedy(model, prompts)
    assert vllm_engine.score(prompts[0], prompts[1]) == pytest.approx(
        hf_logprobs(model, prompts[0], prompts[1]), abs=1e-4
    )
    vllm_engine.load_policy(pristine_update(tiny_path))


@pytest.mark.skipif(torch.cuda.is_available(), reason="GPU platforms have vLLM's sleep mode")
def test_colocation_is_refused_where_vllm_has_no_sleep_mode_before_an_engine_starts(engine_args):
    from rlvr.rollout.vllm_engine import VLLMEngine

    spec = engine_args["spec"]
    args = {**engine_args, "spec": replace(spec, rollout=spec.rollout.model_copy(update={"colocate": True}))}
    with pytest.raises(ValueError, match=r"rollout.colocate: vLLM on this platform \(cpu\) has no sleep mode"):
        VLLMEngine(**args)
