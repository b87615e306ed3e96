"""Where each method started and where it ended: the base model's step-0 accuracy, the accuracy after training,
the difference to the base and to LoRA, and the learning rate each method ran at.

The base row is the evaluation every trial runs before its first update (``eval.at_start``), averaged over the
trials of a model; a method that ends below it made the model worse. Used by the report and by the summary
``rlvr sweep`` prints when it ends.
"""

from __future__ import annotations

import statistics
from typing import Any

from rlvr.analysis.rundir import RunDir, TrialDir
from rlvr.analysis.study import AVERAGE, MISSING, ConfigGroup, delta_lora, group_trials, lora_reference

AVG = f"eval/{AVERAGE}/avg_at_k"
HEADER = ["method", "rank", "lr", "trained %", "before → after", "Δ base", "Δ LoRA"]


def step_average(trial: TrialDir, step: int = 0) -> float | None:
    """Mean Avg@k over the benchmarks a trial evaluated at ``step`` (a fraction), None if it did not."""
    summary = trial.eval_summary()
    if summary is None or "step" not in summary.column_names:
        return None
    values = [r["avg_at_k"] for r in summary.to_pylist() if r["step"] == step and r.get("avg_at_k") is not None]
    return statistics.fmean(values) if values else None


def learning_rate(trial: TrialDir) -> float | None:
    """The rate the trial's adapter (or full model) trained at: the method's own lr if set, else the algorithm's."""
    cfg = trial.config()
    if cfg is None:
        return None
    return cfg.method.lr if cfg.method.lr is not None else cfg.algorithm.lr


def _short(model: str | None) -> str:
    return (model or "?").rstrip("/").rsplit("/", 1)[-1]


def _mean(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.fmean(known) if known else None


def _pct(value: float | None) -> str:
    return MISSING if value is None else f"{100 * value:.1f}"


def _diff(a: float | None, b: float | None) -> str:
    return MISSING if a is None or b is None else f"{100 * (a - b):+.1f}"


def _lr(values: list[float]) -> str:
    distinct = sorted(set(values))
    return MISSING if not distinct else "/".join(f"{v:.0e}".replace("e-0", "e-") for v in distinct)


def before_after(run: RunDir, rows: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """Header and text rows: per model a base row, then one row per configuration, best final accuracy first."""
    trials = {tid: run.trial(tid) for tid in {r["trial_id"] for r in rows}}
    start = {tid: step_average(t) for tid, t in trials.items()}
    lrs = {tid: learning_rate(t) for tid, t in trials.items()}
    groups = group_trials(rows)
    models = list(dict.fromkeys(g.model for g in groups))
    out: list[list[str]] = []
    for model in models:
        mine = [g for g in groups if g.model == model]
        base = _mean([start[t["trial_id"]] for g in mine for t in g.trials])
        label = "base (step 0)" if len(models) == 1 else f"base (step 0) {_short(model)}"
        out.append([label, MISSING, MISSING, MISSING, _pct(base), "ref", MISSING])
        mine.sort(key=lambda g: -(g.mean(AVG) if g.mean(AVG) is not None else -1.0))
        for g in mine:
            out.append(_row(g, groups, start, lrs, base))
    return HEADER, out


def _row(
    g: ConfigGroup,
    groups: list[ConfigGroup],
    start: dict[str, float | None],
    lrs: dict[str, float | None],
    base: float | None,
) -> list[str]:
    pct = g.mean("trainable_pct") if g.done else next(iter(g.trials)).get("trainable_pct")
    after = g.mean(AVG)
    before = _mean([start[t["trial_id"]] for t in g.done]) if g.done else None
    moved = f"{_pct(before)} → {_pct(after)}" if g.done else g.state()
    if len(g.values(AVG)) > 1:
        moved += f" ± {100 * statistics.stdev(g.values(AVG)):.1f}"
    vs_lora = delta_lora(g, lora_reference(g, groups))
    name = " ".join([g.method or "?"] + ([g.setting] if g.setting else []))
    if len({x.model for x in groups}) > 1:
        name += f" ({_short(g.model)})"
    return [
        name,
        str(g.rank) if g.rank else MISSING,
        _lr([lrs[t["trial_id"]] for t in g.trials if lrs[t["trial_id"]] is not None]),
        f"{pct:.3g}" if pct is not None else MISSING,
        moved,
        _diff(after, base),
        vs_lora,
    ]
