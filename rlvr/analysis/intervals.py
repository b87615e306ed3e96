"""Bootstrap intervals over problems and seeds: a configuration's average accuracy, and its difference to LoRA.

Each finished trial's newest evaluation gives one accuracy per problem (mean correctness over its k samples).
A configuration is a [seeds x problems] matrix; its average is, as the study reports it, the unweighted mean
over benchmarks of the mean over each benchmark's problems. One bootstrap resample draws, with replacement,
the problems of every benchmark (the same draw for both sides of a difference: paired, on the problems both
evaluated) and, independently per configuration, its seeds. The percentile interval of the resampled values
at ``confidence`` is reported beside the estimate from the data as it is. With one seed the interval covers
problem sampling only, and says so (``seeds``).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from rlvr.analysis.rundir import RunDir, TrialDir
from rlvr.analysis.study import ConfigGroup, group_trials, lora_reference
from rlvr.config.schema import AnalysisConfig

Key = tuple[str | None, str]  # (model, configuration name), as the study table names a row


@dataclass(frozen=True)
class Scores:
    """Per-problem accuracy of one configuration: ``values[seed, problem]`` for ``problems`` (benchmark, id)."""

    problems: tuple[tuple[str, str], ...]
    values: np.ndarray

    def restricted(self, problems: tuple[tuple[str, str], ...]) -> "Scores":
        index = {p: i for i, p in enumerate(self.problems)}
        return Scores(problems, self.values[:, [index[p] for p in problems]])


@dataclass(frozen=True)
class Interval:
    """An estimate (fraction of problems solved, or a difference of two) and its bootstrap interval."""

    estimate: float
    low: float
    high: float
    seeds: tuple[int, ...]  # seeds (trials) per side: (n,) for an average, (n, n_lora) for a difference
    problems: int

    def points(self) -> str:
        """In percentage points, e.g. '+8.0 [+3.1, +12.9]'."""
        return f"{100 * self.estimate:+.1f} [{100 * self.low:+.1f}, {100 * self.high:+.1f}]"


def scores(per_trial: list[pa.Table]) -> Scores | None:
    """A configuration's Scores from its trials' sample tables (benchmark, problem_id, correct); only problems
    every trial evaluated count. None without any."""
    means = []
    for table in per_trial:
        agg = table.group_by(["benchmark", "problem_id"]).aggregate([("correct", "mean")])
        keys = zip(agg.column("benchmark").to_pylist(), agg.column("problem_id").to_pylist())
        means.append(dict(zip(keys, agg.column("correct_mean").to_pylist())))
    if not means:
        return None
    common = tuple(sorted(set.intersection(*(set(m) for m in means))))
    if not common:
        return None
    return Scores(common, np.array([[m[p] for p in common] for m in means], dtype=np.float64))


def _resampled_average(s: Scores, draws: dict[str, np.ndarray], seed_draw: np.ndarray) -> np.ndarray:
    """The average under each resample: ``draws[benchmark]`` [R, n_b] problem columns, ``seed_draw`` [R, seeds]."""
    per_bench = []
    rows = np.arange(seed_draw.shape[0])[:, None]
    for cols in draws.values():
        per_seed = s.values[:, cols].mean(axis=-1)  # [seeds, R]
        per_bench.append(per_seed.T[rows, seed_draw].mean(axis=1))  # [R]
    return np.mean(per_bench, axis=0)


def _average(s: Scores) -> float:
    bench = np.array([b for b, _ in s.problems])
    return float(np.mean([s.values[:, bench == b].mean() for b in dict.fromkeys(bench)]))


def bootstrap(a: Scores, b: Scores | None, cfg: AnalysisConfig) -> Interval:
    """The interval of a's average, or with ``b`` of average(a) - average(b) on the problems both evaluated."""
    if b is not None:
        common = tuple(sorted(set(a.problems) & set(b.problems)))
        if not common:
            raise ValueError("bootstrap: the two configurations share no evaluated problem")
        a, b = a.restricted(common), b.restricted(common)
    rng = np.random.default_rng(cfg.bootstrap_seed)
    r = cfg.bootstrap_resamples
    bench = np.array([x for x, _ in a.problems])
    draws = {}
    for name in dict.fromkeys(bench):
        cols = np.flatnonzero(bench == name)
        draws[name] = cols[rng.integers(0, len(cols), size=(r, len(cols)))]
    sides = [a] if b is None else [a, b]
    values = [_resampled_average(s, draws, rng.integers(0, len(s.values), size=(r, len(s.values)))) for s in sides]
    resampled = values[0] if b is None else values[0] - values[1]
    estimate = _average(a) if b is None else _average(a) - _average(b)
    tail = 100 * (1 - cfg.confidence) / 2
    low, high = np.percentile(resampled, [tail, 100 - tail])
    return Interval(estimate, float(low), float(high), tuple(len(s.values) for s in sides), len(a.problems))


def newest_samples(trial: TrialDir) -> pa.Table | None:
    """Who got what right in a trial's newest evaluation (eval/step_<n>/samples.parquet), or None. Only the
    columns needed: the completions' text would be most of a study-scale file."""
    steps = [name for name in trial.subfolders("eval") if name.startswith("step_")]
    data = trial.store.read_bytes(f"eval/{max(steps)}/samples.parquet") if steps else None
    return None if data is None else pq.read_table(io.BytesIO(data), columns=["benchmark", "problem_id", "correct"])


@dataclass
class RunIntervals:
    """Per study-table row (model, name): the interval of its average, and of its difference to its LoRA row."""

    average: dict[Key, Interval]
    vs_lora: dict[Key, Interval]
    reference: dict[Key, Key]  # the LoRA row each vs_lora interval is against
    scores: dict[Key, Scores]
    cfg: AnalysisConfig


def _group_scores(run: RunDir, group: ConfigGroup) -> Scores | None:
    tables = [t for t in (newest_samples(run.trial(row["trial_id"])) for row in group.done) if t is not None and len(t)]
    return scores(tables)


def run_intervals(run: RunDir, rows: list[dict[str, Any]], cfg: AnalysisConfig) -> RunIntervals:
    """Intervals for every configuration of a run with evaluated samples."""
    groups = group_trials(rows)
    by_key = {(g.model, g.name): (g, _group_scores(run, g)) for g in groups}
    out = RunIntervals({}, {}, {}, {key: s for key, (_, s) in by_key.items() if s is not None}, cfg)
    for key, (g, s) in by_key.items():
        if s is None:
            continue
        out.average[key] = bootstrap(s, None, cfg)
        ref = lora_reference(g, groups)
        ref_key = None if ref is None else (ref.model, ref.name)
        if ref_key is not None and ref is not g and ref_key in out.scores and set(s.problems) & set(out.scores[ref_key].problems):
            out.vs_lora[key] = bootstrap(s, out.scores[ref_key], cfg)
            out.reference[key] = ref_key
    return out


def analysis_config(run: RunDir) -> AnalysisConfig:
    """The run's sweep.yaml ``analysis`` section (defaults where the run predates it)."""
    return AnalysisConfig.model_validate((run.sweep_config() or {}).get("analysis") or {})
