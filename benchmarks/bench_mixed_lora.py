"""One generate call mixing K adapters vs K single-adapter calls on one vLLM engine (issue 24).

    PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_mixed_lora.py [--adapters 8] [--prompts 32] [--tokens 48]
        [--repeats 3] [--kernels segmented|stock]

The demo's tiny base in fp32, K random rank-8 LoRA adapters on all linear modules (one per adapter slot), each
with its own prompts and seed (temperature 1). Each repeat times both sides back to back, alternating which goes
first, so a machine loaded by other work slows both alike; asserts that both sides sample the same tokens and
prints one JSON line per repeat (seconds, the speed-up, the largest log-prob gap) and a summary line.
``--kernels stock`` puts vLLM's own CPU LoRA kernels back after the engine starts (the per-token gather).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time

ALL_LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def random_adapter(path: str, seed: int, version: int):
    """A peft LoRA with random non-zero weights on the base, as the PolicyUpdate a learner sends."""
    import torch
    from peft import LoraConfig, get_peft_model, get_peft_model_state_dict
    from safetensors.torch import save
    from transformers import AutoModelForCausalLM

    from rlvr.sync.update import PolicyUpdate

    torch.manual_seed(seed)
    base = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    peft = get_peft_model(base, LoraConfig(r=8, lora_alpha=16, target_modules=ALL_LINEAR, init_lora_weights=False))
    config = peft.peft_config["default"].to_dict()
    return PolicyUpdate(version, "native", save(get_peft_model_state_dict(peft)), config)


def restore_stock_kernels() -> None:
    import vllm.lora.ops.torch_ops as stock
    from vllm.lora.ops.torch_ops import lora_ops
    from vllm.lora.punica_wrapper import punica_cpu

    for module in (lora_ops, punica_cpu):
        for name in ("bgmv_shrink", "bgmv_expand", "bgmv_expand_slice"):
            setattr(module, name, getattr(stock, name))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--adapters", type=int, default=8)
    ap.add_argument("--prompts", type=int, default=32, help="prompts per adapter")
    ap.add_argument("--tokens", type=int, default=48)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--kernels", choices=["segmented", "stock"], default="segmented")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(1)
    from rlvr.config.loader import load_trial
    from rlvr.models.loading import load_tokenizer, resolve_model_path
    from rlvr.rollout.types import SamplingSpec, SlotBatch
    from rlvr.rollout.vllm_engine import VLLMEngine

    cfg = load_trial("demo-cpu", ["model.dtype=float32"])
    path = resolve_model_path(cfg.model)
    tok = load_tokenizer(cfg.model, path)
    engine = VLLMEngine(path, cfg.model, cfg.rollout, 8, cfg.seed, adapter_slots=args.adapters)
    if args.kernels == "stock":
        restore_stock_kernels()
    rng = random.Random(0)
    batches = []
    for slot in range(args.adapters):
        engine.load_policy(random_adapter(path, seed=slot, version=slot + 1), slot=slot)
        prompts = [tok.encode(f"{rng.randint(10, 99)}+{rng.randint(10, 99)}=") for _ in range(args.prompts)]
        batches.append(SlotBatch(slot, prompts, SamplingSpec(max_new_tokens=args.tokens, seed=1000 * slot)))
    engine.generate_mixed(batches[:1])  # warm-up

    def separate():
        return [engine.generate_mixed([b])[0] for b in batches]

    rows = []
    for repeat in range(args.repeats):
        sides = {}
        for name in (("mixed", "separate") if repeat % 2 == 0 else ("separate", "mixed")):
            start = time.perf_counter()
            out = engine.generate_mixed(batches) if name == "mixed" else separate()
            sides[name] = (time.perf_counter() - start, out)
        (t_mixed, mixed), (t_sep, alone) = sides["mixed"], sides["separate"]
        pairs = [(m, a) for gm, ga in zip(mixed, alone) for sm, sa in zip(gm, ga) for m, a in zip(sm, sa)]
        assert all(m.token_ids == a.token_ids for m, a in pairs), "the mixed call sampled other tokens"
        gap = max(abs(x - y) for m, a in pairs for x, y in zip(m.logprobs, a.logprobs))
        row = {"repeat": repeat, "first": "mixed" if repeat % 2 == 0 else "separate", "mixed_s": round(t_mixed, 3),
               "separate_s": round(t_sep, 3), "speedup": round(t_sep / t_mixed, 2), "max_logprob_gap": gap,
               "sequences": len(pairs), "mean_tokens": statistics.mean(len(m.token_ids) for m, _ in pairs)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    print(json.dumps({"summary": True, "kernels": args.kernels, "adapters": args.adapters, "prompts": args.prompts,
                      "tokens": args.tokens, "median_mixed_s": statistics.median(r["mixed_s"] for r in rows),
                      "median_separate_s": statistics.median(r["separate_s"] for r in rows),
                      "median_speedup": statistics.median(r["speedup"] for r in rows)}), flush=True)
    engine.close()


if __name__ == "__main__":
    main()
