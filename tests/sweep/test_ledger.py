"""Ledger records, attempt accounting, the controller lease, results.parquet and the status table (no Ray)."""

import os
import socket
import subprocess
import sys
import time

import pytest
from rich.console import Console

from rlvr.config.grid import expand
from rlvr.config.layout import RunLayout
from rlvr.config.loader import dump
from rlvr.config.schema import SweepConfig
from rlvr.storage import RunStorage
from rlvr.sweep.lease import ControllerLease, LeaseHeld
from rlvr.sweep.ledger import Ledger, end_attempt, new_record, placement, shared_pools, start_attempt
from rlvr.sweep.progress import status_table
from rlvr.sweep.results import read_results, results_table, write_results


@pytest.fixture
def storage(tmp_path):
    return RunStorage(str(tmp_path / "run"))


def test_storage_replaces_json_whole_and_leaves_no_temp_files(storage):
    storage.write_json("ledger/a.json", {"x": 1})
    storage.write_json("ledger/a.json", {"x": 2})
    assert storage.read_json("ledger/a.json") == {"x": 2}
    assert os.listdir(storage.root + "/ledger") == ["a.json"]
    assert storage.read_json("ledger/missing.json") is None


def test_storage_accepts_pyarrow_uris(tmp_path):
    s = RunStorage(f"file://{tmp_path}/run")
    s.write_json("x.json", {"ok": True})
    assert RunStorage(str(tmp_path / "run")).read_json("x.json") == {"ok": True}


def test_only_failures_count_against_max_attempts(storage):
    ledger = Ledger(storage)
    [spec] = expand(SweepConfig())
    rec = ledger.sync([spec])[spec.trial_id]
    for outcome in ("stopped", "preempted", "interrupted", "failed"):
        rec = end_attempt(start_attempt(rec, "n1"), outcome, "why", max_attempts=2)
        assert rec["status"] == "pending"
    rec = end_attempt(start_attempt(rec, "n2"), "failed", "again", max_attempts=2)
    assert rec["status"] == "failed" and rec["attempts"] == 5 and rec["finished_at"] is not None
    assert [h["outcome"] for h in rec["history"]] == ["stopped", "preempted", "interrupted", "failed", "failed"]


def test_sync_adds_new_trials_and_returns_orphaned_running_ones_to_pending(storage):
    ledger = Ledger(storage)
    specs = expand(SweepConfig(seeds=[1, 2]))
    ledger.sync(specs[:1])
    ledger.put(start_attempt(ledger.get(specs[0].trial_id), "n1"))
    records = ledger.sync(specs)
    assert set(records) == {s.trial_id for s in specs}
    first = records[specs[0].trial_id]
    assert first["status"] == "pending" and first["history"][-1]["outcome"] == "interrupted"


def test_second_controller_is_refused_naming_the_holder(storage):
    first = ControllerLease(storage, settle_s=0)
    first.acquire()
    try:
        with pytest.raises(LeaseHeld, match=rf"host {socket.gethostname()}, pid {os.getpid()}.*--wait"):
            ControllerLease(storage, settle_s=0).acquire()
    finally:
        first.release()
    assert not storage.exists(RunLayout.LEASE)
    ControllerLease(storage, settle_s=0).acquire()


def test_lease_of_a_dead_process_or_without_heartbeat_is_stale(storage):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    mine = {"owner": "x", "host": socket.gethostname(), "pid": int(dead.stdout), "heartbeat": time.time()}
    storage.write_json(RunLayout.LEASE, mine)
    ControllerLease(storage, settle_s=0).acquire()
    storage.write_json(RunLayout.LEASE, {"owner": "y", "host": "elsewhere", "pid": 1, "heartbeat": time.time() - 10})
    ControllerLease(storage, ttl_s=5, settle_s=0).acquire()
    storage.write_json(RunLayout.LEASE, {"owner": "z", "host": "elsewhere", "pid": 1, "heartbeat": time.time() + 0.5})
    t = time.time()
    ControllerLease(storage, ttl_s=1, settle_s=0).acquire(wait=True, poll_s=0.2)
    assert time.time() - t >= 1.0


