"""``run_sweep``: the sweep controller from config to results table, and its dry run.

Layout of a run (shared with the report code)::

    <storage>/<name>/sweep.yaml              the resolved SweepConfig of the latest controller
                     controller.lease.json   who drives the run (see lease.py)
                     ledger/<trial_id>.json  one record per trial (see ledger.py)
                     results.parquet         one row per trial (see results.py)
                     trials/<trial_id>/      the trial's own directory, written by the trial function
"""

from __future__ import annotations

import importlib
import math
import os

import pyarrow as pa
import ray
from rich.console import Console
from rich.table import Table

from rlvr.config.grid import TrialSpec, expand
from rlvr.config.layout import RunLayout
from rlvr.config.loader import dump
from rlvr.config.resources import describe, total, trial_bundles, unplaceable
from rlvr.config.schema import SweepConfig
from rlvr.storage import RunStorage
from rlvr.sweep.lease import ControllerLease
from rlvr.sweep.ledger import Ledger
from rlvr.sweep.progress import LiveTable
from rlvr.sweep.results import results_table, write_results
from rlvr.sweep.scheduler import SweepScheduler, TrialFn
from rlvr.trial.local_ray import init_local_ray


def run_dir(cfg: SweepConfig) -> str:
    return RunLayout.run_dir(cfg.storage, cfg.name)


def load_trial_fn(dotted: str | None) -> TrialFn:
    """``module:function``; None is the real trial, rlvr.trial.runner:run_trial."""
    module, _, name = (dotted or "rlvr.trial.runner:run_trial").partition(":")
    if not name:
        raise ValueError(f"trial function {dotted!r}: expected module:function, e.g. rlvr.sweep.smoke:smoke_trial")
    return getattr(importlib.import_module(module), name)


def dry_run_table(cfg: SweepConfig, specs: list[TrialSpec]) -> pa.Table:
    """Trial id, label and what each trial takes from the cluster."""
    rows = []
    for s in specs:
        bundles = trial_bundles(s.config, cfg.cpus_per_trial)
        t = total(bundles)
        rows.append(
            {
                "trial_id": s.trial_id,
                "label": s.label,
                "cpus": t.get("CPU", 0.0),
                "gpus": t.get("GPU", 0.0),
                "bundles": len(bundles),
                "steps": s.config.steps,
            }
        )
    return pa.Table.from_pylist(rows)


def _print_dry_run(cfg: SweepConfig, specs: list[TrialSpec], console: Console) -> None:
    table = Table(title=f"{cfg.name}: {len(specs)} trials -> {run_dir(cfg)}")
    for col in ("trial", "label", "resources", "steps"):
        table.add_column(col)
    for s in specs:
        table.add_row(s.trial_id, s.label, describe(trial_bundles(s.config, cfg.cpus_per_trial)), str(s.config.steps))
    console.print(table)


def _check_placeable(cfg: SweepConfig, specs: list[TrialSpec]) -> None:
    """Fail now, not after an endless wait, when a trial cannot fit the cluster and no autoscaler will grow it."""
    nodes = [n["Resources"] for n in ray.nodes() if n["Alive"]]
    problems = []
    for s in specs:
        why = unplaceable(trial_bundles(s.config, cfg.cpus_per_trial), nodes, s.config.placement)
        if why:
            problems.append(f"trial {s.trial_id} ({s.label}): {why}")
    if problems:
        raise RuntimeError(
            "trials that can never be placed on this Ray cluster (set autoscale: true for an autoscaling cluster, "
            "add nodes, or lower rollout.num_engines / learner.num_learners / reward.num_actors / cpus_per_trial):\n  "
            + "\n  ".join(problems)
        )


def ensure_ray(cfg: SweepConfig, specs: list[TrialSpec], log_to_driver: bool = True) -> None:
    """Keep the Ray this process is connected to; without one, start a private local Ray (whose workers' output
    reaches this terminal only with ``log_to_driver``)."""
    if ray.is_initialized():
        return

    # Declared CPUs fit the largest trial: on one machine its actors mostly wait on each other.
    need = max(total(trial_bundles(s.config, cfg.cpus_per_trial)).get("CPU", 1) for s in specs)
    init_local_ray(num_cpus=max(8, os.cpu_count() or 1, math.ceil(need)), log_to_driver=log_to_driver)


def run_sweep(
    cfg: SweepConfig,
    dry_run: bool = False,
    wait_for_lease: bool = False,
    trial_fn: TrialFn | None = None,
    lease_ttl_s: float = 60.0,
    console: Console | None = None,
    worker_logs: bool = True,
    specs: list[TrialSpec] | None = None,
) -> pa.Table:
    """Run (or resume) every trial of the sweep on the connected Ray cluster; returns the results table.

    With ``dry_run`` nothing starts: it prints and returns each trial's id, label and resources. Ray must be
    initialised by the caller (ray_jobs/sweep.py connects to the cluster); without it a local one is started,
    whose workers' output reaches this terminal only with ``worker_logs``. ``specs`` (default: the sweep's grid)
    lets a caller that composes trials itself (a study's stage, rlvr.study) run them under this sweep's name.
    """
    console = console or Console()
    specs = expand(cfg) if specs is None else specs
    if dry_run:
        _print_dry_run(cfg, specs, console)
        return dry_run_table(cfg, specs)
    trial_fn = trial_fn or load_trial_fn(None)
    storage = RunStorage(run_dir(cfg))
    storage.makedirs(RunLayout.LEDGER)
    lease = ControllerLease(storage, ttl_s=lease_ttl_s)
    lease.acquire(wait=wait_for_lease)
    try:
        storage.write_bytes(RunLayout.SWEEP, dump(cfg).encode())
        ensure_ray(cfg, specs, log_to_driver=worker_logs)
        if not cfg.autoscale:
            _check_placeable(cfg, specs)
        last_statuses: dict[str, str] = {}

        with LiveTable({s.trial_id: s.config.steps for s in specs}, cfg.name, console) as live:

            def on_change(records: dict[str, dict]) -> None:
                live.update(records)
                statuses = {tid: r["status"] for tid, r in records.items()}
                if statuses != last_statuses:
                    last_statuses.update(statuses)
                    write_results(storage, results_table(specs, records))

            # a pool's host runs the study trial only
            study_trial = (getattr(trial_fn, "__module__", None), getattr(trial_fn, "__name__", None))
            pools = cfg.pools and study_trial == ("rlvr.trial.runner", "run_trial")
            records = SweepScheduler(cfg, specs, storage, trial_fn, on_change=on_change, pools=pools).run()
        table = results_table(specs, records)
        write_results(storage, table)
        return table
    finally:
        lease.release()


def ledger_records(cfg: SweepConfig) -> dict[str, dict]:
    """The ledger of a sweep's run directory (for tests and reports)."""
    return Ledger(RunStorage(run_dir(cfg))).all()
