"""Shared fixtures: one tiny model on disk and one vLLM engine for the whole session (engines are slow to start)."""

from __future__ import annotations

import pytest

from rlvr.config.schema import ModelConfig, RolloutConfig, TinyModelConfig
from rlvr.rollout.spec import EngineSpec

from .rollout_helpers import LORA_RANK

# head_dim 32: vLLM's CPU attention has no kernel for head_dim 16.
TINY = TinyModelConfig(hidden_size=128, intermediate_size=256, num_layers=2, num_heads=4, num_kv_heads=2)
# 16 KiB: every update of the engine tests crosses in several buckets, as a 7B one does at the default size.
BUCKET_MB = 1 / 64
PROMPTS = ["12+34=", "hello world", "7*8=", "The sum of 3 and 4 is"]


@pytest.fixture(scope="session")
def tiny_path(tmp_path_factory):
    from rlvr.models.tiny import build_model, build_tokenizer, save_tiny

    return str(save_tiny(build_model(TINY), build_tokenizer(), tmp_path_factory.mktemp("tiny")))


@pytest.fixture(scope="session")
def tokenizer():
    from rlvr.models.tiny import build_tokenizer

    return build_tokenizer()


@pytest.fixture(scope="session")
def prompts(tokenizer):
    return [tokenizer.encode(p) for p in PROMPTS]


@pytest.fixture(scope="session")
def engine_args(tiny_path):
    import torch

    # One thread, as a trial's engine (EngineSpec.threads), for every engine of the session: the first vLLM CPU
    # engine of a process freezes torch's thread count (its worker makes torch.set_num_threads a no-op), and a
    # mixed batch is bitwise each policy's solo run only on one thread (docs/platform-notes.md).
    torch.set_num_threads(1)
    return dict(
        model_path=tiny_path,
        spec=EngineSpec(
            ModelConfig(name="tiny", dtype="float32"),
            RolloutConfig(kv_cache_gib=1, sync_bucket_mb=BUCKET_MB),
            max_model_len=256,
            max_lora_rank=LORA_RANK,
        ),
        seed=0,
    )


@pytest.fixture(scope="session")
def vllm_engine(engine_args):
    from rlvr.rollout.vllm_engine import VLLMEngine

    engine = VLLMEngine(**engine_args)
    yield engine
    engine.close()
