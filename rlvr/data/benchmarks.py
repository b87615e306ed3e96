"""Evaluation sets as {id, problem, answer} rows: the shipped JSONL files, hub datasets, or held-out synthetic."""

from __future__ import annotations

import json
import os
from pathlib import Path

from rlvr.config.schema import BenchmarkSpec
from rlvr.data.hub import load_hub_dataset
from rlvr.data.train_sets import Fields, synthetic_benchmark, to_rows

REPO_ROOT = Path(__file__).resolve().parents[2]
SYNTHETIC_EVAL_SEED = 0  # every trial evaluates on the same held-out synthetic problems, whatever its seed

# Column candidates of hub benchmarks, most specific first; a 'solution' column is cut at its last \boxed{}.
_PROBLEM_COLUMNS = ("problem", "question", "prompt")
_ANSWER_COLUMNS = (("answer", "plain"), ("final_answer", "plain"), ("solution", "boxed"))


def resolve_data_dir(data_dir: str) -> Path:
    """$RLVR_DATA_DIR, else ``data_dir``; a relative path is taken from the repository root."""
    path = Path(os.environ.get("RLVR_DATA_DIR") or data_dir)
    return path if path.is_absolute() else REPO_ROOT / path


def _hub_fields(spec: BenchmarkSpec, columns: list[str]) -> Fields:
    problem = next((c for c in _PROBLEM_COLUMNS if c in columns), None)
    answer = next(((c, f) for c, f in _ANSWER_COLUMNS if c in columns), None)
    if problem is None or answer is None:
        raise ValueError(
            f"benchmark {spec.name} (hub {spec.hub_name}): no problem column ({', '.join(_PROBLEM_COLUMNS)}) or "
            f"answer column ({', '.join(c for c, _ in _ANSWER_COLUMNS)}); its columns are {', '.join(columns)}"
        )
    return Fields(problem, answer[0], answer[1])


def _hub_dataset(spec: BenchmarkSpec):
    """The 'test' split of a hub dataset, or its only split (AIME sets ship as 'train')."""
    splits = load_hub_dataset(spec.hub_name)
    if "test" in splits:
        return splits["test"]
    if len(splits) == 1:
        return next(iter(splits.values()))
    raise ValueError(f"benchmark {spec.name} (hub {spec.hub_name}): no 'test' split among {', '.join(splits)}")


def load_benchmark(
    spec: BenchmarkSpec, data_dir: str, levels: list[int] | None = None, synthetic_n: int = 256
) -> list[dict]:
    """The first ``spec.limit`` rows of a benchmark. Synthetic ones draw ``synthetic_n`` held-out problems
    over ``levels`` (DataConfig.levels and .holdout)."""
    if spec.name.startswith("synthetic:"):
        rows = synthetic_benchmark(spec.name.split(":", 1)[1], levels or [1], synthetic_n, SYNTHETIC_EVAL_SEED)
    elif spec.hub_name is not None:
        dataset = _hub_dataset(spec)
        rows, _ = to_rows(dataset, _hub_fields(spec, dataset.column_names), id_prefix=spec.name)
    else:
        path = resolve_data_dir(data_dir) / "benchmarks" / f"{spec.name}.jsonl"
        if not path.is_file():
            raise FileNotFoundError(
                f"benchmark {spec.name}: {path} does not exist; set data.data_dir or RLVR_DATA_DIR to the folder "
                "holding benchmarks/, or give the benchmark a hub_name"
            )
        records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        rows, skipped = to_rows(records, Fields("problem", "answer"), id_prefix=spec.name)
        if skipped:
            raise ValueError(f"benchmark {spec.name}: {skipped} rows of {path} lack a problem or an answer")
    return rows[: spec.limit] if spec.limit else rows
