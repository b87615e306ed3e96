"""Plain-argument functions behind ``rlvr sweep`` and ``rlvr status`` (and ray_jobs/sweep.py); each returns an exit code."""

from __future__ import annotations

import logging

from rlvr.config.loader import ConfigError, load_sweep
from rlvr.sweep.controller import load_trial_fn, run_sweep
from rlvr.sweep.lease import LeaseHeld
from rlvr.sweep.progress import status_table

EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_UNFINISHED, EXIT_LEASE = 0, 1, 2, 3, 4


def sweep_command(
    config: str,
    overrides: list[str] = (),
    dry_run: bool = False,
    wait: bool = False,
    trial_fn: str | None = None,
    address: str | None = None,
) -> int:
    """Run or resume a sweep on the Ray cluster at ``address`` ("auto" on a cluster node; None starts a private
    local Ray). Exit codes: 0 all trials done, 1 some failed, 2 bad config, 3 stopped with trials pending,
    4 the run is held by another controller."""
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
    try:
        table = run_sweep(cfg, dry_run=dry_run, wait_for_lease=wait, trial_fn=None if dry_run else load_trial_fn(trial_fn))
    except LeaseHeld as e:
        log.error("%s", e)
        return EXIT_LEASE
    if dry_run:
        return EXIT_OK
    statuses = set(table.column("status").to_pylist())
    return EXIT_FAILED if "failed" in statuses else EXIT_UNFINISHED if statuses - {"done"} else EXIT_OK


def status_command(run: str) -> int:
    """Print the progress table of a run directory (local path or URI) from its ledger."""
    status_table(run)
    return EXIT_OK
