"""Sweep controller overheads on local Ray: grid expansion, ledger writes, and per-trial scheduling cost
(placement group + task + ledger) with the smoke trial at zero seconds per step.

    .venv/bin/python benchmarks/bench_sweep.py [--trials 16] [--cpus 8]
"""

import argparse
import functools
import os
import tempfile
import time

import ray

from rlvr.config.grid import expand
from rlvr.config.loader import load_sweep
from rlvr.config.schema import CheckpointConfig, SweepConfig, TrialConfig
from rlvr.storage import RunStorage
from rlvr.sweep.controller import run_sweep
from rlvr.sweep.ledger import Ledger
from rlvr.sweep.smoke import smoke_trial


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--cpus", type=int, default=8, help="logical CPUs declared to Ray (each trial takes 4)")
    args = parser.parse_args()

    t = time.perf_counter()
    cfg = load_sweep("paper-1.5b")
    load_s = time.perf_counter() - t
    t = time.perf_counter()
    specs = expand(cfg)
    expand_ms = (time.perf_counter() - t) * 1e3
    print(f"paper-1.5b: load+validate {load_s:.2f} s, expand {len(specs)} trials {expand_ms:.1f} ms")

    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        ledger = Ledger(RunStorage(f"{tmp}/ledger-bench"))
        t = time.perf_counter()
        records = ledger.sync(specs)
        for rec in records.values():
            ledger.put(rec)
        per_write_ms = (time.perf_counter() - t) * 1e3 / (2 * len(specs))
        print(f"ledger: {per_write_ms:.2f} ms per record write (local disk, write+rename)")

        os.environ["RAY_AUTH_MODE"] = "disabled"
        ray.init(address="local", include_dashboard=False, num_cpus=args.cpus, _temp_dir=f"{tmp}/ray")
        sweep = SweepConfig(
            name="bench",
            storage=tmp,
            seeds=list(range(args.trials)),
            base=TrialConfig(steps=1, checkpoint=CheckpointConfig(every_steps=1)),
        )
        t = time.perf_counter()
        run_sweep(sweep, trial_fn=functools.partial(smoke_trial, step_s=0.0, fail_at=0))
        wall = time.perf_counter() - t
        ray.shutdown()
    concurrent = args.cpus // 4
    print(
        f"scheduling: {args.trials} one-step trials, {concurrent} at a time: {wall:.1f} s, "
        f"{wall / args.trials:.2f} s per trial, {wall * concurrent / args.trials:.2f} s per trial slot"
    )


if __name__ == "__main__":
    main()
