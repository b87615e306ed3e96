"""Tenants in lock-step against one after another: K trials of one tenant key (default: LoRA, PiSSA and VeRA,
each served as a rank-16 LoRA on the original base) run together in a tenant pool (rlvr.pool.tenants), and the
same K trials one after another in a warm pool (rlvr.pool.warm); wall time of each, and per step the time split
(generate: the tenant's t_generate less its wait at the barrier; wait: at the barrier; learn; sync) averaged over
the trials, and whether every trial's metrics (less timings) came out the same both ways.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_tenants.py [--out /tmp/bench-tenants] [overrides ...]

Overrides apply to every trial (default: demo-cpu, 3 steps, no evaluation). Both ways start their parts once
(included in the wall time). One run of each; on a loaded machine the figures move by tens of percent.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

from rlvr.config.layout import TrialLayout
from rlvr.config.loader import load_trial
from rlvr.pool.tenants import TenantPool
from rlvr.pool.warm import WarmPool
from rlvr.trial.controller import STEP_PHASES
from rlvr.trial.local_ray import init_local_ray
from rlvr.trial.runner import run_trial

TIMINGS = set(STEP_PHASES) | {"t_step", "tokens_per_s", "time"}
TRIALS = {
    "lora": ["method.name=lora", "method.rank=16", "method.alpha=32"],
    "pissa": ["method.name=pissa", "method.rank=8"],
    "vera": ["method.name=vera", "method.rank=16", "method.alpha=null"],
}
DEFAULTS = ["steps=3", "checkpoint.every_steps=3", "eval.benchmarks=[]", "rollout.sync_route=native"]


def metrics(trial_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (trial_dir / TrialLayout.METRICS).read_text().splitlines()]


def split(dirs: list[Path], waits: list[float]) -> dict[str, float]:
    """Seconds per step, averaged over the trials: generate (less the barrier), wait, learn, sync, step."""
    rows = [(metrics(d), w) for d, w in zip(dirs, waits)]
    steps = sum(len(m) for m, _ in rows)
    total = lambda key: sum(r[key] for m, _ in rows for r in m)  # noqa: E731
    wait = sum(w for _, w in rows)
    return {
        "generate": (total("t_generate") - wait) / steps,
        "wait": wait / steps,
        "learn": total("t_learn") / steps,
        "sync": total("t_sync") / steps,
        "step": total("t_step") / steps,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="/tmp/bench-tenants")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    init_local_ray(num_cpus=8)
    configs = {name: load_trial("demo-cpu", [*DEFAULTS, *more, *args.overrides]) for name, more in TRIALS.items()}

    pool, t0 = WarmPool("one-after-another"), time.perf_counter()
    try:
        for name, cfg in configs.items():
            run_trial(cfg, str(out / "sequential" / name), pool=pool)
    finally:
        pool.close()
    sequential_s = time.perf_counter() - t0

    tenants, t0 = TenantPool("tenants", tenants=len(configs)), time.perf_counter()
    try:
        errors = tenants.run([(cfg, out / "tenants" / name) for name, cfg in configs.items()])
        waits = [tenants.parts.batcher.waits[slot] for slot in range(len(configs))]
        flushes, requests = tenants.parts.batcher.flushes, tenants.parts.batcher.requests
    finally:
        tenants.close()
    tenants_s = time.perf_counter() - t0
    if any(errors):
        raise SystemExit(f"a tenant failed: {errors}")

    strip = lambda rows: [{k: v for k, v in r.items() if k not in TIMINGS} for r in rows]  # noqa: E731
    same = {n: strip(metrics(out / "sequential" / n)) == strip(metrics(out / "tenants" / n)) for n in configs}
    seq = split([out / "sequential" / n for n in configs], [0.0] * len(configs))
    ten = split([out / "tenants" / n for n in configs], waits)
    print(f"trials: {', '.join(configs)}; {configs['lora'].steps} steps each; overrides: {args.overrides}")
    print(f"wall: one after another {sequential_s:.1f} s, tenants {tenants_s:.1f} s ({sequential_s / tenants_s:.2f}x)")
    print(f"tenant flushes: {flushes} for {requests} requests")
    print("per step (s, mean over trials): " + " | ".join(f"{k}" for k in seq))
    print("  one after another: " + " | ".join(f"{v:.2f}" for v in seq.values()))
    print("  tenants:           " + " | ".join(f"{v:.2f}" for v in ten.values()))
    print(f"same metrics (less timings) both ways: {same}")


if __name__ == "__main__":
    main()
