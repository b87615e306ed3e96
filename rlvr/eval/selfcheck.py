"""Self-check of the shipped benchmarks: every gold answer, written as a boxed answer, must verify against itself."""

from __future__ import annotations

import pyarrow as pa

from rlvr.config.schema import BenchmarkSpec, RewardConfig
from rlvr.config.validate import BENCHMARKS
from rlvr.data.benchmarks import load_benchmark
from rlvr.rewards.pool import RewardItem, RewardPool


def self_check(data_dir: str, extraction: str = "lenient", pool: RewardPool | None = None) -> pa.Table:
    """One row per shipped benchmark: problems, verified count, rate, gold fallbacks and the ids that failed.

    The study's extraction scores about 98% on MATH-500 here: it does not repair brace-less LaTeX such as
    the golds ``\\frac43`` or ``11\\sqrt2``, so a model that copies that style is marked wrong.
    """
    own = pool is None
    pool = pool or RewardPool(RewardConfig(workers=2, timeout_s=10.0, extraction=extraction))
    try:
        rows = []
        for name in BENCHMARKS:
            problems = load_benchmark(BenchmarkSpec(name=name), data_dir)
            results = pool.score([RewardItem(f"The answer is \\boxed{{{p['answer']}}}", p["answer"]) for p in problems])
            failed = [f"{p['id']}: {p['answer']}" for p, r in zip(problems, results) if not r.correct]
            rows.append(
                {
                    "benchmark": name,
                    "n": len(problems),
                    "verified": len(problems) - len(failed),
                    "rate": (len(problems) - len(failed)) / len(problems),
                    "gold_fallbacks": sum(r.gold_fallback for r in results),
                    "exceptions": failed,
                }
            )
        return pa.Table.from_pylist(rows)
    finally:
        if own:
            pool.close()
