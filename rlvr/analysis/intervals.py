"""Intervals over seeds and problems: a configuration's average accuracy, its difference to LoRA, its difference
to the base model it started from.

Each finished trial's newest evaluation gives one accuracy per problem (mean correctness over its k samples).
A configuration is a [seeds x problems] matrix whose rows are labelled with the trial's seed; its average is, as
the study reports it, the unweighted mean over benchmarks of the mean over each benchmark's problems.

A difference is paired: trials with the same seed share data order, rollout seeds and evaluation seed, so the two
sides are aligned by seed and restricted to the seeds and problems both have. Two intervals are given:
- the t interval over seeds: the per-seed differences' mean +- t(n-1) standard errors (``low``, ``high``; the
  verdicts' test). With one seed there is none and ``low``/``high`` are the bootstrap's.
- a paired percentile bootstrap over seeds and problems (``boot_low``, ``boot_high``): one resample draws seeds
  and, per benchmark, problems with replacement, the same draw for both sides. With one seed it covers problem
  sampling only.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from rlvr.analysis.rundir import RunDir, TrialDir
from rlvr.analysis.significance import TMean, t_mean
from rlvr.analysis.study import ConfigGroup, group_trials, lora_reference
from rlvr.config.layout import TrialLayout
from rlvr.config.schema import AnalysisConfig

Key = tuple[str | None, str]  # (model, configuration name), as the study table names a row


@dataclass(frozen=True)
class Scores:
    """Per-problem accuracy of one configuration: ``values[i, problem]`` for the trial with seed ``seeds[i]``."""

    problems: tuple[tuple[str, str], ...]
    values: np.ndarray
    seeds: tuple[int, ...]

    def restricted(self, problems: tuple[tuple[str, str], ...], seeds: tuple[int, ...] | None = None) -> Scores:
        cols = {p: i for i, p in enumerate(self.problems)}
        rows = {s: i for i, s in enumerate(self.seeds)}
        seeds = self.seeds if seeds is None else seeds
        return Scores(problems, self.values[np.ix_([rows[s] for s in seeds], [cols[p] for p in problems])], seeds)

    def per_seed(self) -> np.ndarray:
        """Each seed's average (the unweighted mean over benchmarks)."""
        bench = np.array([b for b, _ in self.problems])
        return np.mean([self.values[:, bench == b].mean(axis=1) for b in dict.fromkeys(bench)], axis=0)


@dataclass(frozen=True)
class Interval:
    """An estimate (fraction of problems solved, or a difference of two) with its t interval over seeds (``t``,
    None under two seeds) and its bootstrap interval over seeds and problems."""

    estimate: float
    low: float
    high: float
    seeds: int  # seeds behind it: the configuration's, or for a difference the seeds both sides share
    problems: int
    boot_low: float
    boot_high: float
    t: TMean | None = None

    def points(self) -> str:
        """In percentage points, e.g. '+8.0 [+3.1, +12.9]'."""
        return f"{100 * self.estimate:+.1f} [{100 * self.low:+.1f}, {100 * self.high:+.1f}]"

    def boot_points(self) -> str:
        return f"[{100 * self.boot_low:+.1f}, {100 * self.boot_high:+.1f}]"

    def p_value(self, line: float = 0.0) -> float | None:
        """Two-sided p of the t test that the true value is ``line``; None without two seeds."""
        return None if self.t is None else self.t.p_value(line)

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high


def scores(per_trial: list[pa.Table], seeds: list[int]) -> Scores | None:
    """A configuration's Scores from its trials' sample tables (benchmark, problem_id, correct) and their seeds;
    only problems every trial evaluated count. None without any."""
    means = []
    for table in per_trial:
        agg = table.group_by(["benchmark", "problem_id"]).aggregate([("correct", "mean")])
        keys = zip(agg.column("benchmark").to_pylist(), agg.column("problem_id").to_pylist())
        means.append(dict(zip(keys, agg.column("correct_mean").to_pylist())))
    if not means:
        return None
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"scores: two trials of one configuration share a seed ({sorted(seeds)})")
    common = tuple(sorted(set.intersection(*(set(m) for m in means))))
    if not common:
        return None
    return Scores(common, np.array([[m[p] for p in common] for m in means], dtype=np.float64), tuple(seeds))


def aligned(a: Scores, b: Scores) -> tuple[Scores, Scores]:
    """Both sides on the problems and seeds they share, rows in the same seed order."""
    problems = tuple(sorted(set(a.problems) & set(b.problems)))
    if not problems:
        raise ValueError("bootstrap: the two configurations share no evaluated problem")
    seeds = tuple(sorted(set(a.seeds) & set(b.seeds)))
    if not seeds:
        raise ValueError(f"paired difference: the two configurations share no seed ({a.seeds} vs {b.seeds})")
    return a.restricted(problems, seeds), b.restricted(problems, seeds)


def _resampled_average(s: Scores, draws: dict[str, np.ndarray], seed_draw: np.ndarray) -> np.ndarray:
    """The average under each resample: ``draws[benchmark]`` [R, n_b] problem columns, ``seed_draw`` [R, seeds]."""
    per_bench = []
    rows = np.arange(seed_draw.shape[0])[:, None]
    for cols in draws.values():
        per_seed = s.values[:, cols].mean(axis=-1)  # [seeds, R]
        per_bench.append(per_seed.T[rows, seed_draw].mean(axis=1))  # [R]
    return np.mean(per_bench, axis=0)


