"""Independence for every demo method, and the `make demo` wall time before/after warm pools: the demo sweep
(configs/sweeps/demo-cpu.yaml, 14 methods) run the old way (``pools=false max_concurrent=1``: each trial starts
its own actors, one at a time) and the new default (warm pools, two trials at once), then, per trial, the
metrics.jsonl (less timings), the newest checkpoint's weights and the final evaluation compared exactly.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_pool_independence.py [--storage /tmp/bench-indep] [overrides ...]

Slow (two whole demo sweeps), so not part of the test suite. Overrides apply to both runs (``base.steps=5``
makes it shorter), except that the cold run stays the old path: ``--sweep demo-cpu-lr max_concurrent=2`` times the
36-trial learning-rate grid one cold trial at a time against warm pools two at a time. A run directory that already
holds finished trials is resumed, not re-run: its wall time is then not a measurement (use a fresh --storage for
timings). Exit status 1 if any trial differs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import load_file

from rlvr.config.layout import TrialLayout
from rlvr.config.loader import load_sweep
from rlvr.sweep.controller import run_dir, run_sweep
from rlvr.trial.controller import STEP_PHASES

TIMINGS = set(STEP_PHASES) | {"t_step", "tokens_per_s", "time"}
RUNS = {"cold": ["pools=false", "max_concurrent=1"], "warm": []}  # warm: the shipped defaults


def metrics(trial_dir: Path) -> list[dict]:
    rows = [json.loads(line) for line in (trial_dir / TrialLayout.METRICS).read_text().splitlines()]
    return [{k: v for k, v in row.items() if k not in TIMINGS} for row in rows]


def newest_weights(trial_dir: Path) -> tuple[str, dict[str, torch.Tensor]]:
    folder = max((trial_dir / TrialLayout.CHECKPOINTS).glob("step_*"))
    return folder.name, load_file(str(folder / TrialLayout.TRAINABLE))


def differences(cold: Path, warm: Path, cold_row: dict, warm_row: dict) -> list[str]:
    out = []
    if metrics(cold) != metrics(warm):
        out.append("metrics.jsonl")
    (cold_step, a), (warm_step, b) = newest_weights(cold), newest_weights(warm)
    if cold_step != warm_step or a.keys() != b.keys() or not all(a[k].equal(b[k]) for k in a):
        out.append(f"weights ({cold_step} vs {warm_step})")
    evals = [k for k in cold_row if k.startswith("eval/")]
    if [cold_row[k] for k in evals] != [warm_row.get(k) for k in evals]:
        out.append("evaluation")
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sweep", default="demo-cpu")
    parser.add_argument("--storage", default="/tmp/bench-indep")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()

    tables, dirs = {}, {}
    for name, knobs in RUNS.items():
        cfg = load_sweep(args.sweep, [f"storage={args.storage}/{name}", *args.overrides, *knobs])
        load_before, t = os.getloadavg()[0], time.perf_counter()
        tables[name] = {r["trial_id"]: r for r in run_sweep(cfg, worker_logs=False).to_pylist()}
        print(
            f"{name} ({' '.join(knobs) or 'defaults'}, max_concurrent={cfg.max_concurrent}): "
            f"{time.perf_counter() - t:.1f} s wall, load average {load_before:.1f} -> {os.getloadavg()[0]:.1f}"
        )
        dirs[name] = Path(run_dir(cfg)) / "trials"

    failed = 0
    for tid, cold_row in tables["cold"].items():
        warm_row = tables["warm"][tid]
        if cold_row["status"] != "done" or warm_row["status"] != "done":
            diff = [f"status cold={cold_row['status']} warm={warm_row['status']}"]
        else:
            diff = differences(dirs["cold"] / tid, dirs["warm"] / tid, cold_row, warm_row)
        failed += bool(diff)
        print(f"{cold_row['label']:40s} {'DIFFERS: ' + ', '.join(diff) if diff else 'identical'}")
    print(f"{len(tables['cold']) - failed}/{len(tables['cold'])} trials identical warm and cold")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
