"""Verified items per second of RewardPool on this machine.

Run: .venv/bin/python benchmarks/bench_rewards.py [--workers 2] [--repeats 4]
Items are the MATH-500 golds answered correctly as boxed answers, with the gold rewritten as the completion's
answer, plus the same number of wrong answers, so both verify paths are timed.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from rlvr.config.schema import RewardConfig
from rlvr.data.benchmarks import resolve_data_dir
from rlvr.rewards.pool import RewardItem, RewardPool


def items() -> list[RewardItem]:
    path = resolve_data_dir("../shared/data") / "benchmarks" / "math500.jsonl"
    golds = [json.loads(line)["answer"] for line in Path(path).read_text().splitlines()]
    right = [RewardItem(f"Some reasoning.\nSo the answer is \\boxed{{{g}}}.", g) for g in golds]
    wrong = [RewardItem(f"Some reasoning.\nSo the answer is \\boxed{{{g}+1}}.", g) for g in golds]
    return right + wrong


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--extraction", default="study")
    args = ap.parse_args()
    batch = items()
    t0 = time.perf_counter()
    with RewardPool(RewardConfig(workers=args.workers, timeout_s=10.0, extraction=args.extraction)) as pool:
        start_s = time.perf_counter() - t0
        rates = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            pool.score(batch)
            rates.append(len(batch) / (time.perf_counter() - t))
        stats = pool.stats
    print(
        json.dumps(
            {
                "workers": args.workers,
                "extraction": args.extraction,
                "items": len(batch),
                "start_s": round(start_s, 2),
                "items_per_s_first": round(rates[0], 1),
                "items_per_s_best": round(max(rates), 1),
                "timeouts": stats["timeouts"],
            }
        )
    )


if __name__ == "__main__":
    main()
