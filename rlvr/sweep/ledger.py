"""The sweep's ledger: one JSON object per trial in ``<run>/ledger/<trial_id>.json``, replaced whole on change.

Only the controller holding the lease writes it; anyone with access to the storage may read it (``rlvr status``).
A record's ``history`` keeps one entry per attempt, so a reader can see where and why each attempt ended.
"""

from __future__ import annotations

import time
from typing import Any, Literal

from rlvr.config.grid import TrialSpec
from rlvr.config.layout import RunLayout
from rlvr.storage import RunStorage

Status = Literal["pending", "running", "done", "failed"]
# How an attempt ended. Only "failed" counts against max_attempts: the others are not the trial's fault.
Outcome = Literal["done", "failed", "preempted", "stopped", "interrupted"]


def new_record(spec: TrialSpec) -> dict[str, Any]:
    return {
        "trial_id": spec.trial_id,
        "label": spec.label,
        "status": "pending",
        "attempts": 0,
        "step": 0,
        "reward": None,
        "last_checkpoint": None,
        "started_at": None,
        "finished_at": None,
        "duration_s": 0.0,
        "error": None,
        "final": {},
        "node": None,
        "pool": None,
        "slot": None,
        "history": [],
    }


def failures(record: dict[str, Any]) -> int:
    return sum(1 for h in record["history"] if h["outcome"] == "failed")


class Ledger:
    """Read and update trial records; every update is one whole-object write."""

    def __init__(self, storage: RunStorage):
        self.storage = storage

    def _rel(self, trial_id: str) -> str:
        return RunLayout.ledger_entry(trial_id)

    def get(self, trial_id: str) -> dict[str, Any] | None:
        return self.storage.read_json(self._rel(trial_id))

    def all(self) -> dict[str, dict[str, Any]]:
        names = self.storage.list_names(RunLayout.LEDGER, ".json")
        records = (self.storage.read_json(RunLayout.ledger_entry(n.removesuffix(".json"))) for n in names)
        return {r["trial_id"]: r for r in records if r is not None}

    def put(self, record: dict[str, Any]) -> dict[str, Any]:
        self.storage.write_json(self._rel(record["trial_id"]), record)
        return record

    def update(self, trial_id: str, **fields: Any) -> dict[str, Any]:
        record = self.get(trial_id)
        if record is None:
            raise KeyError(f"ledger has no trial {trial_id}")
        record.update(fields)
        return self.put(record)

    def sync(self, specs: list[TrialSpec]) -> dict[str, dict[str, Any]]:
        """Records for every spec: new trials are added as pending, and trials left ``running`` by a controller
        that died are returned to pending (their attempt ends as ``interrupted``)."""
        records = self.all()
        for spec in specs:
            rec = records.get(spec.trial_id)
            if rec is None:
                records[spec.trial_id] = self.put(new_record(spec))
            elif rec["status"] == "running":
                records[spec.trial_id] = self.put(end_attempt(rec, "interrupted", "controller died while it ran"))
        return records


def start_attempt(
    record: dict[str, Any], node: str | None, pool: str | None = None, slot: int | None = None
) -> dict[str, Any]:
    """Open an attempt on ``node`` (and, with warm pools, in ``pool``: rlvr.sweep.pools; as a tenant, in its
    adapter ``slot``, None for a pool leased whole). Trials with the same pool whose attempts overlapped in time
    shared it (``shared_pools``)."""
    now = time.time()
    record.update(status="running", attempts=record["attempts"] + 1, node=node, pool=pool, slot=slot, error=None)
    record["started_at"] = record["started_at"] or now
    record["history"].append(
        {
            "attempt": record["attempts"],
            "node": node,
            "pool": pool,
            "slot": slot,
            "started_at": now,
            "start_step": record["step"],
            "outcome": None,
        }
    )
    return record


def end_attempt(
    record: dict[str, Any], outcome: Outcome, error: str | None = None, max_attempts: int | None = None
) -> dict[str, Any]:
    """Close the open attempt; the trial becomes done, failed (out of attempts) or pending again."""
    now = time.time()
    last = record["history"][-1] if record["history"] else None
    if last is not None and last["outcome"] is None:
        last.update(outcome=outcome, ended_at=now, error=error)
        record["duration_s"] = record["duration_s"] + now - last["started_at"]
    if outcome == "done":
        status: Status = "done"
    elif outcome == "failed" and max_attempts is not None and failures(record) >= max_attempts:
        status = "failed"
    else:
        status = "pending"
    record.update(status=status, error=error)
    if status in ("done", "failed"):
        record["finished_at"] = now
    return record


def placement(record: dict[str, Any]) -> str:
    """Where the latest attempt ran: its pool, and as a tenant its slot ("pool-2/1"); "" without a pool."""
    pool, slot = record.get("pool"), record.get("slot")
    if not pool:
        return ""
    return pool if slot is None else f"{pool}/{slot}"


def shared_pools(records: dict[str, dict[str, Any]]) -> list[tuple[str, list[str]]]:
    """(pool, trial ids) for each set of two or more trials whose attempts in one pool overlapped in time, that is
    which trials were tenants of one pool together, in order of their first start (an open attempt lasts until now)."""
    now = time.time()
    spans: dict[str, list[tuple[float, float, str]]] = {}
    for tid, rec in records.items():
        for a in rec.get("history", []):
            if a.get("pool"):
                spans.setdefault(a["pool"], []).append((a["started_at"], a.get("ended_at") or now, tid))
    found: list[tuple[float, str, list[str]]] = []
    for pool, attempts in spans.items():
        group: list[str] = []
        first = end = 0.0
        for start, stop, tid in sorted(attempts):
            if group and start >= end:  # every earlier attempt had ended: a new set of tenants
                found.append((first, pool, group))
                group = []
            if not group:
                first, end = start, stop
            group.append(tid)
            end = max(end, stop)
        found.append((first, pool, group))
    return [(pool, list(dict.fromkeys(ids))) for _, pool, ids in sorted(found) if len(set(ids)) > 1]
