"""A study as sweeps generated stage by stage: what each stage runs, and what its results decide.

Stage 1 (tuning seeds) starts every method on the study's lr grid at the minimum horizon; a method whose best lr
sits on the grid's edge gets the next lr beyond it (times or divided by ``lr_factor``) until its best is interior
or ``max_extensions`` are spent. Then successive halving: each rung keeps the best 1/``halving`` of a method's
lrs and trains them again from scratch at ``halving`` times the horizon (a schedule's shape depends on the
total steps, so a longer horizon is a new trial, not a continuation), until one lr is left or the horizon is
the budget. Stage 2 runs each method at its chosen lr on the confirmation seeds over the whole held-out set.

Every stage is an ordinary sweep (rlvr.sweep: ledger, scheduler, trial ids) in ``<storage>/<study>/<stage>``,
and what it runs is a function of the results of the stages before, so running the study again resumes it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from rlvr.config.grid import TrialSpec, expand
from rlvr.config.schema import MethodConfig, SweepConfig, TrialConfig
from rlvr.config.study import StudyConfig


@dataclass(frozen=True)
class Stage:
    """One sweep of the study: ``lrs[i]`` are the learning rates method i runs at, on ``seeds`` for ``steps``."""

    name: str
    lrs: dict[int, tuple[float, ...]]
    seeds: tuple[int, ...]
    steps: int
    confirmation: bool = False


def methods(cfg: StudyConfig) -> list[MethodConfig]:
    return cfg.methods or [cfg.base.method]


def method_name(m: MethodConfig) -> str:
    return m.name + (f" r{m.rank}" if m.rank else "")


def extension(lrs: list[float], scores: dict[float, float], factor: float) -> float | None:
    """The lr beyond the grid's edge when the best (ties: the lower lr) sits on it; None when it is interior."""
    ordered = sorted(lrs)
    best = max(ordered, key=lambda lr: scores[lr])
    if best == ordered[0]:
        return ordered[0] / factor
    if best == ordered[-1]:
        return ordered[-1] * factor
    return None


def halve(lrs: list[float], scores: dict[float, float], halving: int) -> list[float]:
    """The best ceil(n / halving) lrs, best first."""
    keep = math.ceil(len(lrs) / halving)
    return sorted(lrs, key=lambda lr: -scores[lr])[:keep]


def rung_steps(cfg: StudyConfig, rung: int) -> int:
    return min(cfg.base.steps, cfg.min_steps * cfg.halving**rung)


def stage_sweep(cfg: StudyConfig, stage: Stage) -> tuple[SweepConfig, list[TrialSpec]]:
    """The stage as a sweep (named ``<study>/<stage>``) and its trials: one grid over ``method.lr`` per method, so
    every label says its lr and the report groups by it."""
    # a rung shorter than the checkpoint interval still checkpoints at its end
    every = min(cfg.base.checkpoint.every_steps, stage.steps)
    checkpoint = cfg.base.checkpoint.model_copy(update={"every_steps": every})
    base = cfg.base.model_copy(update={"steps": stage.steps, "checkpoint": checkpoint})
    if not stage.confirmation and cfg.tuning_eval_limit is not None:
        benchmarks = [b.model_copy(update={"limit": cfg.tuning_eval_limit}) for b in base.eval.benchmarks]
        base = base.model_copy(update={"eval": base.eval.model_copy(update={"benchmarks": benchmarks})})
    if stage.confirmation:  # the whole held-out set
        benchmarks = [b.model_copy(update={"limit": None}) for b in base.eval.benchmarks]
        base = base.model_copy(update={"eval": base.eval.model_copy(update={"benchmarks": benchmarks})})
    common = dict(
        name=f"{cfg.name}/{stage.name}",
        base=base.model_dump(mode="json"),
        seeds=list(stage.seeds),
        storage=cfg.storage,
        max_concurrent=cfg.max_concurrent,
        max_attempts=cfg.max_attempts,
        cpus_per_trial=cfg.cpus_per_trial,
        analysis=cfg.analysis,
    )
    all_methods = methods(cfg)
    specs: list[TrialSpec] = []
    for i, lrs in stage.lrs.items():
        sub = SweepConfig(methods=[all_methods[i]], grid={"method.lr": list(lrs)}, **common)
        specs += expand(sub)
    return SweepConfig(methods=[all_methods[i] for i in stage.lrs], **common), specs


def trial_budget(cfg: StudyConfig) -> list[tuple[int, int]]:
    """(trials, steps each) of every stage at most: every extension spent, halving from the widest grid."""
    n_methods, tuning = len(methods(cfg)), len(cfg.tuning_seeds)
    width = len(cfg.lrs) + cfg.max_extensions
    out = [(n_methods * width * tuning, rung_steps(cfg, 0))]
    rung = 0
    while width > 1 and rung_steps(cfg, rung) < cfg.base.steps:
        rung += 1
        width = math.ceil(width / cfg.halving)
        out.append((n_methods * width * tuning, rung_steps(cfg, rung)))
    out.append((n_methods * len(cfg.confirmation_seeds), cfg.base.steps))
    return out


def chosen_stage(cfg: StudyConfig, chosen: dict[int, float]) -> Stage:
    return Stage(
        "confirm",
        {i: (lr,) for i, lr in chosen.items()},
        tuple(cfg.confirmation_seeds),
        cfg.base.steps,
        confirmation=True,
    )


def mean_score(values: list[float | None]) -> float:
    """A candidate's tuning score: the mean over seeds; a failed or unevaluated seed makes it -inf (diverged)."""
    if not values or any(v is None or math.isnan(v) for v in values):
        return -math.inf
    return sum(values) / len(values)


def trial_lr(cfg: TrialConfig) -> float:
    return cfg.method.lr_or(cfg.algorithm.lr)
