"""What ``rlvr sweep`` says when it ends: how the trials ended (and which shared a pool), what was learned (each
method's accuracy before and after against the base and LoRA) and where the report is, which it writes first."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from rlvr.analysis.baseline import before_after
from rlvr.analysis.findings import RANKING_COMMAND
from rlvr.analysis.rundir import RunDir
from rlvr.analysis.study import group_trials, trial_rows
from rlvr.config.layout import RunLayout, TrialLayout
from rlvr.errors import hint_for
from rlvr.storage import RunStorage
from rlvr.sweep.ledger import shared_pools
from rlvr.sweep.progress import errors, short_labels

log = logging.getLogger("rlvr.sweep")
SWEEP_LOG = "sweep.log"


@contextmanager
def events_to_file(run_dir: str) -> Iterator[str | None]:
    """rlvr's event lines (trial started/ended, ...) go to <run>/sweep.log instead of the terminal, where the
    live view shows progress; yields the log's path (None for remote storage, where they are dropped)."""
    storage = RunStorage(run_dir)
    logger = logging.getLogger("rlvr")
    handler: logging.Handler = logging.NullHandler()
    if storage.local:
        storage.makedirs("")
        handler = logging.FileHandler(storage.path(SWEEP_LOG))
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    previous = logger.propagate, logger.level
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    try:
        yield getattr(handler, "baseFilename", None)
    finally:
        logger.removeHandler(handler)
        handler.close()
        logger.propagate, logger.level = previous


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def _hints(run_dir: str, records: dict[str, dict[str, Any]], console: Console) -> None:
    """What to change for each kind of expected error the failed trials ended on, and where their tracebacks are."""
    failed = [r for r in records.values() if r["status"] == "failed" and r.get("error")]
    for hint in dict.fromkeys(h for r in failed if (h := hint_for(r["error"]))):
        console.print(hint)
    if failed:
        console.print(f"tracebacks: {run_dir}/{RunLayout.trial('<id>', TrialLayout.LOG)}")


def study_summary(run_dir: str) -> tuple[list[str], list[list[str]]]:
    """The before -> after table of the run (base row first), as the report shows it."""
    run = RunDir(run_dir)
    return before_after(run, trial_rows(run))


def _one_seed(run_dir: str) -> bool:
    """Whether no configuration of the run finished on two seeds or more."""
    groups = group_trials(trial_rows(RunDir(run_dir)))
    return bool(groups) and max(len(g.done) for g in groups) < 2


def print_summary(run_dir: str, records: dict[str, dict[str, Any]], started: float, console: Console) -> Path | None:
    """Print how the sweep ended, the study table and the report's path (written here); returns that path."""
    counts = {s: sum(r["status"] == s for r in records.values()) for s in ("done", "failed", "pending", "running")}
    states = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    console.print(
        f"\n[bold]{Path(run_dir).name}[/bold]: {len(records)} trials ({states}) in {_duration(time.time() - started)}"
    )
    console.print(errors(records), end="")
    names = dict(zip(records, short_labels([r["label"] for r in records.values()])))
    shared = [f"{pool} ({', '.join(names[t] for t in ids)})" for pool, ids in shared_pools(records)]
    if shared:
        console.print(f"tenants of one pool together: {'; '.join(shared)}")
    _hints(run_dir, records, console)
    header, rows = study_summary(run_dir)
    table = Table(
        title="accuracy (%, average over benchmarks) before and after training",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    for col in header:
        table.add_column(col, justify="left" if col == "method" else "right", no_wrap=True)
    for row in rows:
        table.add_row(*row, style="bold" if row[0].startswith("base") else None)
    console.print(table)
    if _one_seed(run_dir):
        console.print(
            f"One seed per method cannot rank methods (seeds differ as much as methods do): "
            f"[bold]{RANKING_COMMAND}[/bold] tunes each method's learning rate, then compares on fresh "
            "seeds."
        )
    from rlvr.analysis.report import build_report  # matplotlib, only once a sweep ends

    out = Path(RunLayout.report_dir(run_dir))
    try:
        html_path, _ = build_report(run_dir, out)
    except Exception as e:  # the sweep's results stand without a report; say how to make it
        log.warning("report_failed error=%s", e)
        console.print(f"the report could not be written ({type(e).__name__}: {e}); run `rlvr report {run_dir}`")
        return None
    console.print(f"report: [bold]{html_path}[/bold] (and report.md next to it)")
    return html_path
