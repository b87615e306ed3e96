"""``run_study``: stage 1 (learning rates on tuning seeds), stage 2 (each method at its lr on fresh seeds), and the
answer. Each stage is a sweep run by rlvr.sweep.controller.run_sweep; see rlvr.study.stages for the design.

Layout: ``<storage>/<study>/tune-<n>/`` and ``<storage>/<study>/confirm/`` (sweep run directories, each with
its report), ``<storage>/<study>/study.json`` (every stage's scores and the choices, rewritten as they come).
"""

from __future__ import annotations

import json
import math
from typing import Any

from rich.console import Console

from rlvr.analysis.answer import print_answer
from rlvr.config.memory_plan import plan_trial
from rlvr.config.study import StudyConfig
from rlvr.storage import RunStorage
from rlvr.study.stages import (
    Stage,
    chosen_stage,
    extension,
    halve,
    mean_score,
    method_name,
    methods,
    rung_steps,
    stage_sweep,
    trial_budget,
    trial_lr,
)
from rlvr.sweep.controller import run_sweep
from rlvr.sweep.scheduler import TrialFn

AVG = "eval/average/avg_at_k"
STUDY_JSON = "study.json"


def study_dir(cfg: StudyConfig) -> str:
    return f"{cfg.storage.rstrip('/')}/{cfg.name}"


def _plan_figures(cfg: StudyConfig) -> tuple[float | None, float | None]:
    """(seconds per step, GPU-hours per trial-step) from the memory plan; None where the model has no architecture."""
    try:
        plan = plan_trial(cfg.base)
    except ValueError:
        return None, None
    return plan.step_seconds, plan.gpus * plan.step_seconds / 3600


def _duration(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.0f} min"


def budget_lines(cfg: StudyConfig) -> list[str]:
    """What the study will cost at most, said before anything starts."""
    stages = trial_budget(cfg)
    trials, trial_steps = sum(n for n, _ in stages), sum(n * s for n, s in stages)
    plan_step_s, gpu_h_per_step = _plan_figures(cfg)
    step_s = cfg.seconds_per_step or plan_step_s
    at_once = cfg.max_concurrent or 1
    lines = [
        f"{cfg.name}: {len(methods(cfg))} methods, lrs {cfg.lrs} (+{cfg.max_extensions} extensions at most), "
        f"tuning seeds {cfg.tuning_seeds}, confirmation seeds {cfg.confirmation_seeds}",
        "at most " + " + ".join(f"{n} x {s} steps" for n, s in stages) + f" = {trials} trials, {trial_steps} "
        "trial-steps",
    ]
    if step_s is None:
        lines.append("time: unknown (set seconds_per_step, or give the model an architecture for the memory plan)")
    else:
        source = "seconds_per_step" if cfg.seconds_per_step else "the memory plan"
        lines.append(
            f"time: ~{_duration(trial_steps * step_s / at_once)} with {at_once} trial(s) at once "
            f"({step_s:g} s/step from {source})"
        )
    lines.append(
        "GPU-hours: "
        + (
            f"~{trial_steps * gpu_h_per_step:,.1f} (memory plan)"
            if gpu_h_per_step is not None
            else "no memory plan (the model config has no architecture)"
        )
    )
    return lines


