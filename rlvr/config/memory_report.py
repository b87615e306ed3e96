"""``rlvr plan``: the memory plan of a trial or of every trial of a sweep, the GPUs and nodes, and GPU-hours; for a
sweep, its pooled plan beside (rlvr.config.pooled_plan)."""

from __future__ import annotations

import math

from rlvr.config.grid import expand
from rlvr.config.loader import ConfigError, find_config, load_sweep, load_trial
from rlvr.config.memory_plan import MemoryPlan, decode_seconds, plan_trial, train_seconds
from rlvr.config.pooled_plan import MOST_TENANTS, PoolGroup, PoolKey, pool_step_seconds, pooled_plan
from rlvr.config.schema import SweepConfig, TrialConfig


def _actor_lines(plan: MemoryPlan, cfg: TrialConfig) -> list[str]:
    gib = cfg.resources.gpu_memory_gib
    lines = []
    for a in plan.actors:
        items = "  ".join(f"{k} {v:.2f}" for k, v in a.items.items())
        where = "host" if not a.gpu else (f"of {gib:g} GiB GPU" if gib else "GPU")
        lines.append(f"  {a.name:8s} {a.total:7.2f} GiB {where}: {items}")
        lines += [f"           {n}" for n in a.notes]
    return lines


def solo_totals(trials: list[tuple[str, TrialConfig]], max_concurrent: int | None) -> tuple[int, int, float]:
    """(trials running at once, their GPUs, GPU-hours of the whole set) when every trial runs alone."""
    plans = [plan_trial(cfg) for _, cfg in trials]
    concurrent = min(max_concurrent or len(trials), len(trials))
    return concurrent, sum(sorted((p.gpus for p in plans), reverse=True)[:concurrent]), sum(p.gpu_hours for p in plans)


def format_plan(trials: list[tuple[str, TrialConfig]], max_concurrent: int | None = None) -> str:
    """The plan of each trial (identical plans shown once), then what the whole set needs."""
    out: list[str] = []
    seen: dict[str, str] = {}
    for label, cfg in trials:
        plan = plan_trial(cfg)
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
    concurrent, peak, hours = solo_totals(trials, max_concurrent)
    out.append(
        f"total: {len(trials)} trial(s), {peak} GPUs with {concurrent} running at once "
        f"= {math.ceil(peak / res.gpus_per_node)} node(s) of {res.gpus_per_node}; ~{hours:,.0f} GPU-hours "
        f"(at {res.mfu:.0%} of {res.gpu_tflops:g} TFLOPS and {res.bandwidth_efficiency:.0%} of "
        f"{res.gpu_bandwidth_tb_s:g} TB/s; "
        f"override resources.* to use your own figures)"
    )
    return "\n\n".join(out)


def _short(label: str) -> str:
    """A sweep label without its model and preset (model/preset/method/seed...)."""
    return label.split("/", 2)[-1]


def _group_lines(g: PoolGroup) -> list[str]:
    bounds = ", ".join(
        f"{name} {'?' if n is None else f'{n}+' if n == MOST_TENANTS else n}" for name, n in g.bounds.items()
    )
    full = [g.configs[i] for i in g.pools[0]]
    decode = max(decode_seconds(c, len(full)) for c in full)
    weights = max(decode_seconds(c, 0) for c in full)  # the reads of the base alone, which tenants share
    lines = [
        f"{', '.join(_short(label) for label in g.labels)}: K = {g.k}, bound by {g.binding} ({bounds}); "
        f"{len(g.pools)} pool(s) of {g.gpus} GPU(s); ~{pool_step_seconds(full):.0f} s per lock-step of {len(full)} "
        f"(one decode {decode:.0f} s, of which {1 - weights / decode:.0%} KV cache reads that tenants do not share; "
        f"updates {' + '.join(f'{train_seconds(c):.0f}' for c in full)} s); ~{g.gpu_hours:,.0f} GPU-hours"
    ]
    for a in (g.engine, g.learner):
        items = "  ".join(f"{k} {v:.2f}" for k, v in a.items.items())
        lines.append(f"    {a.name:8s} {a.total:7.2f} GiB: {items}")
        lines += [f"             {n}" for n in a.notes]
    return lines


def format_pooled(
    trials: list[tuple[str, TrialConfig]], sweep: SweepConfig, key: PoolKey, solo: tuple[int, int, float]
) -> str:
    """The pooled plan (rlvr.config.pooled_plan) beside the solo one: GPUs, nodes and GPU-hours of each."""
    if not sweep.pools:
        return "pooled: sweep.pools is false, so every trial starts its own actors: the solo plan above"
    plan = pooled_plan(trials, sweep.tenants, key)
    out = [
        f"pooled (sweep.tenants {sweep.tenants}, the engines' max_loras): the trials of one pool key that can share "
        "a batch run K at a time in lock-step, one engine batch for all of them (the base read once per decoded "
        "token, each sequence's KV cache as alone) and one learner updating them one after another"
    ]
    for g in plan.groups:
        out += [f"  {line}" for line in _group_lines(g)]
    reasons: dict[str, list[str]] = {}
    for label, _, why in plan.solo:
        reasons.setdefault(why, []).append(_short(label))
    out += [f"  alone: {', '.join(labels)}: {why}" for why, labels in reasons.items()]
    res = trials[0][1].resources
    _, solo_gpus, solo_hours = solo
    gpus, hours = plan.peak_gpus(sweep.max_concurrent), plan.gpu_hours
    out.append(
        f"solo -> pooled: {solo_gpus} -> {gpus} GPUs, {math.ceil(solo_gpus / res.gpus_per_node)} -> "
        f"{math.ceil(gpus / res.gpus_per_node)} node(s) of {res.gpus_per_node}, ~{solo_hours:,.0f} -> "
        f"~{hours:,.0f} GPU-hours ({hours / solo_hours:.0%} of solo)"
    )
    return "\n".join(out)


def plan_command(name: str, overrides: list[str], key: PoolKey | None = None) -> str:
    """A sweep's plan if ``name`` is a sweep config, else a trial's; with ``key`` (rlvr.pool.warm.pool_key) a
    sweep's pooled plan follows."""
    try:
        find_config(name, "sweeps")
    except ConfigError:
        sweep, trials = None, [(name, load_trial(name, overrides))]
    else:
        sweep = load_sweep(name, overrides)
        trials = [(s.label, s.config) for s in expand(sweep)]
    bare = next((cfg.model.name for _, cfg in trials if cfg.model.architecture is None), None)
    if bare is not None:
        raise ConfigError(
            f"{name}: model {bare!r} has no model.architecture, which the memory plan needs (configs/models/)"
        )
    if sweep is None:
        return format_plan(trials)
    text = format_plan(trials, sweep.max_concurrent)
    if key is None:
        return text
    return f"{text}\n\n{format_pooled(trials, sweep, key, solo_totals(trials, sweep.max_concurrent))}"
