"""The one progress display of a sweep: a table of trials (label, id, status, step, reward, ETA, attempts, and
with warm pools the pool of the latest attempt, with the tenant slot: "pool-2/1"), the sweep's ETA under it, then the
errors.

The table is drawn from ledger records only, so ``status_table(run_dir)`` shows the same view from any machine
that can read the run's storage, while the controller shows it live.
"""

from __future__ import annotations

import time
from typing import Any

import yaml
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from rlvr.config.grid import expand
from rlvr.config.layout import RunLayout
from rlvr.config.schema import UNCHECKED, SweepConfig
from rlvr.storage import RunStorage
from rlvr.sweep.ledger import Ledger, placement

STYLE = {"pending": "dim", "running": "cyan", "done": "green", "failed": "red"}


def _clock(seconds: float) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(max(seconds, 0)))


def _left_s(rec: dict[str, Any], steps: int | None, now: float) -> float | None:
    """Seconds a running trial has left at the pace of its current attempt (None before its first step)."""
    if rec["status"] != "running" or not steps or not rec["history"]:
        return None
    attempt = rec["history"][-1]
    done = rec["step"] - attempt.get("start_step", 0)
    if done <= 0:
        return None
    return (now - attempt["started_at"]) / done * (steps - rec["step"])


def _eta(rec: dict[str, Any], steps: int | None, now: float) -> str:
    left = _left_s(rec, steps, now)
    if left is None:
        return "?" if rec["status"] == "running" else ""
    return _clock(left)


def sweep_eta(records: dict[str, dict[str, Any]], steps: dict[str, int], now: float) -> float | None:
    """Seconds until every trial has ended: what the running ones have left, plus the pending ones at the mean
    duration of finished trials, shared among as many slots as are running now. None until one trial is done."""
    durations = [r["duration_s"] for r in records.values() if r["status"] == "done" and r.get("duration_s")]
    if not durations:
        return None
    mean = sum(durations) / len(durations)
    running = [r for r in records.values() if r["status"] == "running"]
    pending = sum(r["status"] == "pending" for r in records.values())
    left = [_left_s(r, steps.get(r["trial_id"]), now) for r in running]
    left = [mean if v is None else v for v in left]
    return (sum(left) + pending * mean) / max(len(running), 1)


def short_labels(labels: list[str]) -> list[str]:
    """Labels reduced to the parts that tell trials apart (model/preset/method/seed/axes -> "lora", or
    "lora/seed2" when seeds differ); the method is always kept."""
    split = [label.split("/") for label in labels]
    width = max((len(p) for p in split), default=0)
    keep = [i for i in range(width) if i == 2 or len({p[i] if i < len(p) else None for p in split}) > 1]
    return ["/".join(p[i] for i in keep if i < len(p)) or label for p, label in zip(split, labels)]


def render(records: dict[str, dict[str, Any]], steps: dict[str, int] | None = None, title: str = "") -> Table:
    """Rich table of trial records, narrow enough for 80 columns: the method label first, a short id, the
    progress columns; ``steps`` (trial id -> total steps) enables progress fractions and ETAs. Errors are
    listed under the table by ``errors``."""
    steps = steps or {}
    now = time.time()
    counts = {s: sum(r["status"] == s for r in records.values()) for s in STYLE}
    caption = "  ".join(f"{s} {n}" for s, n in counts.items())
    total_left = sweep_eta(records, steps, now)
    if total_left is not None and counts["pending"] + counts["running"]:
        caption += f"  ·  sweep ETA {_clock(total_left)}"
    nodes = {r.get("node") for r in records.values() if r.get("node")}
    pooled = any(r.get("pool") for r in records.values())
    table = Table(title=title or None, caption=caption, title_justify="left", caption_justify="left")
    columns = ["trial", "id", "status", "step", "reward", "ETA", "try"]
    columns += (["pool"] if pooled else []) + (["node"] if len(nodes) > 1 else [])
    for col in columns:
        table.add_column(
            col,
            overflow="fold" if col == "trial" else "ellipsis",
            no_wrap=col != "trial",
            justify="right" if col in ("step", "reward", "try") else "left",
        )
    labels = dict(zip(records, short_labels([r["label"] for r in records.values()])))
    for tid, rec in records.items():
        total = steps.get(tid)
        step = f"{rec['step']}/{total}" if total else str(rec["step"])
        reward = "" if rec.get("reward") is None else f"{rec['reward']:.3f}"
        cells = [labels[tid], tid[:8], rec["status"], step, reward, _eta(rec, total, now), str(rec["attempts"])]
        cells += [placement(rec)] if pooled else []
        table.add_row(*cells + ([(rec.get("node") or "")[:8]] if len(nodes) > 1 else []), style=STYLE[rec["status"]])
    return table


def errors(records: dict[str, dict[str, Any]]) -> Text:
    """One line per trial whose last attempt ended in an error (the table has no room for them)."""
    labels = dict(zip(records, short_labels([r["label"] for r in records.values()])))
    out = Text()
    for tid, rec in records.items():
        if rec.get("error"):
            out.append(f"{labels[tid]} ({tid[:8]}, {rec['status']}): ", style="bold")
            out.append(f"{rec['error']}\n", style=STYLE[rec["status"]])
    return out


def view(records: dict[str, dict[str, Any]], steps: dict[str, int] | None = None, title: str = "") -> Group:
    """The table and, under it, the errors."""
    return Group(render(records, steps, title), errors(records))


def steps_by_trial(storage: RunStorage) -> dict[str, int]:
    """Total steps of each trial, from the resolved sweep.yaml the controller wrote (empty if it is missing)."""
    raw = storage.read_bytes(RunLayout.SWEEP)
    if raw is None:
        return {}
    cfg = SweepConfig.model_validate(yaml.safe_load(raw), context=UNCHECKED)
    return {s.trial_id: s.config.steps for s in expand(cfg)}


def status_table(run_dir: str, console: Console | None = None) -> Table:
    """Print (and return) the progress table of a run, read from its ledger."""
    storage = RunStorage(run_dir)
    records = Ledger(storage).all()
    if not records:
        expected = storage.uri_of(RunLayout.ledger_entry("<trial_id>"))
        raise FileNotFoundError(f"{run_dir}: no ledger found (expected {expected}); is this a sweep run directory?")
    table = render(records, steps_by_trial(storage), title=run_dir)
    console = console or Console()
    console.print(table)
    console.print(errors(records), end="")
    return table


class LiveTable:
    """Redraws the table in place on a terminal; elsewhere (job logs) the scheduler's event lines suffice."""

    def __init__(self, steps: dict[str, int], title: str, console: Console | None = None):
        self.console = console or Console()
        self.steps, self.title = steps, title
        self.live = Live(console=self.console, auto_refresh=False) if self.console.is_terminal else None

    def __enter__(self) -> LiveTable:
        if self.live is not None:
            self.live.start()
        return self

    def update(self, records: dict[str, dict[str, Any]]) -> None:
        if self.live is not None:
            self.live.update(view(records, self.steps, self.title), refresh=True)

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.stop()
