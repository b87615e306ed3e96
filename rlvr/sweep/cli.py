"""Plain-argument functions behind ``rlvr sweep`` and ``rlvr status`` (and ray_jobs/sweep.py); each returns an exit code."""

from __future__ import annotations

import logging
import time
from contextlib import nullcontext

from rich.console import Console

from rlvr.config.loader import ConfigError, load_sweep
from rlvr.sweep.controller import ledger_records, load_trial_fn, run_dir, run_sweep
from rlvr.sweep.lease import LeaseHeld
from rlvr.sweep.progress import status_table
from rlvr.sweep.summary import events_to_file, print_summary

EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_UNFINISHED, EXIT_LEASE = 0, 1, 2, 3, 4


def sweep_command(
    config: str,
    overrides: list[str] = (),
    dry_run: bool = False,
    wait: bool = False,
    trial_fn: str | None = None,
    address: str | None = None,
    verbose: bool = True,
) -> int:
    """Run or resume a sweep on the Ray cluster at ``address`` ("auto" on a cluster node; None starts a private
    local Ray). Exit codes: 0 all trials done, 1 some failed, 2 bad config, 3 stopped with trials pending,
    4 the run is held by another controller.

    Without ``verbose`` on a terminal, the live view is all that is drawn: rlvr's event lines go to
    <run>/sweep.log, each trial's to its trial.log, and the output of a local Ray's workers (vLLM, tokenizer,
    Triton warnings) stays in Ray's session logs. It ends with the study table and the report's path."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    log = logging.getLogger("rlvr.sweep")
    try:
        cfg = load_sweep(config, list(overrides))
    except ConfigError as e:
        log.error("%s", e)
        return EXIT_CONFIG
    if address and not dry_run:
        import ray

        ray.init(address=address)
    console = Console()
    quiet = not verbose and console.is_terminal and not dry_run
    started = time.time()
    try:
        with events_to_file(run_dir(cfg)) if quiet else nullcontext():
            table = run_sweep(cfg, dry_run=dry_run, wait_for_lease=wait, trial_fn=None if dry_run else load_trial_fn(trial_fn),
                              console=console, worker_logs=not quiet)
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
