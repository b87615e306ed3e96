"""Exported policies served by the REAL vLLM CPU engine give the learner's greedy tokens (fp32).

One engine for the whole module. Order matters: updates without base weights run on whatever base the
engine holds, so native and AdaLoRA updates come before the residual (PiSSA-like) and merged ones.
"""

from __future__ import annotations

import pytest
import torch
from peft import get_peft_model_state_dict

from rlvr.config.methods import method_info
from rlvr.config.schema import ModelConfig, RolloutConfig
from rlvr.models.tiny import build_model
from rlvr.peft_methods.policy import build_policy
from rlvr.peft_methods.weights import to_bytes
from rlvr.rollout.types import SamplingSpec
from rlvr.sync.servable import UnservableUpdate, check_servable
from rlvr.sync.update import PolicyUpdate

from .conftest import SERVED, perturb, small_cfg

pytestmark = pytest.mark.slow

RANK = 8
ORDER = ["lora", "rslora", "lora_plus", "lora_fa", "lora_rank1", "adalora", "pissa", "milora", "olora", "dora"]
PROMPTS = [[5, 17, 40, 66, 23, 9], [81, 3, 3, 52, 70]]
NEW_TOKENS = 8


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    from rlvr.models.tiny import build_tokenizer, save_tiny
    from rlvr.rollout.spec import EngineSpec
    from rlvr.rollout.vllm_engine import VLLMEngine

    path = save_tiny(build_model(SERVED), build_tokenizer(), tmp_path_factory.mktemp("served"))
    spec = EngineSpec(
        ModelConfig(name="tiny", dtype="float32"), RolloutConfig(kv_cache_gib=1), max_model_len=128, max_lora_rank=RANK
    )
    eng = VLLMEngine(str(path), spec, seed=0)
    yield eng
    eng.close()


def _peft_greedy(policy) -> list[list[int]]:
    policy.model.eval()
    out = []
    with torch.no_grad():
        for p in PROMPTS:
            ids = policy.model.generate(
                input_ids=torch.tensor([p]),
                attention_mask=torch.ones(1, len(p), dtype=torch.long),
                max_new_tokens=NEW_TOKENS,
                do_sample=False,
            )
            out.append(ids[0, len(p) :].tolist())
    return out


def _served_greedy(engine) -> list[list[int]]:
    groups = engine.generate(PROMPTS, SamplingSpec(n=1, temperature=0.0, max_new_tokens=NEW_TOKENS))
    return [g[0].token_ids for g in groups]


def test_exported_policies_serve_the_learners_greedy_tokens(engine):
    served, expected = {}, {}
    for version, name in enumerate(ORDER, start=1):
        policy = build_policy(
            build_model(SERVED), small_cfg(name, rank=1 if name == "lora_rank1" else RANK), total_steps=10
        )
        perturb(policy, seed=version, scale=0.1)
        update = policy.export(version, include_base=True)
        assert update.route == method_info(name).route
        engine.load_policy(update)
        served[name], expected[name] = _served_greedy(engine), _peft_greedy(policy)
        # Truncate at EOS: peft pads after it, vLLM stops.
        expected[name] = [e[: len(s)] for e, s in zip(expected[name], served[name])]
    assert served == expected
    assert len({str(v) for v in served.values()}) > 1  # the adapters really change the policy


def test_dora_as_a_native_lora_is_refused_before_the_engine(engine):
    policy = build_policy(build_model(SERVED), small_cfg("dora", rank=RANK), total_steps=10)
    tensors = get_peft_model_state_dict(policy.model)
    update = PolicyUpdate(99, "native", lora_tensors=to_bytes(tensors), lora_config=policy.record()["peft_config"])
    with pytest.raises(UnservableUpdate, match="DoRA"):
        check_servable(update, RANK)
    before = _served_greedy(engine)
    with pytest.raises(UnservableUpdate):
        engine.load_policy(update)
    assert _served_greedy(engine) == before
