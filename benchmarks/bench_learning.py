"""Does GRPO with LoRA learn on the tiny base? Held-out accuracy before and after a short demo-cpu trial.

    RLVR_DATA_DIR=/work/shared/data .venv/bin/python benchmarks/bench_learning.py \
        [--variant "name:key=value,key=value" ...] [--seeds 42,7,1] [override ...]

Each variant is the demo-cpu trial (configs/trials/demo-cpu.yaml) plus the shared overrides plus its own; the
trial evaluates the held-out synthetic:addition problems (avg@k at the eval temperature) at its start and its
end, so "before" and "after" are the trial's own numbers. With --seeds every variant runs once per seed, and a
summary gives each variant's gain over seeds (mean, sd, min, max): the spread that test thresholds come from.
Variants run one after another in one local Ray; prints one JSON line per trial and markdown tables for
benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import tempfile

from bench_trial import load_average, run_trials


def eval_by_step(trial_dir: str) -> dict[int, dict]:
    """step -> {avg_at_k, pass_at_k} of the trial's synthetic:addition evaluations."""
    import pyarrow.parquet as pq

    rows = pq.read_table(f"{trial_dir}/eval/summary.parquet").to_pylist()
    return {r["step"]: r for r in rows if r["benchmark"].startswith("synthetic:")}


def main() -> None:
    from rlvr.config.loader import load_trial

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", action="append", default=[], help='"name:key=value,key=value" (repeatable)')
    parser.add_argument("--seeds", default="", help="comma-separated seeds: each variant runs once per seed")
    parser.add_argument("--out", default=None)
    parser.add_argument("overrides", nargs="*", help="key=value overrides for every variant")
    args = parser.parse_args()

    variants = {}
    for spec in args.variant or ["demo:"]:
        name, _, items = spec.partition(":")
        own = [*args.overrides, *[i for i in items.split(",") if i]]
        for seed in [s for s in args.seeds.split(",") if s] or [None]:
            variants[name if seed is None else f"{name}@{seed}"] = own if seed is None else [*own, f"seed={seed}"]
    trials = {name: load_trial("demo-cpu", overrides) for name, overrides in variants.items()}
    results = run_trials(trials, args.out or tempfile.mkdtemp(prefix="bench-learning-"))

    rows = []
    for name, r in results.items():
        evals = eval_by_step(r["trial_dir"])
        first, last = evals[min(evals)], evals[max(evals)]
        rows.append(
            {
                "variant": name,
                "overrides": variants[name],
                "before": round(first["avg_at_k"], 4),
                "after": round(last["avg_at_k"], 4),
                "gain_points": round(100 * (last["avg_at_k"] - first["avg_at_k"]), 1),
                "pass_before": round(first["pass_at_k"], 4),
                "pass_after": round(last["pass_at_k"], 4),
                "steps": max(evals),
                "wall_s": round(r["wall_s"], 1),
                "train_reward": [round(m["reward_mean"], 2) for m in r["metrics"]],
                "load": r["load"],
            }
        )
        print(json.dumps(rows[-1]))
    print("\n| variant | overrides | avg@k before | after | gain (points) | steps | wall (s) | load |")
    print("|---|---|---:|---:|---:|---:|---:|---|")
    for r in rows:
        print(
            f"| {r['variant']} | `{' '.join(r['overrides'])}` | {r['before']:.3f} | {r['after']:.3f} | "
            f"{r['gain_points']:+.1f} | {r['steps']} | {r['wall_s']:.0f} | {r['load']} |"
        )
    if args.seeds:
        import numpy as np

        print("\n| variant | seeds | gain mean (points) | sd | min | max |")
        print("|---|---:|---:|---:|---:|---:|")
        for name in dict.fromkeys(r["variant"].split("@")[0] for r in rows):
            gains = np.array([r["gain_points"] for r in rows if r["variant"].split("@")[0] == name])
            print(
                f"| {name} | {len(gains)} | {gains.mean():+.1f} | {gains.std(ddof=1) if len(gains) > 1 else 0:.1f} | "
                f"{gains.min():+.1f} | {gains.max():+.1f} |"
            )
    print(f"\nload average at the end: {load_average()}")


if __name__ == "__main__":
    main()
