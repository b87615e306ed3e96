"""One generate call mixing K adapters vs K single-adapter calls on one vLLM engine (issue 24).

    PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_mixed_lora.py [--adapters 8] [--prompts 32] [--tokens 48]
        [--repeats 3] [--kernels segmented|stock]

The demo's tiny base in fp32, K random rank-8 LoRA adapters on all linear modules (one per adapter slot), each
with its own prompts and seed (temperature 1). Each repeat times both sides back to back, alternating which goes
first, so a machine loaded by other work slows both alike; asserts that both sides sample the same tokens and
prints one JSON line per repeat (wall and CPU seconds, the speed-ups, the largest log-prob gap) and a summary line
of medians. The engine runs in this process, so CPU seconds count all its work and move less with the load.
``--kernels stock`` keeps vLLM's own CPU LoRA kernels (the per-token weight gather).
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
    from rlvr.rollout.spec import EngineSpec
    from rlvr.rollout.types import SamplingSpec, SlotBatch
    from rlvr.rollout.vllm_engine import VLLMEngine

    cfg = load_trial("demo-cpu", ["model.dtype=float32"])
    path = resolve_model_path(cfg.model)
    tok = load_tokenizer(cfg.model, path)
    if args.kernels == "stock":  # the engine runs in this process: skip installing rlvr's kernels in its worker
        import rlvr.rollout.vllm_worker_ops as worker_ops

        worker_ops.install_segmented_lora_kernels = lambda: None
    spec = EngineSpec(cfg.model, cfg.rollout, max_model_len=cfg.rollout.max_model_len, max_lora_rank=8)
    engine = VLLMEngine(path, spec, cfg.seed, adapter_slots=args.adapters)
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
        for name in ("mixed", "separate") if repeat % 2 == 0 else ("separate", "mixed"):
            start, cpu = time.perf_counter(), time.process_time()
            out = engine.generate_mixed(batches) if name == "mixed" else separate()
            sides[name] = (time.perf_counter() - start, time.process_time() - cpu, out)
        (t_mixed, cpu_mixed, mixed), (t_sep, cpu_sep, alone) = sides["mixed"], sides["separate"]
        pairs = [(m, a) for gm, ga in zip(mixed, alone) for sm, sa in zip(gm, ga) for m, a in zip(sm, sa)]
        assert all(m.token_ids == a.token_ids for m, a in pairs), "the mixed call sampled other tokens"
        gap = max(abs(x - y) for m, a in pairs for x, y in zip(m.logprobs, a.logprobs))
        row = {
            "repeat": repeat,
            "first": "mixed" if repeat % 2 == 0 else "separate",
            "mixed_s": round(t_mixed, 3),
            "separate_s": round(t_sep, 3),
            "speedup": round(t_sep / t_mixed, 2),
            "mixed_cpu_s": round(cpu_mixed, 3),
            "separate_cpu_s": round(cpu_sep, 3),
            "cpu_speedup": round(cpu_sep / cpu_mixed, 2),
            "max_logprob_gap": gap,
            "sequences": len(pairs),
            "mean_tokens": statistics.mean(len(m.token_ids) for m, _ in pairs),
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    keys = ("mixed_s", "separate_s", "speedup", "mixed_cpu_s", "separate_cpu_s", "cpu_speedup")
    summary = {
        "kernels": args.kernels,
        "adapters": args.adapters,
        "prompts": args.prompts,
        "tokens": args.tokens,
        **{f"median_{k}": statistics.median(r[k] for r in rows) for k in keys},
    }
    print(json.dumps({"summary": summary}), flush=True)
    engine.close()


if __name__ == "__main__":
    main()
