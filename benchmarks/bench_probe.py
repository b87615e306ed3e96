"""The post-sync probe against a catalogue of injected sync bugs, per dtype and sync route.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_probe.py --method uniform/lora --dtype bfloat16 \\
        --steps 12 --out probe-lora-bf16.jsonl
    PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_probe.py --method uniform/full --set method.lr=2e-5 ...
    PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_probe.py --report probe-*.jsonl

Builds the demo trial's learner and a vLLM engine in this process, trains ``--steps`` steps on the engine's
own samples (random 0/1 rewards: the update's size is what matters here), and after every sync scores the
probe with the engine serving each bug of tests/sync/sync_bugs.py, then the right policy; one JSON line per
sync holds the raw log-probs. ``--report`` replays them through SyncProbe at the default limits and prints,
per run, the right policy's statistics per sync (the calibration) and which syncs flagged each bug.
"""

from __future__ import annotations

import argparse
import json


def record(args) -> None:
    import torch

    torch.set_num_threads(1)
    from rlvr.config.loader import load_trial
    from rlvr.config.trial_plan import TrialPlan
    from tests.sync.sync_bugs import probe_trial

    cfg = load_trial(
        args.trial,
        [
            f"model.dtype={args.dtype}",
            f"method={args.method}",
            f"algorithm.lr={args.lr}",
            f"rollout.probe_tokens={args.probe_tokens}",
            "rollout.engine_process=inline",
            *args.set,
        ],
    )
    plan = TrialPlan.from_config(cfg)
    head = {"dtype": args.dtype, "method": args.method, "lr": plan.lr, "route": plan.route}
    with open(args.out, "w") as f:

        def on_sync(row):
            f.write(json.dumps({**head, **row}) + "\n")
            f.flush()

        probe_trial(cfg, args.steps, on_sync=on_sync)


def report(paths: list[str]) -> None:
    from rlvr.sync.probe import probe_limits
    from tests.sync.sync_bugs import report as verdicts

    for path in paths:
        rows = [json.loads(line) for line in open(path)]
        head = rows[0]
        limits = probe_limits(None, head["dtype"], head["route"])
        print(f"## {head['method']} {head['dtype']} lr {head['lr']:g} ({head['route']}): {limits}")
        print(verdicts(rows, limits))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trial", default="demo-cpu")
    ap.add_argument("--dtype", default="bfloat16")
    ap.add_argument("--method", default="uniform/lora")
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--probe-tokens", type=int, default=256)
    ap.add_argument("--out", default="probe.jsonl")
    ap.add_argument("--set", nargs="*", default=[], help="more trial overrides, e.g. method.lr=2e-5")
    ap.add_argument("--report", nargs="*")
    args = ap.parse_args()
    if args.report:
        report(args.report)
    else:
        record(args)


if __name__ == "__main__":
    main()
