"""The post-sync probe in bf16, against a bf16 engine in its own process (the GPU topology): the right policy
passes at the bf16 tolerance, and an engine left one version behind fails even when the step was small."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from rlvr.config.schema import ModelConfig
from rlvr.sync.probe import StaleEngineError, SyncProbe, check_sync, probe_limits, probe_sequence

from .rollout_helpers import lora_policy, lora_update, next_version

pytestmark = pytest.mark.slow
BF16 = probe_limits(None, "bfloat16", "native")


@pytest.fixture(scope="module")
def bf16_engine(engine_args):
    from rlvr.rollout.vllm_engine import VLLMEngine

    spec = engine_args["spec"]
    args = dict(
        engine_args,
        spec=replace(
            spec,
            model=ModelConfig(name="tiny", dtype="bfloat16"),
            rollout=spec.rollout.model_copy(update={"engine_process": "separate"}),
        ),
    )
    engine = VLLMEngine(**args)
    yield engine
    engine.close()


def bf16_model(path):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.bfloat16).eval()


def learner_logprobs(model, prompt, completion):
    """As the learner scores the probe: bf16 forward, log-softmax of the logits in fp32."""
    ids = torch.tensor([prompt + completion])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0, len(prompt) - 1 : -1].float()
    return logits.log_softmax(-1).gather(-1, ids[0, len(prompt) :, None])[:, 0].tolist()


def test_the_engine_runs_in_its_own_process_and_others_stay_inline(bf16_engine, vllm_engine):
    from vllm.v1.engine.core_client import InprocClient

    assert not isinstance(bf16_engine.llm.llm_engine.engine_core, InprocClient)
    assert isinstance(vllm_engine.llm.llm_engine.engine_core, InprocClient)


def test_bf16_probe_passes_the_right_policy_and_catches_an_engine_one_version_behind(bf16_engine, tiny_path, tokenizer):
    prompt, completion = probe_sequence(tokenizer, 16)
    probe = SyncProbe(BF16)
    served = lora_policy(bf16_model(tiny_path), seed=21)
    version = next_version()
    bf16_engine.load_policy(lora_update(served, version))
    want = learner_logprobs(served, prompt, completion)
    assert probe.check([bf16_engine.score(prompt, completion)], want, version) <= BF16.gap

    # A small step: the learner moves, the engine never gets it. Its gap stays within bf16's tolerance, so
    # only the freshness check can tell.
    with torch.no_grad():
        for name, p in served.named_parameters():
            if "lora_B" in name:
                p.mul_(1.1)
    moved = learner_logprobs(served, prompt, completion)
    stale = bf16_engine.score(prompt, completion)
    assert check_sync(stale, moved, BF16.gap, version + 1) <= BF16.gap
    with pytest.raises(StaleEngineError, match="scores the probe exactly as at the previous sync"):
        probe.check([stale], moved, version + 1)

    # The update arrives: the engine moves and stays within the tolerance.
    bf16_engine.load_policy(lora_update(served, next_version()))
    got = bf16_engine.score(prompt, completion)
    assert got != stale and check_sync(got, moved, BF16.gap, version + 1) <= BF16.gap
