"""Rollout throughput (vLLM vs transformers generate, base and LoRA) and weight-sync time per route.

    .venv/bin/python benchmarks/bench_rollout.py [--batch 64] [--tokens 32] [--repeats 3] [--threads 1]

Runs on the tiny Qwen2 with random weights (throughput does not depend on what the model learned) and
prints one JSON line per measurement plus a markdown table for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path


def _updates(model_path: str, rank: int):
    """A native LoRA update on all linear layers and a merged update of every linear weight, built with peft."""
    import torch
    from peft import LoraConfig, get_peft_model, get_peft_model_state_dict
    from safetensors.torch import save
    from transformers import AutoModelForCausalLM

    from rlvr.config.schema import ALL_LINEAR
    from rlvr.sync.update import PolicyUpdate

    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
    torch.manual_seed(0)
    config = LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=ALL_LINEAR, init_lora_weights=False)
    peft_model = get_peft_model(model, config)
    lora_tensors = save(get_peft_model_state_dict(peft_model))
    lora_config = peft_model.peft_config["default"].to_dict()
    merged_state = peft_model.merge_and_unload().state_dict()
    merged_weights = save({k: v.contiguous() for k, v in merged_state.items() if k.endswith("proj.weight")})
    return (
        lambda v: PolicyUpdate(v, "native", lora_tensors, lora_config),
        lambda v: PolicyUpdate(v, "merged", base_weights=merged_weights),
    )


def _throughput(engine, prompts, tokens: int, repeats: int) -> float:
    from rlvr.rollout.types import SamplingSpec

    spec = SamplingSpec(temperature=1.0, max_new_tokens=tokens, seed=0)
    engine.generate(prompts[:2], spec)  # warm-up
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        groups = engine.generate(prompts, spec)
        rates.append(sum(len(c.token_ids) for g in groups for c in g) / (time.perf_counter() - start))
    return statistics.median(rates)


def _sync_ms(engine, make_update, repeats: int, first_version: int) -> float:
    times = []
    for i in range(repeats):
        update = make_update(first_version + i)
        start = time.perf_counter()
        engine.load_policy(update)
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rank", type=int, default=16)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from rlvr.config.schema import ModelConfig, RolloutConfig, TinyModelConfig
    from rlvr.models.tiny import build_model, build_tokenizer, save_tiny
    from rlvr.rollout.registry import ENGINES, make_engine
    from rlvr.rollout.spec import EngineSpec

    tiny = TinyModelConfig()
    tok = build_tokenizer()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path = str(save_tiny(build_model(tiny), tok, Path(tmp) / "tiny"))
        prompts = [tok.encode(f"{i}+{2 * i}=") for i in range(args.batch)]
        native, merged = _updates(path, args.rank)
        for name in ENGINES:
            engine = make_engine(
                name,
                model_path=path,
                spec=EngineSpec(
                    ModelConfig(dtype="float32"), RolloutConfig(), max_model_len=256, max_lora_rank=args.rank
                ),
                seed=0,
            )
            base = _throughput(engine, prompts, args.tokens, args.repeats)
            swap = _sync_ms(engine, native, args.repeats, 1)
            lora = _throughput(engine, prompts, args.tokens, args.repeats)
            reload = _sync_ms(engine, merged, args.repeats, 100)
            engine.close()
            row = {
                "engine": name,
                "base_tok_s": round(base),
                "lora_tok_s": round(lora),
                "adapter_swap_ms": round(swap, 1),
                "base_reload_ms": round(reload, 1),
            }
            print(json.dumps(row), flush=True)
            rows.append(row)
    print(
        f"\ntiny Qwen2 hidden {tiny.hidden_size}, {tiny.num_layers} layers, fp32, batch {args.batch} x {args.tokens} "
        f"new tokens, LoRA rank {args.rank} on all linear layers, {args.threads} thread(s), median of {args.repeats}\n"
    )
    print("| engine | base tok/s | LoRA tok/s | adapter swap (native) ms | base reload (merged) ms |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['engine']} | {r['base_tok_s']} | {r['lora_tok_s']} | {r['adapter_swap_ms']} | "
            f"{r['base_reload_ms']} |"
        )


if __name__ == "__main__":
    main()
