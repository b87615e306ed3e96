"""``<run>/results.parquet``: one row per trial, from its spec and the final metrics its run_trial returned.

Fixed columns come first; then one ``eval/<benchmark>/{avg_at_k,pass_at_k,k}`` triple per benchmark any trial
reported, ``eval/average/avg_at_k`` (the mean over benchmarks unless the trial gave it), and one column per
grid axis under its dotted key, so ablation tables can group by ``algorithm.lr`` and the like.
"""

from __future__ import annotations

import io
import json
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from rlvr.config.grid import TrialSpec
from rlvr.config.layout import RunLayout
from rlvr.config.methods import method_info, method_names
from rlvr.storage import RunStorage

FIXED = (
    "trial_id",
    "label",
    "model",
    "method",
    "group",
    "preset",
    "rank",
    "seed",
    "trainable_params",
    "trainable_pct",
    "status",
    "final_reward",
    "steps_done",
)


def _group(method: str) -> str | None:
    return method_info(method).group if method in method_names() else None


def _row(spec: TrialSpec, record: dict[str, Any]) -> dict[str, Any]:
    cfg, final = spec.config, record.get("final") or {}
    row: dict[str, Any] = {
        "trial_id": spec.trial_id,
        "label": spec.label,
        "model": cfg.model.name,
        "method": cfg.method.name,
        "group": final.get("group") or _group(cfg.method.name),
        "preset": cfg.method.preset,
        "rank": cfg.method.rank,
        "seed": cfg.seed,
        "trainable_params": final.get("trainable_params"),
        "trainable_pct": final.get("trainable_pct"),
        "status": record["status"],
        "final_reward": final.get("final_reward"),
        "steps_done": final.get("steps_done", record.get("step")),
    }
    evals = {k: v for k, v in final.items() if k.startswith("eval/")}
    row.update(evals)
    averages = [v for k, v in evals.items() if k.endswith("/avg_at_k") and not k.startswith("eval/average/")]
    if averages and "eval/average/avg_at_k" not in row:
        row["eval/average/avg_at_k"] = sum(averages) / len(averages)
    # Axis values may be sections ({loss: dr_grpo, ...}); JSON keeps the column one type.
    row.update(
        {k: v if isinstance(v, (int, float, str, bool)) else json.dumps(v, sort_keys=True) for k, v in spec.axes}
    )
    return row


def results_table(specs: list[TrialSpec], records: dict[str, dict[str, Any]]) -> pa.Table:
    rows = [_row(s, records[s.trial_id]) for s in specs if s.trial_id in records]
    extra = sorted({k for r in rows for k in r} - set(FIXED) - {"eval/average/avg_at_k"})
    average = ["eval/average/avg_at_k"] + [k for k in extra if k.startswith("eval/average/")]
    evals = [k for k in extra if k.startswith("eval/") and k not in average] + average
    axes = [k for k in extra if not k.startswith("eval/")]
    columns = list(FIXED) + evals + axes
    return pa.Table.from_pylist([{c: r.get(c) for c in columns} for r in rows])


def write_results(storage: RunStorage, table: pa.Table) -> None:
    buf = io.BytesIO()
    pq.write_table(table, buf)
    storage.write_bytes(RunLayout.RESULTS, buf.getvalue())


def read_results(storage: RunStorage) -> pa.Table | None:
    data = storage.read_bytes(RunLayout.RESULTS)
    return None if data is None else pq.read_table(io.BytesIO(data))
