"""The `rlvr` command line as a user meets it: help lists every command; doctor reports the stack."""

from __future__ import annotations

import os
import subprocess
import sys

COMMANDS = ("doctor", "methods", "plan", "train", "sweep", "status", "eval", "report", "model", "config", "analyze")


def rlvr(*args: str, timeout: int = 180) -> subprocess.CompletedProcess:
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "rlvr.cli", *args], capture_output=True, text=True, timeout=timeout, env=env)


def test_help_lists_every_subcommand():
    out = rlvr("--help")
    assert out.returncode == 0
    for name in COMMANDS:
        assert name in out.stdout, name


def test_doctor_reports_versions_vllm_device_and_ray():
    out = rlvr("doctor")
    assert out.returncode == 0, out.stderr
    for item in ("torch", "transformers", "peft", "deepspeed", "math-verify", "vllm", "ray cluster"):
        assert item in out.stdout, item
    assert "imports; device cpu" in out.stdout or "imports; device cuda" in out.stdout


def test_methods_table_for_the_tiny_model():
    out = rlvr("methods", "--model", "tiny", "--preset", "paper")
    assert out.returncode == 0, out.stderr
    for name in ("lora", "dora", "pissa", "vera", "ia3", "full"):
        assert name in out.stdout
    assert "native" in out.stdout and "merged" in out.stdout and "converted" in out.stdout
