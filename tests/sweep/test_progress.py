"""The progress view at 80 columns: the method label first and whole, short ids, sweep ETA, errors under the table."""

import os
import subprocess
import sys

from rich.console import Console

from rlvr.config.grid import expand
from rlvr.config.layout import RunLayout
from rlvr.config.loader import dump, load_sweep
from rlvr.storage import RunStorage
from rlvr.sweep.ledger import Ledger, end_attempt, new_record, start_attempt
from rlvr.sweep.progress import short_labels, sweep_eta, view

ERROR = "StaleEngineError: policy v3: engine log-probs differ from the learner's by up to 0.07 (probe token 2)"


def _demo_records(pool: str | None = None, tenants: bool = False):
    specs = expand(load_sweep("demo-cpu", []))
    records = {s.trial_id: new_record(s) for s in specs}
    ids = list(records)
    for slot, tid in enumerate(ids[:2]):
        rec = start_attempt(records[tid], "node-1", pool, slot if tenants else None)
        rec["history"][-1]["started_at"] -= 40
        rec.update(step=30, reward=0.6)
        end_attempt(rec, "done")
    rec = start_attempt(records[ids[2]], "node-1")
    rec["history"][-1]["started_at"] -= 20
    rec.update(step=15, reward=0.5)
    end_attempt(start_attempt(records[ids[3]], "node-1"), "failed", ERROR, max_attempts=1)
    return specs, records


def test_labels_keep_what_tells_trials_apart():
    assert short_labels(["tiny/uniform/lora/seed42", "tiny/uniform/dora/seed42"]) == ["lora", "dora"]
    assert short_labels(["tiny/uniform/lora/seed1", "tiny/uniform/lora/seed2"]) == ["lora/seed1", "lora/seed2"]
    assert short_labels(["m/p/lora/seed1/lr=1e-5", "m/p/lora/seed1/lr=1e-6"]) == ["lora/lr=1e-5", "lora/lr=1e-6"]


def test_the_demo_sweep_reads_at_80_columns():
    specs, records = _demo_records()
    console = Console(width=80, record=True)
    console.print(view(records, {s.trial_id: 30 for s in specs}, "runs/demo-cpu"))
    lines = console.export_text().splitlines()
    assert max(len(line) for line in lines) <= 80
    assert "…" not in "\n".join(lines), "nothing truncated"
    for name in ("lora", "dora", "pissa", "lora_rank1", "ln_tuning", "full"):
        assert any(line.startswith(f"│ {name} ") for line in lines), name
    header = next(line for line in lines if "trial" in line)
    assert header.split("┃")[1].strip() == "trial" and header.split("┃")[2].strip() == "id"
    assert any("30/30" in line and "0.600" in line for line in lines)
    assert any("sweep ETA 00:" in line for line in lines), "the sweep's ETA once a trial finished"
    text = " ".join(lines)
    assert "StaleEngineError: policy v3" in text and "(probe token 2)" in text, "the error, whole, under the table"


def test_each_trials_warm_pool_is_shown_at_80_columns():
    specs, records = _demo_records(pool="pool-12")
    console = Console(width=80, record=True)
    console.print(view(records, {s.trial_id: 30 for s in specs}, "runs/demo-cpu"))
    lines = console.export_text().splitlines()
    assert max(len(line) for line in lines) <= 80
    header = next(line for line in lines if "trial" in line)
    assert "pool" in header.split("┃")[-2]
    assert sum("pool-12" in line for line in lines) == 2, "the two trials that ran in it"


def test_each_tenants_pool_and_slot_are_shown_at_80_columns():
    specs, records = _demo_records(pool="pool-12", tenants=True)
    console = Console(width=80, record=True)
    console.print(view(records, {s.trial_id: 30 for s in specs}, "runs/demo-cpu"))
    lines = console.export_text().splitlines()
    assert max(len(line) for line in lines) <= 80
    assert sum("pool-12/0" in line for line in lines) == 1 and sum("pool-12/1" in line for line in lines) == 1


def test_sweep_eta_counts_running_and_pending_trials():
    specs, records = _demo_records()
    running = next(r for r in records.values() if r["status"] == "running")
    left = sweep_eta(records, {s.trial_id: 30 for s in specs}, now=running["history"][-1]["started_at"] + 40)
    # ten pending trials at the 40 s the finished ones took, plus the running one's 15 steps left at 15 steps / 40 s
    assert abs(left - (10 * 40 + 40)) < 1


def test_rlvr_status_at_80_columns(tmp_path):
    specs, records = _demo_records()
    storage = RunStorage(str(tmp_path / "demo-cpu"))
    for rec in records.values():
        Ledger(storage).put(rec)
    storage.write_bytes(RunLayout.SWEEP, dump(load_sweep("demo-cpu", [])).encode())
    env = {**os.environ, "COLUMNS": "80", "RAY_AUTH_MODE": "disabled"}
    out = subprocess.run(
        [sys.executable, "-m", "rlvr.cli", "status", storage.uri], capture_output=True, text=True, env=env, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert max(len(line) for line in out.stdout.splitlines()) <= 80
    assert "│ lora_plus " in out.stdout and "0/30" in out.stdout and "failed 1" in out.stdout
