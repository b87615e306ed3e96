"""Trial step time split (generate, reward, learn, sync) and sync time per weight-sync route.

    RLVR_DATA_DIR=/work/shared/data .venv/bin/python benchmarks/bench_trial.py [--steps 6] \
        [--methods lora,pissa,dora] [override ...]

Runs the demo-cpu trial (configs/trials/demo-cpu.yaml, pretrained tiny base) for each method in one private
local Ray, without evaluation, and prints per-step medians (the first step, which pays for warm-up, is left
out) as JSON lines and a markdown table for benchmarks/RESULTS.md. Trailing ``key=value`` overrides apply to
every trial. bench_trl.py and bench_learning.py reuse ``run_trials`` and ``step_summary``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from rlvr.config.schema import TrialConfig

# lora ships adapter tensors, pissa a residual base once and then adapter tensors, dora merged weights.
ROUTE_METHODS = {"lora": "native", "pissa": "converted", "dora": "merged"}
PHASES = ("t_generate", "t_reward", "t_learn", "t_sync", "t_export", "t_load", "t_probe", "t_step")
NO_EVAL = ["eval.benchmarks=[]"]


def load_average() -> str:
    """The 1-minute load average: the machine is shared, so every measurement carries it."""
    return f"{os.getloadavg()[0]:.1f}"


def run_trials(trials: dict[str, TrialConfig], out_dir: str) -> dict[str, dict]:
    """Run each trial to its end in one private local Ray; label -> {metrics, final, wall_s, start_s, load}.

    ``start_s`` is actor start-up plus the initial sync and the start evaluation (until the first step's
    metrics are written); ``wall_s`` the whole run_trial call.
    """
    import ray

    from rlvr.trial.local_ray import init_local_ray
    from rlvr.trial.runner import run_trial

    init_local_ray()
    results = {}
    try:
        for label, cfg in trials.items():
            trial_dir = str(Path(out_dir) / label)
            load_before = load_average()
            start_wall, start = time.time(), time.perf_counter()
            final = run_trial(cfg, trial_dir)
            wall = time.perf_counter() - start
            metrics = [json.loads(line) for line in (Path(trial_dir) / "metrics.jsonl").read_text().splitlines()]
            first_step_end = metrics[0]["time"] - metrics[0]["t_step"] if metrics else start_wall
            results[label] = {
                "metrics": metrics,
                "final": final,
                "wall_s": wall,
                "start_s": first_step_end - start_wall,
                "load": f"{load_before}->{load_average()}",
                "trial_dir": trial_dir,
            }
    finally:
        ray.shutdown()
    return results


def step_summary(metrics: list[dict], completions_per_step: int, skip: int = 1) -> dict:
    """Medians over steps after the first ``skip`` (warm-up) of every phase, and the per-step throughput."""
    steady = metrics[skip:] or metrics
    out = {k: statistics.median(m[k] for m in steady) for k in PHASES}
    tokens = [m["response_len"] * completions_per_step for m in steady]
    out["completions_per_s"] = statistics.median(completions_per_step / m["t_step"] for m in steady)
    out["tokens_per_s_step"] = statistics.median(t / m["t_step"] for t, m in zip(tokens, steady))
    out["tokens_per_s_generate"] = statistics.median(m["tokens_per_s"] for m in steady)
    out["response_len"] = statistics.median(m["response_len"] for m in steady)
    out["steps_measured"] = len(steady)
    return out


def main() -> None:
    from rlvr.config.loader import load_trial

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--methods", default=",".join(ROUTE_METHODS))
    parser.add_argument("--out", default=None, help="trial directories (default: a temporary folder)")
    parser.add_argument("overrides", nargs="*", help="key=value overrides for every trial")
    args = parser.parse_args()

    out_dir = args.out or tempfile.mkdtemp(prefix="bench-trial-")
    trials = {
        m: load_trial(
            "demo-cpu",
            [
                f"method=uniform/{m}",
                f"steps={args.steps}",
                f"checkpoint.every_steps={args.steps}",
                *NO_EVAL,
                *args.overrides,
            ],
        )
        for m in args.methods.split(",")
    }
    results = run_trials(trials, out_dir)
    rows = []
    for label, r in results.items():
        cfg = trials[label]
        s = step_summary(r["metrics"], cfg.algorithm.prompts_per_step * cfg.algorithm.group_size)
        row = {
            "method": label,
            "route": ROUTE_METHODS.get(label, "?"),
            "start_s": round(r["start_s"], 1),
            "load": r["load"],
            **{k: round(v, 4) if isinstance(v, float) else v for k, v in s.items()},
        }
        rows.append(row)
        print(json.dumps(row))
    print(
        "\n| method (route) | step (s) | generate | reward | learn | sync: export + load + probe (ms) | "
        "gen tok/s | step tok/s | completions/s | load |"
    )
    print("|---|---:|---:|---:|---:|---|---:|---:|---:|---|")
    for r in rows:
        sync = (
            f"{1e3 * r['t_sync']:.0f}: {1e3 * r['t_export']:.0f} + {1e3 * r['t_load']:.0f} + {1e3 * r['t_probe']:.0f}"
        )
        print(
            f"| {r['method']} ({r['route']}) | {r['t_step']:.2f} | {r['t_generate']:.2f} | {r['t_reward']:.2f} | "
            f"{r['t_learn']:.2f} | {sync} | {r['tokens_per_s_generate']:.0f} | {r['tokens_per_s_step']:.0f} | "
            f"{r['completions_per_s']:.1f} | {r['load']} |"
        )


if __name__ == "__main__":
    main()
