"""Benchmark evaluation: sample k completions per problem, verify them, and tabulate Avg@k and Pass@k."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
from pyarrow import fs as pafs
from rich.progress import Progress

from rlvr.config.layout import TrialLayout
from rlvr.config.schema import BenchmarkSpec, DataConfig, EvalConfig
from rlvr.data.benchmarks import load_benchmark
from rlvr.data.prompts import render_prompt
from rlvr.eval.metrics import summarise
from rlvr.rewards.pool import RewardItem, RewardPool
from rlvr.rollout.types import RolloutEngine, SamplingSpec

PROMPTS_PER_CALL = 64  # one generate call per chunk: keeps the progress display moving and memory bounded

SAMPLES_SCHEMA = pa.schema(
    [
        ("benchmark", pa.string()),
        ("problem_id", pa.string()),
        ("sample_index", pa.int64()),
        ("completion", pa.string()),
        ("extracted", pa.string()),
        ("reward", pa.float64()),
        ("correct", pa.bool_()),
        ("tokens", pa.int64()),
        ("truncated", pa.bool_()),
        ("timed_out", pa.bool_()),
    ]
)


Prompts = dict[str, list[tuple[dict, list[int]]]]
"""Benchmark name -> its problems, each with its prompt's token ids."""


def benchmark_prompts(tokenizer, benchmarks: list[BenchmarkSpec], data_cfg: DataConfig) -> Prompts:
    """Each benchmark's problems with their prompt token ids, in the training prompt template (so a policy is
    scored as it was trained)."""
    return {
        spec.name: [
            (p, render_prompt(tokenizer, p["problem"], data_cfg.prompt_template, data_cfg.system_prompt))
            for p in load_benchmark(spec, data_cfg.data_dir, data_cfg.levels, data_cfg.holdout)
        ]
        for spec in benchmarks
    }


def evaluate(
    engine: RolloutEngine,
    tokenizer,
    benchmarks: list[BenchmarkSpec],
    cfg: EvalConfig,
    data_cfg: DataConfig,
    reward: RewardPool,
    seed: int,
    prompts: Prompts | None = None,
) -> tuple[pa.Table, pa.Table]:
    """(samples: one row per completion, summary: one row per benchmark plus 'average') for the engine's
    current policy; ``prompts`` are ``benchmark_prompts``' (made here when None)."""
    sets = prompts if prompts is not None else benchmark_prompts(tokenizer, benchmarks, data_cfg)
    rows: list[dict] = []
    with Progress(transient=True) as progress:
        for spec in benchmarks:
            problems = sets[spec.name]
            task = progress.add_task(f"eval {spec.name} (k={spec.k})", total=len(problems))
            for start in range(0, len(problems), PROMPTS_PER_CALL):
                chunk = [p for p, _ in problems[start : start + PROMPTS_PER_CALL]]
                token_ids = [ids for _, ids in problems[start : start + PROMPTS_PER_CALL]]
                sampling = SamplingSpec(
                    n=spec.k,
                    temperature=cfg.temperature,
                    top_p=cfg.top_p,
                    max_new_tokens=cfg.max_new_tokens,
                    seed=seed + start,
                )
                groups = engine.generate(token_ids, sampling)
                flat = [(p, j, c) for p, group in zip(chunk, groups) for j, c in enumerate(group)]
                scores = reward.score([RewardItem(c.text, p["answer"], c.truncated) for p, _, c in flat])
                rows += [
                    {
                        "benchmark": spec.name,
                        "problem_id": p["id"],
                        "sample_index": j,
                        "completion": c.text,
                        "extracted": s.extracted,
                        "reward": s.reward,
                        "correct": s.correct,
                        "tokens": len(c.token_ids),
                        "truncated": c.truncated,
                        "timed_out": s.timed_out,
                    }
                    for (p, j, c), s in zip(flat, scores)
                ]
                progress.advance(task, len(chunk))
    samples = pa.Table.from_pylist(rows, schema=SAMPLES_SCHEMA)
    return samples, summarise(samples, {spec.name: spec.k for spec in benchmarks})


def write_eval(directory: str, step: int, samples: pa.Table, summary: pa.Table) -> tuple[str, str]:
    """Write ``eval/step_<step>/{samples,summary}.parquet`` under a local path or pyarrow filesystem URI,
    each table with a ``step`` column; returns the two paths."""
    filesystem, root = (
        pafs.FileSystem.from_uri(directory) if "://" in directory else (pafs.LocalFileSystem(), directory)
    )
    folder = f"{root.rstrip('/')}/{TrialLayout.eval_dir(step)}"
    filesystem.create_dir(folder, recursive=True)
    paths = []
    for name, table in (("samples", samples), ("summary", summary)):
        path = f"{folder}/{name}.parquet"
        pq.write_table(
            table.append_column("step", pa.array([step] * len(table), pa.int64())), path, filesystem=filesystem
        )
        paths.append(path)
    return paths[0], paths[1]
