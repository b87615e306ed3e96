"""One generate call mixing K adapters vs K single-adapter calls on one vLLM engine (issue 24).

    PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_mixed_lora.py [--adapters 8] [--prompts 32] [--tokens 48]
        [--repeats 3] [--kernels segmented|stock] [--output rlvr|stock] [--threads 1] [--max-seqs N] [--profile]

The demo's tiny base in fp32, K random rank-8 LoRA adapters on all linear modules (one per adapter slot), each
with its own prompts and seed (temperature 1). Each repeat times both sides back to back, alternating which goes
first, so a machine loaded by other work slows both alike; prints one JSON line per repeat (wall and CPU seconds,
the speed-ups, how many sequences got other tokens or other log-probs, the largest log-prob gap), asserts that both
sides sampled the same tokens, and prints a summary line of medians. The engine runs in this process, so CPU
seconds count all its work and move less with the load. ``--kernels stock`` keeps vLLM's own CPU LoRA kernels
(the per-token weight gather). ``--output stock`` has vLLM build each completion's text and every sampled
token's log-prob entry (a dict with the decoded token string) on every engine step, as rlvr's engine did before
it asked for neither (rlvr.rollout.vllm_outputs); the completions are the same. ``--max-seqs`` sets the
engine's batch limit (a mixed call above it queues requests). ``--profile`` then runs each side once under
cProfile and prints where its time went (``SPLIT``: cumulative seconds and calls per part): what bounds the
speed-up.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time

ALL_LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
# Parts of a generate call: (label, vLLM/rlvr source file suffix, function). Engine steps are paid once per step
# (the mixed call has 8x fewer); the rest is paid per request or token on both sides.
SPLIT = [
    ("engine steps", "v1/engine/llm_engine.py", "step"),
    ("model forward", "v1/worker/gpu_model_runner.py", "execute_model"),
    ("  LoRA layers", "rlvr/rollout/vllm_cpu_lora.py", "_deltas"),
    ("  LoRA metadata", "v1/worker/lora_model_runner_mixin.py", "set_active_loras"),
    ("sampling", "v1/worker/gpu_model_runner.py", "sample_tokens"),
    ("scheduling", "v1/core/sched/scheduler.py", "schedule"),
    ("scheduler update", "v1/core/sched/scheduler.py", "update_from_output"),
    ("output processing", "v1/engine/output_processor.py", "process_outputs"),
    ("  log-probs", "v1/engine/logprobs.py", "update_from_output"),
    ("completions", "rlvr/rollout/vllm_outputs.py", "completions"),
    ("text (vLLM's detokenizer)", "v1/engine/detokenizer.py", "update"),
    ("adding requests", "entrypoints/common/offline.py", "_add_completion_requests"),
]


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


def time_split(fn) -> dict:
    """Cumulative seconds and calls of each SPLIT part while ``fn`` runs once under cProfile."""
    import cProfile
    import pstats

    prof = cProfile.Profile()
    start = time.perf_counter()
    prof.runcall(fn)
    split = {"total": [round(time.perf_counter() - start, 3), 1]}
    stats = pstats.Stats(prof).stats
    for label, suffix, func in SPLIT:
        found = [(v[3], v[1]) for (path, _, name), v in stats.items() if path.endswith(suffix) and name == func]
        split[label] = [round(sum(t for t, _ in found), 3), sum(c for _, c in found)]
    return split


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--adapters", type=int, default=8)
    ap.add_argument("--prompts", type=int, default=32, help="prompts per adapter")
    ap.add_argument("--tokens", type=int, default=48)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--kernels", choices=["segmented", "stock"], default="segmented")
    ap.add_argument("--output", choices=["rlvr", "stock"], default="rlvr", help="stock: vLLM's per-token text")
    ap.add_argument("--threads", type=int, default=1, help="torch threads of the engine (a trial's: 1)")
    ap.add_argument("--max-seqs", type=int, default=None, help="the engine's max_num_seqs (default rlvr's: 256)")
    ap.add_argument("--profile", action="store_true", help="then profile each side once (SPLIT)")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
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
    if args.output == "stock":  # vLLM's defaults: text and log-prob entries built per token, read as before
        import rlvr.rollout.vllm_engine as vllm_engine
        from rlvr.rollout.types import Completion

        params = vllm_engine.sampling_params

        def stock_params(spec, prompts):
            out = params(spec, prompts)
            for p in out:
                p.detokenize, p.flat_logprobs = True, False
            return out

        def stock_completions(i, output, _params, _tokenizer):
            return [
                Completion(
                    i,
                    list(c.token_ids),
                    [s[t].logprob for s, t in zip(c.logprobs, c.token_ids)],
                    c.text,
                    c.finish_reason,
                )
                for c in output.outputs
            ]

        vllm_engine.sampling_params, vllm_engine.completions = stock_params, stock_completions
    if args.max_seqs:  # the engine's batch limit (engine_placement: 256 on CPU); a call above it queues requests
        import rlvr.rollout.vllm_engine as vllm_engine

        placement = vllm_engine.engine_placement

        def wider(spec, on_gpu):
            p = placement(spec, on_gpu)
            tokens = p["max_num_batched_tokens"] // p["max_num_seqs"] * args.max_seqs
            return {**p, "max_num_seqs": args.max_seqs, "max_num_batched_tokens": tokens}

        vllm_engine.engine_placement = wider
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
        same = [(m, a) for m, a in pairs if m.token_ids == a.token_ids]
        gap = max(abs(x - y) for m, a in same for x, y in zip(m.logprobs, a.logprobs))
        row = {
            "repeat": repeat,
            "first": "mixed" if repeat % 2 == 0 else "separate",
            "mixed_s": round(t_mixed, 3),
            "separate_s": round(t_sep, 3),
            "speedup": round(t_sep / t_mixed, 2),
            "mixed_cpu_s": round(cpu_mixed, 3),
            "separate_cpu_s": round(cpu_sep, 3),
            "cpu_speedup": round(cpu_sep / cpu_mixed, 2),
            "max_logprob_gap": gap,  # over the sequences with the same tokens on both sides
            "sequences": len(pairs),
            "other_tokens": len(pairs) - len(same),
            "other_logprobs": sum(m.logprobs != a.logprobs for m, a in same),
            "mean_tokens": statistics.mean(len(m.token_ids) for m, _ in pairs),
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
        assert len(same) == len(pairs), "the mixed call sampled other tokens"
    keys = ("mixed_s", "separate_s", "speedup", "mixed_cpu_s", "separate_cpu_s", "cpu_speedup")
    summary = {
        "kernels": args.kernels,
        "adapters": args.adapters,
        "prompts": args.prompts,
        "tokens": args.tokens,
        "threads": args.threads,
        "max_seqs": args.max_seqs,
        "output": args.output,
        **{f"median_{k}": statistics.median(r[k] for r in rows) for k in keys},
    }
    print(json.dumps({"summary": summary}), flush=True)
    if args.profile:
        for name, fn in (("mixed", lambda: engine.generate_mixed(batches)), ("separate", separate)):
            print(json.dumps({"profile": name, **time_split(fn)}), flush=True)
    engine.close()


if __name__ == "__main__":
    main()