class _Study:
    """The stages run so far and what they decided, written to study.json after each."""

    def __init__(self, cfg: StudyConfig, trial_fn: TrialFn | None, console: Console, worker_logs: bool):
        self.cfg, self.trial_fn, self.console, self.worker_logs = cfg, trial_fn, console, worker_logs
        self.storage = RunStorage(study_dir(cfg))
        self.record: dict[str, Any] = {
            "methods": [method_name(m) for m in methods(cfg)],
            "stages": [],
            "chosen": {},
            "edge": [],
        }
        self.count = 0

    def run(
        self, lrs: dict[int, tuple[float, ...]], seeds: tuple[int, ...], steps: int
    ) -> dict[int, dict[float, float]]:
        """Run one tuning stage; each (method, lr)'s score."""
        stage = Stage(f"tune-{self.count}", lrs, seeds, steps)
        self.count += 1
        return self._run(stage)

    def _run(self, stage: Stage) -> dict[int, dict[float, float]]:
        sweep, specs = stage_sweep(self.cfg, stage)
        self.console.print(f"[bold]{sweep.name}[/bold]: {len(specs)} trials of {stage.steps} steps")
        table = run_sweep(
            sweep, trial_fn=self.trial_fn, console=self.console, worker_logs=self.worker_logs, specs=specs
        )
        rows = {r["trial_id"]: r for r in table.to_pylist()}
        bare = [m.model_copy(update={"lr": None}) for m in methods(self.cfg)]
        values: dict[tuple[int, float], list[float | None]] = {}
        for s in specs:
            i = next(i for i in stage.lrs if bare[i] == s.config.method.model_copy(update={"lr": None}))
            row = rows.get(s.trial_id, {})
            value = row.get(AVG) if row.get("status") == "done" else None
            values.setdefault((i, trial_lr(s.config)), []).append(value)
        scores: dict[int, dict[float, float]] = {}
        for (i, lr), vals in values.items():
            scores.setdefault(i, {})[lr] = mean_score(vals)
        self.record["stages"].append(
            {
                "name": sweep.name,
                "steps": stage.steps,
                "seeds": list(stage.seeds),
                "scores": {
                    self.record["methods"][i]: {f"{lr:g}": s for lr, s in by.items()} for i, by in scores.items()
                },
            }
        )
        self.save()
        return scores

    def save(self) -> None:
        text = json.dumps(self.record, indent=1, default=lambda v: None if v == -math.inf else v)
        self.storage.write_bytes(STUDY_JSON, text.replace("-Infinity", "null").encode())

    def tune(self) -> dict[int, float]:
        """Stage 1: each method's chosen lr."""
        cfg, seeds = self.cfg, tuple(self.cfg.tuning_seeds)
        grid = {i: sorted(cfg.lrs) for i in range(len(methods(cfg)))}
        scores: dict[int, dict[float, float]] = {i: {} for i in grid}
        pending = {i: tuple(lrs) for i, lrs in grid.items()}
        for spent in range(cfg.max_extensions + 1):
            for i, by in self.run(pending, seeds, rung_steps(cfg, 0)).items():
                scores[i].update(by)
            pending = {}
            for i in grid:
                beyond = extension(grid[i], scores[i], cfg.lr_factor)
                if beyond is not None and spent < cfg.max_extensions:
                    grid[i] = sorted(grid[i] + [beyond])
                    pending[i] = (beyond,)
            if not pending:
                break
        self.record["edge"] = [self.record["methods"][i] for i in grid if extension(grid[i], scores[i], cfg.lr_factor)]
        chosen: dict[int, float] = {}
        alive, rung = {i: list(lrs) for i, lrs in grid.items()}, 0
        while True:
            # a method is decided once one lr is left or its lrs have trained the whole budget
            for i in [i for i, lrs in alive.items() if len(lrs) == 1 or rung_steps(cfg, rung) >= cfg.base.steps]:
                chosen[i] = max(alive.pop(i), key=lambda lr: scores[i][lr])
            if not alive:
                break
            alive = {i: halve(lrs, scores[i], cfg.halving) for i, lrs in alive.items()}
            rung += 1
            longer = {i: tuple(lrs) for i, lrs in alive.items() if len(lrs) > 1}
            if longer:
                scores.update(self.run(longer, seeds, rung_steps(cfg, rung)))
        self.record["chosen"] = {self.record["methods"][i]: lr for i, lr in sorted(chosen.items())}
        self.save()
        return chosen

    def confirm(self, chosen: dict[int, float]) -> str:
        """Stage 2; returns the confirmation sweep's run directory."""
        stage = chosen_stage(self.cfg, chosen)
        self._run(stage)
        return f"{study_dir(self.cfg)}/{stage.name}"


def run_study(
    cfg: StudyConfig,
    trial_fn: TrialFn | None = None,
    console: Console | None = None,
    worker_logs: bool = True,
    dry_run: bool = False,
) -> str | None:
    """Print the budget, then (unless ``dry_run``) tune, confirm and print the answer; returns the confirmation
    run directory (where its report is), None on a dry run. Running it again resumes where it stopped."""
    console = console or Console()
    for line in budget_lines(cfg):
        console.print(line)
    if dry_run:
        return None
    study = _Study(cfg, trial_fn, console, worker_logs)
    confirm_dir = study.confirm(study.tune())

    print_answer(confirm_dir, study.record, console)
    return confirm_dir