def bootstrap(a: Scores, b: Scores | None, cfg: AnalysisConfig) -> Interval:
    """The interval of a's average, or with ``b`` of the seed-paired average(a) - average(b)."""
    if b is not None:
        a, b = aligned(a, b)
    rng = np.random.default_rng(cfg.bootstrap_seed)
    r = cfg.bootstrap_resamples
    bench = np.array([x for x, _ in a.problems])
    draws = {}
    for name in dict.fromkeys(bench):
        cols = np.flatnonzero(bench == name)
        draws[name] = cols[rng.integers(0, len(cols), size=(r, len(cols)))]
    seed_draw = rng.integers(0, len(a.seeds), size=(r, len(a.seeds)))  # one draw for both sides: paired
    sides = [a] if b is None else [a, b]
    values = [_resampled_average(s, draws, seed_draw) for s in sides]
    resampled = values[0] if b is None else values[0] - values[1]
    per_seed = a.per_seed() if b is None else a.per_seed() - b.per_seed()
    tail = 100 * (1 - cfg.confidence) / 2
    boot_low, boot_high = (float(x) for x in np.percentile(resampled, [tail, 100 - tail]))
    tm = t_mean(per_seed)
    low, high = tm.interval(cfg.confidence) if tm is not None else (boot_low, boot_high)
    return Interval(
        float(per_seed.mean()), float(low), float(high), len(a.seeds), len(a.problems), boot_low, boot_high, tm
    )


def eval_steps(trial: TrialDir) -> list[int]:
    """Steps a trial evaluated at (eval/step_<n>/), ascending as numbers: 'step_90' comes before 'step_100'."""
    names = [name for name in trial.store.subfolders("eval") if name.startswith("step_")]
    return sorted(int(name.removeprefix("step_")) for name in names if name.removeprefix("step_").isdigit())


def step_samples(trial: TrialDir, step: int | None = None) -> pa.Table | None:
    """Who got what right in a trial's evaluation at ``step`` (None: its newest), or None. Only the columns
    needed: the completions' text would be most of a study-scale file."""
    steps = eval_steps(trial)
    if step is None and steps:
        step = steps[-1]
    if step not in steps:
        return None
    data = trial.store.read_bytes(f"{TrialLayout.eval_dir(step)}/samples.parquet")
    if data is None:  # a folder named without the zero padding
        data = trial.store.read_bytes(f"eval/step_{step}/samples.parquet")
    return None if data is None else pq.read_table(io.BytesIO(data), columns=["benchmark", "problem_id", "correct"])


@dataclass
class RunIntervals:
    """Per study-table row (model, name): the interval of its average, of its difference to its LoRA row and of
    its difference to the base (its own trials' step-0 evaluation, same seeds, same evaluation seed)."""

    average: dict[Key, Interval]
    vs_lora: dict[Key, Interval]
    reference: dict[Key, Key]  # the LoRA row each vs_lora interval is against
    scores: dict[Key, Scores]
    cfg: AnalysisConfig
    vs_base: dict[Key, Interval] = field(default_factory=dict)

    def untrained(self, key: Key) -> bool:
        """Whether the configuration's difference to the base does not exclude zero: it never left the base."""
        iv = self.vs_base.get(key)
        return iv is not None and iv.contains(0.0)


def _group_scores(run: RunDir, group: ConfigGroup, step: int | None = None) -> Scores | None:
    pairs = [(step_samples(run.trial(row["trial_id"]), step), row.get("seed")) for row in group.done]
    pairs = [(t, seed) for t, seed in pairs if t is not None and len(t)]
    return scores([t for t, _ in pairs], [seed for _, seed in pairs])


def run_intervals(run: RunDir, rows: list[dict[str, Any]], cfg: AnalysisConfig) -> RunIntervals:
    """Intervals for every configuration of a run with evaluated samples."""
    groups = group_trials(rows)
    by_key = {(g.model, g.name): (g, _group_scores(run, g)) for g in groups}
    out = RunIntervals({}, {}, {}, {key: s for key, (_, s) in by_key.items() if s is not None}, cfg)
    for key, (g, s) in by_key.items():
        if s is None:
            continue
        out.average[key] = bootstrap(s, None, cfg)
        start = _group_scores(run, g, step=0)
        if start is not None and set(start.problems) & set(s.problems):
            out.vs_base[key] = bootstrap(s, start, cfg)
        ref = lora_reference(g, groups)
        ref_key = None if ref is None else (ref.model, ref.name)
        other = out.scores.get(ref_key) if ref is not g else None
        if other is not None and set(s.problems) & set(other.problems) and set(s.seeds) & set(other.seeds):
            out.vs_lora[key] = bootstrap(s, other, cfg)
            out.reference[key] = ref_key
    return out


def analysis_config(run: RunDir) -> AnalysisConfig:
    """The run's sweep.yaml ``analysis`` section (defaults where the run predates it)."""
    return AnalysisConfig.model_validate((run.sweep_config() or {}).get("analysis") or {})
