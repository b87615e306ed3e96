"""Plain-argument functions behind ``rlvr sweep``, ``rlvr preflight`` and ``rlvr status`` (and ray_jobs/sweep.py,
ray_jobs/preflight.py); each returns an exit code."""

from __future__ import annotations

import logging
import time
from contextlib import nullcontext

from rich.console import Console

from rlvr.cluster.attach import ClusterGone, attach
from rlvr.cluster.preflight import report, run_preflight
from rlvr.config.grid import expand
from rlvr.config.loader import ConfigError, load_sweep
from rlvr.config.schema import SweepConfig
from rlvr.sweep.controller import ensure_ray, ledger_records, load_trial_fn, run_dir, run_sweep
from rlvr.sweep.lease import LeaseHeld
from rlvr.sweep.progress import status_table
from rlvr.sweep.summary import events_to_file, print_summary

EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_UNFINISHED, EXIT_LEASE, EXIT_PREFLIGHT, EXIT_NO_CLUSTER = 0, 1, 2, 3, 4, 5, 6


def attached(address: str | None) -> bool:
    """Attach to the cluster at ``address`` (None: nothing to do); False, with the error logged, when it is gone."""
    if not address:
        return True
    try:
        attach(address)
    except ClusterGone as e:
        logging.getLogger("rlvr.sweep").error("%s", e)
        return False
    return True


def opened(
    load, config: str, overrides: list[str], address: str | None, log: logging.Logger, dry_run: bool = False
) -> tuple[object, int | None]:
    """The opening of every run command: (the config ``load`` validates, None), after attaching to the cluster at
    ``address`` unless it is a dry run; or (None, the exit code) with the error logged."""
    try:
        cfg = load(config, list(overrides))
    except ConfigError as e:
        log.error("%s", e)
        return None, EXIT_CONFIG
    if not dry_run and not attached(address):
        return None, EXIT_NO_CLUSTER
    return cfg, None


def _preflight(
    cfg: SweepConfig,
    trial_fn: str | None,
    allow_fake_gpus: bool = False,
    node_timeout_s: float = 900.0,
    log_to_driver: bool = True,
) -> bool:
    """Print the preflight's lines (on the connected Ray, else a local one); True when nothing failed."""
    specs = expand(cfg)
    ensure_ray(cfg, specs, log_to_driver)
    skip = (
        None if trial_fn is None else f"--trial-fn {trial_fn} is not the study trial: its models and data are its own"
    )
    checks = run_preflight(cfg, [s.config for s in specs], run_dir(cfg), allow_fake_gpus, node_timeout_s, skip)
    lines, ok = report(checks)
    print("\n".join(lines), flush=True)
    return ok


def preflight_command(
    config: str,
    overrides: list[str] = (),
    address: str | None = None,
    allow_fake_gpus: bool = False,
    node_timeout_s: float = 900.0,
    trial_fn: str | None = None,
) -> int:
    """Check every node type of the Ray cluster at ``address`` (None: a private local Ray) for the sweep. Exit
    codes: 0 nothing failed, 1 a check failed, 2 bad config, 6 no cluster answers at ``address``."""
    cfg, failed = opened(load_sweep, config, overrides, address, logging.getLogger("rlvr.sweep"))
    if failed is not None:
        return failed
    return EXIT_OK if _preflight(cfg, trial_fn, allow_fake_gpus, node_timeout_s) else EXIT_FAILED


def sweep_command(
    config: str,
    overrides: list[str] = (),
    dry_run: bool = False,
    wait: bool = False,
    trial_fn: str | None = None,
    address: str | None = None,
    preflight: bool = True,
    verbose: bool = True,
) -> int:
    """Run or resume a sweep on the Ray cluster at ``address`` ("auto" on a cluster node; None starts a private
    local Ray), after the preflight unless ``preflight`` is off. Exit codes: 0 all trials done, 1 some failed,
    2 bad config, 3 stopped with trials pending, 4 the run is held by another controller, 5 the preflight failed,
    6 no cluster answers at ``address``.

    Without ``verbose`` on a terminal, the live view is all that is drawn: rlvr's event lines go to
    <run>/sweep.log, each trial's to its trial.log, and the output of a local Ray's workers (vLLM, tokenizer,
    Triton warnings) stays in Ray's session logs. It ends with the study table and the report's path."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    log = logging.getLogger("rlvr.sweep")
    cfg, failed = opened(load_sweep, config, overrides, address, log, dry_run)
    if failed is not None:
        return failed
    console = Console()
    quiet = not verbose and console.is_terminal and not dry_run
    started = time.time()
    if preflight and not dry_run and not _preflight(cfg, trial_fn, log_to_driver=not quiet):
        log.error(
            "preflight failed: no trial started. Fix the FAIL lines above, or skip the checks with --no-preflight"
        )
        return EXIT_PREFLIGHT
    try:
        with events_to_file(run_dir(cfg)) if quiet else nullcontext():
            table = run_sweep(
                cfg,
                dry_run=dry_run,
                wait_for_lease=wait,
                trial_fn=None if dry_run else load_trial_fn(trial_fn),
                console=console,
                worker_logs=not quiet,
            )
    except LeaseHeld as e:
        log.error("%s", e)
        return EXIT_LEASE
    if dry_run:
        return EXIT_OK
    print_summary(run_dir(cfg), ledger_records(cfg), started, console)
    statuses = set(table.column("status").to_pylist())
    return EXIT_FAILED if "failed" in statuses else EXIT_UNFINISHED if statuses - {"done"} else EXIT_OK


def status_command(run: str) -> int:
    """Print the progress table of a run directory (local path or URI) from its ledger."""
    status_table(run)
    return EXIT_OK
