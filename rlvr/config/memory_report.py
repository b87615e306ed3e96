"""``rlvr plan``: the memory plan of a trial or of every trial of a sweep, the GPUs and nodes, and GPU-hours."""

from __future__ import annotations

import math

from rlvr.config.grid import expand
from rlvr.config.loader import ConfigError, find_config, load_sweep, load_trial
from rlvr.config.memory_plan import MemoryPlan, plan_trial
from rlvr.config.schema import TrialConfig


def _actor_lines(plan: MemoryPlan, cfg: TrialConfig) -> list[str]:
    gib = cfg.resources.gpu_memory_gib
    lines = []
    for a in plan.actors:
        items = "  ".join(f"{k} {v:.2f}" for k, v in a.items.items())
        where = "host" if not a.gpu else (f"of {gib:g} GiB GPU" if gib else "GPU")
        lines.append(f"  {a.name:8s} {a.total:7.2f} GiB {where}: {items}")
        lines += [f"           {n}" for n in a.notes]
    return lines


def format_plan(trials: list[tuple[str, TrialConfig]], max_concurrent: int | None = None) -> str:
    """The plan of each trial (identical plans shown once), then what the whole set needs."""
    out: list[str] = []
    seen: dict[str, str] = {}
    gpus, hours = [], 0.0
    for label, cfg in trials:
        plan = plan_trial(cfg)
        gpus.append(plan.gpus)
        hours += plan.gpu_hours
        body = _actor_lines(plan, cfg)
        key = "\n".join(body)
        head = (
            f"{label}: {plan.gpus} GPU(s), ~{plan.step_seconds:.0f} s/step, "
            f"{cfg.steps} steps, ~{plan.gpu_hours:.0f} GPU-hours"
        )
        if key in seen:
            out.append(f"{head}\n  (memory as {seen[key]})")
            continue
        seen[key] = label
        out.append("\n".join([head, *body]))
    res = trials[0][1].resources
    concurrent = min(max_concurrent or len(trials), len(trials))
    peak = sum(sorted(gpus, reverse=True)[:concurrent])
    out.append(
        f"total: {len(trials)} trial(s), {peak} GPUs with {concurrent} running at once "
        f"= {math.ceil(peak / res.gpus_per_node)} node(s) of {res.gpus_per_node}; ~{hours:,.0f} GPU-hours "
        f"(at {res.mfu:.0%} of {res.gpu_tflops:g} TFLOPS and {res.bandwidth_efficiency:.0%} of "
        f"{res.gpu_bandwidth_tb_s:g} TB/s; "
        f"override resources.* to use your own figures)"
    )
    return "\n\n".join(out)


def plan_command(name: str, overrides: list[str]) -> str:
    """A sweep's plan if ``name`` is a sweep config, else a trial's."""
    try:
        find_config(name, "sweeps")
    except ConfigError:
        return format_plan([(name, load_trial(name, overrides))])

    sweep = load_sweep(name, overrides)
    return format_plan([(s.label, s.config) for s in expand(sweep)], sweep.max_concurrent)