def test_results_have_one_row_per_trial_with_eval_columns_and_axes(storage):
    cfg = SweepConfig(grid={"algorithm.lr": [1e-5, 1e-6]})
    specs = expand(cfg)
    records = Ledger(storage).sync(specs)
    done = end_attempt(start_attempt(records[specs[0].trial_id], "n"), "done")
    done["final"] = {
        "final_reward": 0.5,
        "steps_done": 8,
        "trainable_params": 10,
        "trainable_pct": 0.1,
        "eval/aime24/avg_at_k": 0.2,
        "eval/aime24/pass_at_k": 0.5,
        "eval/aime24/k": 32,
        "eval/math500/avg_at_k": 0.4,
        "eval/math500/pass_at_k": 0.6,
        "eval/math500/k": 4,
    }
    records[specs[0].trial_id] = done
    write_results(storage, results_table(specs, records))
    rows = read_results(storage).to_pylist()
    assert [r["status"] for r in rows] == ["done", "pending"]
    assert rows[0]["eval/average/avg_at_k"] == pytest.approx(0.3)
    assert rows[0]["algorithm.lr"] == 1e-5 and rows[1]["algorithm.lr"] == 1e-6
    assert rows[0]["method"] == "lora" and rows[0]["seed"] == 42


def test_status_table_is_drawn_from_the_ledger_alone(storage):
    cfg = SweepConfig(seeds=[1, 2])
    specs = expand(cfg)
    Ledger(storage).sync(specs)
    storage.write_bytes(RunLayout.SWEEP, dump(cfg).encode())
    console = Console(record=True, width=200)
    status_table(storage.uri, console)
    text = console.export_text()
    assert specs[0].trial_id[:8] in text and "0/1024" in text and "pending 2" in text
    with pytest.raises(FileNotFoundError, match="no ledger"):
        status_table(storage.uri + "-nothing", console)


def _attempt(rec, pool, slot, start, end=None):
    rec = start_attempt(rec, "n1", pool, slot)
    rec["history"][-1]["started_at"] = start
    if end is not None:
        rec = end_attempt(rec, "done")
        rec["history"][-1]["ended_at"] = end
    return rec


def test_a_tenants_slot_is_recorded_beside_its_pool_and_shown_as_pool_slot():
    [spec] = expand(SweepConfig())
    rec = start_attempt(new_record(spec), "n1", "pool-2", 1)
    assert rec["pool"] == "pool-2" and rec["slot"] == 1 and rec["history"][-1]["slot"] == 1
    assert placement(rec) == "pool-2/1"
    assert placement(start_attempt(rec, "n1", "pool-3")) == "pool-3", "a pool leased whole has no slot"
    assert placement(start_attempt(rec, "n1")) == "" and new_record(spec)["slot"] is None


def test_trials_shared_a_pool_when_their_attempts_in_it_overlapped_in_time():
    specs = expand(SweepConfig(seeds=[1, 2, 3, 4, 5, 6]))
    a, b, c, d, e, f = (new_record(s) for s in specs)
    _attempt(a, "pool-1", 0, 100, 200)
    _attempt(b, "pool-1", 1, 101, 150)
    _attempt(c, "pool-1", 0, 200, 300)  # after both ended: the pool's next lease, not a tenant beside them
    _attempt(d, "pool-2", None, 100, 400)  # alone in its pool
    _attempt(e, "pool-3", 0, 500)  # still running
    _attempt(f, "pool-1", 2, 120, 130)  # f's first attempt, beside a and b
    _attempt(f, "pool-3", 1, 600)
    records = {r["trial_id"]: r for r in (a, b, c, d, e, f)}
    assert shared_pools(records) == [
        ("pool-1", [a["trial_id"], b["trial_id"], f["trial_id"]]),
        ("pool-3", [e["trial_id"], f["trial_id"]]),
    ]
