"""Does GRPO with LoRA learn on the tiny base? Held-out accuracy before and after a short demo-cpu trial.

    RLVR_DATA_DIR=/work/shared/data .venv/bin/python benchmarks/bench_learning.py \
        [--variant "name:key=value,key=value" ...] [override ...]

Each variant is the demo-cpu trial (configs/trials/demo-cpu.yaml) plus the shared overrides plus its own; the
trial evaluates the held-out synthetic:addition problems (avg@k at the eval temperature) at its start and its
end, so "before" and "after" are the trial's own numbers. Variants run one after another in one local Ray;
prints one JSON line per variant and a markdown table for benchmarks/RESULTS.md.
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
    parser.add_argument("--out", default=None)
    parser.add_argument("overrides", nargs="*", help="key=value overrides for every variant")
    args = parser.parse_args()

    variants = {}
    for spec in args.variant or ["demo:"]:
        name, _, items = spec.partition(":")
        variants[name] = [*args.overrides, *[i for i in items.split(",") if i]]
    trials = {name: load_trial("demo-cpu", overrides) for name, overrides in variants.items()}
    results = run_trials(trials, args.out or tempfile.mkdtemp(prefix="bench-learning-"))

    rows = []
    for name, r in results.items():
        evals = eval_by_step(r["trial_dir"])
        first, last = evals[min(evals)], evals[max(evals)]
        rows.append({
            "variant": name, "overrides": variants[name],
            "before": round(first["avg_at_k"], 4), "after": round(last["avg_at_k"], 4),
            "gain_points": round(100 * (last["avg_at_k"] - first["avg_at_k"]), 1),
            "pass_before": round(first["pass_at_k"], 4), "pass_after": round(last["pass_at_k"], 4),
            "steps": max(evals), "wall_s": round(r["wall_s"], 1),
            "train_reward": [round(m["reward_mean"], 2) for m in r["metrics"]], "load": r["load"],
        })
        print(json.dumps(rows[-1]))
    print("\n| variant | overrides | avg@k before | after | gain (points) | steps | wall (s) | load |")
    print("|---|---|---:|---:|---:|---:|---:|---|")
    for r in rows:
        print(f"| {r['variant']} | `{' '.join(r['overrides'])}` | {r['before']:.3f} | {r['after']:.3f} | "
              f"{r['gain_points']:+.1f} | {r['steps']} | {r['wall_s']:.0f} | {r['load']} |")
    print(f"\nload average at the end: {load_average()}")


if __name__ == "__main__":
    main()
