"""The repository stays as ruff's settings in pyproject.toml say: lint-clean and formatted (CI runs this)."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("command", [["check"], ["format", "--check"]], ids=["lint", "format"])
def test_ruff_finds_nothing_to_change(command):
    out = subprocess.run(
        [sys.executable, "-m", "ruff", *command, "--no-cache", str(ROOT)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert out.returncode == 0, (
        f"ruff {' '.join(command)}: fix with `ruff check --fix . && ruff format .`\n{out.stdout[-3000:]}"
    )
