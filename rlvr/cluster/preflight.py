"""`rlvr preflight SWEEP`: before a sweep spends GPU-hours, run rlvr.cluster.probe's checks on one node of every
node type (and on a GPU node the autoscaler brings up when none is running), and print one line per check.

A node type is a resource shape (CPUs, GPUs, accelerator type): the cluster configs give each type its own.
"""

from __future__ import annotations

import dataclasses

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from rlvr.cluster.needs import needs_of
from rlvr.cluster.probe import FAIL, OK, SKIP, Check, ProbePlan, run_checks
from rlvr.config.resources import total, trial_bundles
from rlvr.config.schema import SweepConfig, TrialConfig

NEW_GPU_NODE = "new GPU node"


def data_items(trials: list[TrialConfig]) -> list[tuple]:
    """The training sets and benchmarks trials read from files or the hub (synthetic ones are generated)."""
    items: dict[tuple, tuple] = {}
    for t in trials:
        if not t.data.source.startswith("synthetic:"):
            items[("train", t.data.source, t.data.split)] = ("train", t.data)
        for spec in t.eval.benchmarks:
            if not spec.name.startswith("synthetic:"):
                key = ("benchmark", spec.name, spec.hub_name, t.data.data_dir)
                items[key] = ("benchmark", spec, t.data.data_dir, t.data.levels)
    return list(items.values())


def node_types() -> dict[str, dict]:
    """One alive node of each type, by a label such as ``48 CPU, 8 GPU A100 @ 10.0.1.7``."""
    types: dict[str, dict] = {}
    for node in sorted(ray.nodes(), key=lambda n: n["NodeManagerAddress"]):
        if not node["Alive"]:
            continue
        res = node["Resources"]
        accel = [k.split(":", 1)[1] for k in res if k.startswith("accelerator_type:")]
        shape = (
            f"{res.get('CPU', 0):g} CPU"
            + (f", {res['GPU']:g} GPU" if res.get("GPU") else "")
            + "".join(f" {a}" for a in accel)
        )
        if not any(label.startswith(shape + " @") for label in types):
            types[f"{shape} @ {node['NodeManagerAddress']}"] = node
    return types


def run_preflight(
    cfg: SweepConfig,
    trials: list[TrialConfig],
    run_dir: str,
    allow_fake_gpus: bool = False,
    node_timeout_s: float = 900.0,
    skip_data_reason: str | None = None,
) -> list[Check]:
    """Every node type's checks (Ray must be initialised). ``skip_data_reason`` skips data and weights, for trial
    functions that load neither (the smoke trial)."""
    plan = ProbePlan(
        run_dir=run_dir,
        needs=needs_of(trials),
        data=data_items(trials),
        allow_fake_gpus=allow_fake_gpus,
        skip_data_reason=skip_data_reason,
        trials=[] if skip_data_reason else trials,
    )
    probe = ray.remote(max_retries=0)(run_checks)
    refs, checks = {}, []
    types = node_types()
    for label, node in types.items():
        declared = node["Resources"].get("GPU", 0.0)
        gpus = int(min(2, declared))
        strategy = NodeAffinitySchedulingStrategy(node["NodeID"], soft=False)
        refs[label] = probe.options(num_cpus=0, num_gpus=gpus, scheduling_strategy=strategy).remote(
            dataclasses.replace(plan, gpus=gpus, declared_gpus=declared)
        )
    need = max(total(trial_bundles(t, cfg.cpus_per_trial)).get("GPU", 0.0) for t in trials)
    if need and not any(node["Resources"].get("GPU") for node in types.values()):
        if cfg.autoscale:
            gpus = int(min(2, need))
            refs[NEW_GPU_NODE] = probe.options(num_cpus=0, num_gpus=gpus).remote(
                dataclasses.replace(plan, gpus=gpus, declared_gpus=gpus)
            )
        else:
            checks.append(
                Check(
                    "gpu nodes",
                    FAIL,
                    f"trials need up to {need:g} GPUs, no node has any and autoscale is off",
                    "cluster",
                )
            )
    ready, pending = ray.wait(list(refs.values()), num_returns=len(refs), timeout=node_timeout_s)
    for label, ref in refs.items():
        if ref in pending:
            ray.cancel(ref, force=True)
            why = (
                "no GPU node came up (see `ray status`: quota, instance type, autoscaler)"
                if label == NEW_GPU_NODE
                else "the node is busy or gone"
            )
            checks.append(Check("probe", FAIL, f"no result within {node_timeout_s:g} s: {why}", label))
            continue
        try:
            checks += [dataclasses.replace(c, node=label) for c in ray.get(ref)]
        except Exception as e:  # noqa: BLE001 - a probe that dies (node lost, import crash) is a failed check
            checks.append(Check("probe", FAIL, f"{type(e).__name__}: {str(e).splitlines()[0][:300]}", label))
    return checks


def report(checks: list[Check]) -> tuple[list[str], bool]:
    """One line per check and a summary line; and whether every check passed or was skipped."""
    width = max((len(c.node) for c in checks), default=0)
    lines = [f"{c.status:<4}  {c.node:<{width}}  {c.name:<10}  {' '.join(c.detail.split())}" for c in checks]
    counts = {s: sum(c.status == s for c in checks) for s in (OK, SKIP, FAIL)}
    lines.append(f"preflight: {counts[OK]} ok, {counts[SKIP]} skipped, {counts[FAIL]} failed")
    return lines, counts[FAIL] == 0
