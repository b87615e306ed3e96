"""The long-reasoning base as RL meets it: accuracy and completion lengths at the trial's sampling settings.

    .venv/bin/python benchmarks/bench_long_base.py [--prompts 64] [override ...]

Samples the long-cpu trial's group size per held-out problem (configs/trials/long-cpu.yaml: tiny-long base,
temperature 1, 512 new tokens) with its engine, scores them with math-verify, and prints one JSON line: accuracy,
the length distribution (percentiles in tokens, truncated share), the spread within a group (mean of each group's
longest minus shortest and of its standard deviation) and the mean length of right and wrong completions.
Trailing ``key=value`` overrides apply to the trial config.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from dataclasses import replace

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()

    from rlvr.config.loader import load_trial
    from rlvr.config.trial_plan import TrialPlan
    from rlvr.data.benchmarks import SYNTHETIC_EVAL_SEED
    from rlvr.data.prompts import render_prompt
    from rlvr.data.train_sets import synthetic_benchmark
    from rlvr.models.loading import load_tokenizer, resolve_model_path
    from rlvr.rewards.pool import RewardItem, RewardPool
    from rlvr.rollout.registry import make_engine
    from rlvr.rollout.spec import EngineSpec
    from rlvr.rollout.types import SamplingSpec

    cfg = load_trial("long-cpu", args.overrides)
    path = resolve_model_path(cfg.model)
    tokenizer = load_tokenizer(cfg.model, path)
    task = cfg.data.source.split(":", 1)[1]
    rows = synthetic_benchmark(task, cfg.data.levels, args.prompts, SYNTHETIC_EVAL_SEED)
    prompts = [render_prompt(tokenizer, r["problem"], cfg.data.prompt_template, cfg.data.system_prompt) for r in rows]
    plan = TrialPlan.from_config(cfg)
    engine = make_engine(
        cfg.rollout.engine,
        model_path=path,
        spec=replace(EngineSpec.from_trial(cfg, plan), max_lora_rank=None),
        seed=cfg.seed,
    )
    spec = SamplingSpec(
        n=cfg.algorithm.group_size,
        temperature=cfg.rollout.temperature,
        top_p=cfg.rollout.top_p,
        max_new_tokens=cfg.rollout.max_new_tokens,
        seed=cfg.seed,
    )
    start = time.perf_counter()
    groups = engine.generate(prompts, spec)
    generate_s = time.perf_counter() - start
    engine.close()
    with RewardPool(cfg.reward) as pool:
        results = pool.score([RewardItem(c.text, r["answer"], c.truncated) for r, g in zip(rows, groups) for c in g])
    flat = [c for g in groups for c in g]
    lengths = np.array([len(c.token_ids) for c in flat])
    correct = np.array([r.correct for r in results])
    per_group = [[len(c.token_ids) for c in g] for g in groups]
    print(
        json.dumps(
            {
                "prompts": len(rows),
                "completions": len(flat),
                "accuracy": round(float(correct.mean()), 4),
                "len_mean": round(float(lengths.mean()), 1),
                "len_percentiles_0_10_50_90_100": [int(np.percentile(lengths, q)) for q in (0, 10, 50, 90, 100)],
                "truncated_frac": round(float(np.mean([c.truncated for c in flat])), 4),
                "group_range_mean": round(statistics.fmean(max(g) - min(g) for g in per_group), 1),
                "group_std_mean": round(statistics.fmean(float(np.std(g)) for g in per_group), 1),
                "len_mean_right": round(float(lengths[correct].mean()), 1) if correct.any() else None,
                "len_mean_wrong": round(float(lengths[~correct].mean()), 1) if (~correct).any() else None,
                "generate_s": round(generate_s, 1),
                "tokens": int(lengths.sum()),
                "load": f"{os.getloadavg()[0]:.1f}",
            }
        )
    )


if __name__ == "__main__":
    main()
