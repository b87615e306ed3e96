"""Plain-argument function behind ``rlvr study`` and ray_jobs/study.py; returns an exit code."""

from __future__ import annotations

import logging
from contextlib import nullcontext

from rich.console import Console

from rlvr.config.loader import load_study
from rlvr.study.run import run_study, study_dir
from rlvr.sweep.cli import EXIT_FAILED, EXIT_LEASE, EXIT_OK, opened
from rlvr.sweep.controller import load_trial_fn
from rlvr.sweep.lease import LeaseHeld
from rlvr.sweep.summary import events_to_file


def study_command(
    config: str,
    overrides: list[str] = (),
    dry_run: bool = False,
    trial_fn: str | None = None,
    address: str | None = None,
    verbose: bool = True,
) -> int:
    """Run or resume a study on the Ray cluster at ``address`` (None: a private local Ray). Exit codes: 0 the answer
    was printed, 1 a stage failed to produce it, 2 bad config, 4 a stage is held by another controller, 6 no
    cluster answers at ``address``."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    log = logging.getLogger("rlvr.study")
    cfg, failed = opened(load_study, config, overrides, address, log, dry_run)
    if failed is not None:
        return failed

    console = Console()
    quiet = not verbose and console.is_terminal and not dry_run
    try:
        with events_to_file(study_dir(cfg)) if quiet else nullcontext():
            run_study(
                cfg, None if dry_run else load_trial_fn(trial_fn), console, worker_logs=not quiet, dry_run=dry_run
            )
    except LeaseHeld as e:
        log.error("%s", e)
        return EXIT_LEASE
    except (ValueError, KeyError) as e:  # a stage without results to decide on (every trial failed)
        log.error("study stopped: %s", e)
        return EXIT_FAILED
    return EXIT_OK
