"""The one progress display of a sweep: a table of trials (status, attempts, step, reward, ETA, node).

The table is drawn from ledger records only, so ``status_table(run_dir)`` shows the same view from any machine
that can read the run's storage, while the controller shows it live.
"""

from __future__ import annotations

import time
from typing import Any

import yaml

from rich.console import Console
from rich.live import Live
from rich.table import Table

from rlvr.config.schema import SweepConfig
from rlvr.storage import RunStorage
from rlvr.sweep.grid import expand
from rlvr.sweep.ledger import Ledger

SWEEP_YAML = "sweep.yaml"
STYLE = {"pending": "dim", "running": "cyan", "done": "green", "failed": "red"}


def _eta(rec: dict[str, Any], steps: int | None, now: float) -> str:
    """Remaining time of a running trial at the pace of its current attempt."""
    if rec["status"] != "running" or not steps or not rec["history"]:
        return ""
    attempt = rec["history"][-1]
    done = rec["step"] - attempt.get("start_step", 0)
    if done <= 0:
        return "?"
    left = (now - attempt["started_at"]) / done * (steps - rec["step"])
    return time.strftime("%H:%M:%S", time.gmtime(left))


def render(records: dict[str, dict[str, Any]], steps: dict[str, int] | None = None, title: str = "") -> Table:
    """Rich table of trial records; ``steps`` (trial id -> total steps) enables progress fractions and ETAs."""
    steps = steps or {}
    now = time.time()
    counts = {s: sum(r["status"] == s for r in records.values()) for s in STYLE}
    caption = "  ".join(f"{s} {n}" for s, n in counts.items())
    table = Table(title=title or None, caption=caption)
    for col in ("trial", "label", "status", "attempts", "step", "reward", "ETA", "node", "error"):
        table.add_column(col, overflow="fold" if col == "error" else "ellipsis")
    for tid, rec in records.items():
        total = steps.get(tid)
        step = f"{rec['step']}/{total}" if total else str(rec["step"])
        reward = "" if rec.get("reward") is None else f"{rec['reward']:.3f}"
        node = (rec.get("node") or "")[:8]
        error = (rec.get("error") or "")[:80]
        table.add_row(tid, rec["label"], rec["status"], str(rec["attempts"]), step, reward, _eta(rec, total, now), node, error,
                      style=STYLE[rec["status"]])
    return table


def steps_by_trial(storage: RunStorage) -> dict[str, int]:
    """Total steps of each trial, from the resolved sweep.yaml the controller wrote (empty if it is missing)."""
    raw = storage.read_bytes(SWEEP_YAML)
    if raw is None:
        return {}
    cfg = SweepConfig.model_validate(yaml.safe_load(raw))
    return {s.trial_id: s.config.steps for s in expand(cfg)}


def status_table(run_dir: str, console: Console | None = None) -> Table:
    """Print (and return) the progress table of a run, read from its ledger."""
    storage = RunStorage(run_dir)
    records = Ledger(storage).all()
    if not records:
        raise FileNotFoundError(f"{run_dir}: no ledger found (expected {storage.uri_of('ledger')}/<trial_id>.json); is this a sweep run directory?")
    table = render(records, steps_by_trial(storage), title=run_dir)
    (console or Console()).print(table)
    return table


class LiveTable:
    """Redraws the table in place on a terminal; elsewhere (job logs) the scheduler's event lines suffice."""

    def __init__(self, steps: dict[str, int], title: str, console: Console | None = None):
        self.console = console or Console()
        self.steps, self.title = steps, title
        self.live = Live(console=self.console, auto_refresh=False) if self.console.is_terminal else None

    def __enter__(self) -> "LiveTable":
        if self.live is not None:
            self.live.start()
        return self

    def update(self, records: dict[str, dict[str, Any]]) -> None:
        if self.live is not None:
            self.live.update(render(records, self.steps, self.title), refresh=True)

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.stop()
