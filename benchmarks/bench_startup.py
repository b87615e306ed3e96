"""Where a demo trial's start-up goes: run a small sweep (tests/sweep/demo-mini.yaml: lora, ia3, pissa, one per
sync route) and print, per trial, the seconds from the attempt's start to its first step.

    .venv/bin/python benchmarks/bench_startup.py [--steps 3] [--storage /tmp/bench-startup] [overrides ...]

Columns (seconds): task = attempt started -> run_trial entered (Ray worker process, imports); init = controller
(tokenizer, train set); learner = learner actor up and its model built; engines, rewards = what those actors
took beyond the learner (they start at the same time); reset = a warm pool's lease (its parts reset for the
trial, instead of learner/engines/rewards; pass pools=false to start every trial's own); sync = initial weight
sync and probe; eval0 = the step-0 evaluation; step1 = the first training step; total = attempt start -> step 1
done.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

from rlvr.sweep.cli import sweep_command

CONFIG = str(Path(__file__).resolve().parent.parent / "tests" / "sweep" / "demo-mini.yaml")
COLUMNS = ("task", "t_init", "t_learner", "t_engines", "t_rewards", "t_reset", "t_sync", "eval0", "step1", "total")


def split(trial_dir: Path, record: dict) -> dict[str, float]:
    startup = json.loads((trial_dir / "startup.json").read_text())
    started = record["history"][-1]["started_at"]
    steps = [json.loads(line) for line in (trial_dir / "metrics.jsonl").read_text().splitlines()]
    step1_end = steps[0]["time"]
    ready = startup["entered_at"] + startup["t_total"]
    row = {"task": startup["entered_at"] - started, **{k: startup[k] for k in COLUMNS if k in startup}}
    row["step1"] = steps[0]["t_step"]
    row["eval0"] = step1_end - steps[0]["t_step"] - ready
    row["total"] = step1_end - started
    return row


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--storage", default="/tmp/bench-startup")
    parser.add_argument("overrides", nargs="*", help="more sweep overrides")
    args = parser.parse_args()
    shutil.rmtree(f"{args.storage}/demo-mini", ignore_errors=True)
    t = time.perf_counter()
    overrides = [f"base.steps={args.steps}", f"base.checkpoint.every_steps={args.steps}", f"storage={args.storage}"]
    code = sweep_command(CONFIG, [*overrides, *args.overrides])
    wall = time.perf_counter() - t
    run = Path(args.storage) / "demo-mini"
    print(f"sweep exit {code}, wall {wall:.1f} s")
    print("trial      " + " ".join(f"{c.removeprefix('t_'):>8}" for c in COLUMNS))
    for ledger in sorted((run / "ledger").glob("*.json")):
        record = json.loads(ledger.read_text())
        row = split(run / "trials" / record["trial_id"], record)
        name = record["label"].split("/")[2]
        print(f"{name:<10} " + " ".join(f"{row.get(c, float('nan')):8.2f}" for c in COLUMNS))


if __name__ == "__main__":
    main()
