"""Avg@k and Pass@k from per-sample correctness, per benchmark and averaged over benchmarks."""

from __future__ import annotations

import numpy as np
import pyarrow as pa


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased Pass@k from n samples with c correct: 1 - C(n-c, k) / C(n, k) (Chen et al. 2021)."""
    if not 0 <= c <= n:
        raise ValueError(f"pass@k: correct count {c} must lie in [0, {n}]")
    if k > n:
        raise ValueError(f"pass@k: k={k} needs at least k samples per problem, got {n}")
    if n - c < k:
        return 1.0
    # The product form avoids huge binomials: C(n-c,k)/C(n,k) = prod_{i=n-c+1}^{n} (1 - k/i).
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


SUMMARY_SCHEMA = pa.schema(
    [
        ("benchmark", pa.string()),
        ("k", pa.int64()),
        ("n_problems", pa.int64()),
        ("avg_at_k", pa.float64()),
        ("pass_at_k", pa.float64()),
    ]
)


def summarise(samples: pa.Table, k_by_benchmark: dict[str, int]) -> pa.Table:
    """One row per benchmark (k, problems, Avg@k, Pass@k) plus an 'average' row: the unweighted mean of the
    benchmarks' scores, as the study reports it."""
    counts = samples.group_by(["benchmark", "problem_id"]).aggregate([("correct", "sum"), ("correct", "count")])
    per: dict[str, list[tuple[int, int]]] = {}
    for b, c, n in zip(*(counts.column(x).to_pylist() for x in ("benchmark", "correct_sum", "correct_count"))):
        per.setdefault(b, []).append((n, c))
    rows = []
    for name, k in k_by_benchmark.items():
        problems = per.get(name, [])
        avg = sum(c for _, c in problems) / max(1, sum(n for n, _ in problems))
        pas = float(np.mean([pass_at_k(n, c, k) for n, c in problems])) if problems else 0.0
        rows.append({"benchmark": name, "k": k, "n_problems": len(problems), "avg_at_k": avg, "pass_at_k": pas})
    if rows:
        rows.append(
            {
                "benchmark": "average",
                "k": None,
                "n_problems": sum(r["n_problems"] for r in rows),
                "avg_at_k": float(np.mean([r["avg_at_k"] for r in rows])),
                "pass_at_k": float(np.mean([r["pass_at_k"] for r in rows])),
            }
        )
    return pa.Table.from_pylist(rows, schema=SUMMARY_SCHEMA)
