"""The `rlvr` command line as a user meets it: help lists every command; doctor reports the stack, and the Ray
cluster it would attach to (a live one, or the stale address a dead head left) whatever Ray state the machine
has: each doctor test names the address it sees."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

COMMANDS = (
    "doctor",
    "methods",
    "plan",
    "train",
    "sweep",
    "preflight",
    "status",
    "eval",
    "report",
    "model",
    "config",
    "analyze",
)


def rlvr(*args: str, timeout: int = 180, **env: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "COLUMNS": "200", **env}
    return subprocess.run(
        [sys.executable, "-m", "rlvr.cli", *args], capture_output=True, text=True, timeout=timeout, env=env
    )


def test_help_lists_every_subcommand():
    out = rlvr("--help")
    assert out.returncode == 0
    for name in COMMANDS:
        assert name in out.stdout, name


def test_doctor_reports_versions_vllm_device_and_ray(local_ray):
    out = rlvr("doctor", RAY_ADDRESS=local_ray.get_runtime_context().gcs_address)
    assert out.returncode == 0, out.stderr
    for item in ("torch", "transformers", "peft", "deepspeed", "math-verify", "vllm"):
        assert item in out.stdout, item
    assert "connected: 1 node(s)" in out.stdout
    assert "imports; device cpu" in out.stdout or "imports; device cuda" in out.stdout
    assert "cpu.lock" in out.stdout and "all match" in out.stdout  # the suite runs in the environment the lock made


def test_doctor_reports_a_dead_heads_address_in_seconds(tmp_path, monkeypatch):
    from rlvr.doctor import _ray_status

    with socket.create_server(("127.0.0.1", 0)) as server:  # a port that answered once and is closed now
        dead = f"127.0.0.1:{server.getsockname()[1]}"
    (tmp_path / "ray").mkdir()
    (tmp_path / "ray" / "ray_current_cluster").write_text(dead)  # what `ray start --head` leaves when the head dies
    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    started = time.monotonic()
    row = _ray_status()
    assert time.monotonic() - started < 10
    assert row.startswith(f"no running cluster (stale address {dead} from Ray's current-cluster file")
    assert "ray start --head" in row
    out = rlvr("doctor")  # its imports (vLLM) take most of its time
    assert out.returncode == 0, out.stderr
    assert f"no running cluster (stale address {dead}" in out.stdout


def test_doctor_names_every_package_that_differs_from_the_lock(tmp_path):
    import importlib.metadata as md

    from rlvr.doctor import lock_mismatches

    lock = tmp_path / "test.lock"
    lock.write_text(
        f"torch=={md.version('torch')} \\\n    --hash=sha256:00\n"
        "pydantic==0.0.1 \\\n    --hash=sha256:00\n"
        "not-a-real-package==1.0 ; python_version >= '3.11'\n"
    )
    count, bad = lock_mismatches(lock)
    assert count == 3
    assert bad == ["not-a-real-package: not installed, lock 1.0", f"pydantic: {md.version('pydantic')}, lock 0.0.1"]
    out = subprocess.run(
        [sys.executable, "-m", "rlvr.cli", "doctor", "--no-cluster"],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "RAY_AUTH_MODE": "disabled", "COLUMNS": "200", "RLVR_LOCK": str(lock)},
    )
    assert out.returncode == 1 and "2 differ" in out.stdout and "make setup" in out.stdout


def test_methods_table_for_the_tiny_model():
    out = rlvr("methods", "--model", "tiny", "--preset", "paper")
    assert out.returncode == 0, out.stderr
    for name in ("lora", "dora", "pissa", "vera", "ia3", "full"):
        assert name in out.stdout
    assert "native" in out.stdout and "merged" in out.stdout and "converted" in out.stdout


def test_expected_failures_end_in_one_paragraph_without_a_traceback(tmp_path):
    cases = [  # (arguments, exit code, the paragraph's first line)
        (["report", str(tmp_path / "not-a-run")], 1, "error: FileNotFoundError: "),
        (["analyze", "spectral", str(tmp_path)], 1, "error: FileNotFoundError: "),
        (["status", str(tmp_path)], 1, "error: FileNotFoundError: "),
        (["eval", "--trial", str(tmp_path)], 1, "error: FileNotFoundError: --trial"),
        (
            ["eval", "--benchmarks", "nope"],
            2,
            "error: UsageError: --benchmarks: 'nope' is not a shipped benchmark; allowed: aime24",
        ),
        (["eval", "--k", "0"], 2, "error: UsageError: --k: 0 is not allowed"),
        (["plan", "paper-1.5b", "resources.gpu_memory_gib=40"], 2, "error: ConfigError: "),
    ]
    for args, code, first in cases:
        out = rlvr(*args, timeout=120)
        assert out.returncode == code and out.stderr.startswith(first), (args, out.stderr)
        assert "Traceback" not in out.stdout + out.stderr and len(out.stderr.splitlines()) <= 4, (args, out.stderr)
