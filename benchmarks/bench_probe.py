"""The post-sync probe's gaps in bf16 and fp32: engine serving the right version vs one version behind.

    .venv/bin/python benchmarks/bench_probe.py [--dtype bfloat16] [--method uniform/lora] [--steps 4] [--lr 2e-3]

Builds the demo trial's learner and a vLLM engine in this process, trains ``--steps`` steps on the engine's
own samples (random 0/1 rewards: the update's size is what matters here), and after every sync prints, as a
JSON line, the per-token |engine - learner| log-prob gaps for the version just sent ("right") and for the
engine still serving the previous version ("behind").
"""

from __future__ import annotations

import argparse
import json
import random


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dtype", default="bfloat16")
    ap.add_argument("--method", default="uniform/lora")
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--probe-tokens", type=int, default=64)
    args = ap.parse_args()

    import torch

    torch.set_num_threads(1)
    from rlvr.config.loader import load_trial
    from rlvr.learner.batch import RolloutBatch
    from rlvr.learner.learner import Learner
    from rlvr.learner.spec import LearnerSpec
    from rlvr.models.loading import load_tokenizer, resolve_model_path
    from rlvr.peft_methods.registry import method_info
    from rlvr.rollout.types import SamplingSpec
    from rlvr.rollout.vllm_engine import VLLMEngine
    from rlvr.sync.probe import probe_sequence

    cfg = load_trial("demo-cpu", [f"model.dtype={args.dtype}", f"method={args.method}", f"algorithm.lr={args.lr}"])
    path = resolve_model_path(cfg.model)
    tok = load_tokenizer(cfg.model, path)
    learner = Learner(LearnerSpec.from_trial(cfg), path)
    info = method_info(cfg.method.name)
    engine = VLLMEngine(path, cfg.model, cfg.rollout, cfg.method.rank if info.route != "merged" else None, cfg.seed)
    prompt, completion = probe_sequence(tok, args.probe_tokens)
    rng = random.Random(0)
    prompts = [tok.encode(f"{rng.randint(10, 99)}+{rng.randint(10, 99)}=") for _ in range(16)]
    behind = before = None
    for version in range(args.steps + 1):
        engine.load_policy(learner.export(version, include_base=version == 0))
        want = learner.logprobs(prompt, completion)
        got = engine.score(prompt, completion)
        assert engine.score(prompt, completion) == got, "the engine's probe scores are not repeatable"
        row = {"dtype": args.dtype, "method": args.method, "lr": args.lr, "version": version,
               "right": [abs(a - b) for a, b in zip(got, want)]}
        if behind is not None:
            row["behind"] = [abs(a - b) for a, b in zip(behind, want)]
            row["learner_moved"] = sum(abs(a - b) for a, b in zip(before, want)) / len(want)
            row["engine_identical"] = behind == got
        for key in ("right", "behind"):
            if key in row:
                row[f"{key}_max"], row[f"{key}_mean"] = max(row[key]), sum(row[key]) / len(row[key])
        print(json.dumps(row), flush=True)
        behind, before = got, want
        groups = engine.generate(prompts, SamplingSpec(n=8, max_new_tokens=16, seed=version))
        ids, comps, lps, adv = [], [], [], []
        for p, group in zip(prompts, groups):
            rewards = [float(rng.random() < 0.5) for _ in group]
            mean = sum(rewards) / len(rewards)
            for c, r in zip(group, rewards):
                ids.append(p), comps.append(c.token_ids), lps.append(c.logprobs), adv.append(r - mean)
        learner.train_step(RolloutBatch(ids, comps, lps, adv, [True] * len(ids)))
    engine.close()


if __name__ == "__main__":
    main()
