"""The README as an executable contract: every command of its "Using it" block runs, in order, on the tiny base
and prints what its line promises.

Each command runs as written (``.venv/bin/rlvr`` becomes this interpreter's ``-m rlvr.cli``) in a fresh working
directory, so ``runs/demo-cpu`` is the run the README's own ``rlvr sweep demo-cpu`` line made there. The rule per
command is RUNS below: the arguments appended to keep it short (overrides and options come last on the command
line, so they win) and the text its output must contain. A command added to the README without an entry here
fails ``test_every_readme_command_has_a_rule``.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PREFIX = ".venv/bin/rlvr "

# Short runs of the two training commands: 2 steps, a checkpoint at step 2, a small evaluation.
SHORT = ["checkpoint.every_steps=2", "algorithm.prompts_per_step=4"]
SMALL_EVAL = "eval.benchmarks=[{name: 'synthetic:addition', k: 2, limit: 16}]"

# README command (as written, less its comment) -> (arguments appended, text the output must contain)
RUNS: dict[str, tuple[list[str], list[str]]] = {
    "--help": ([], ["doctor", "train", "sweep", "eval", "report", "analyze"]),
    # another change owns doctor's Ray report: versions are what is asserted here
    "doctor": ([], ["torch", "vllm", "peft"]),
    "methods --model r1-distill-qwen-1.5b --preset paper": ([], ["lora", "pissa", "native", "merged", "converted"]),
    "config show trial demo-cpu algorithm.lr=1e-3": ([], ["lr: 0.001", "name: demo-cpu"]),
    "train demo-cpu method=uniform/dora steps=20": (["steps=2", *SHORT, SMALL_EVAL], ['"steps_done": 2']),
    "plan paper-1.5b": ([], ["KV cache", "GPU-hours"]),
    "sweep demo-cpu --dry-run": ([], ["uniform/lora", "uniform/full", "bundles"]),
    "preflight demo-cpu": ([], ["preflight:", " 0 failed"]),
    # the full 14-trial sweep takes most of an hour: here its LoRA trial alone, 2 steps
    "sweep demo-cpu": (
        [
            "methods=[{from: uniform/lora, rank: 8, alpha: 16}]",
            "base.steps=2",
            *[f"base.{o}" for o in (*SHORT, SMALL_EVAL)],
        ],
        ["preflight:", "demo-cpu: 1 trials (1 done)", "report.html"],
    ),
    "study demo-cpu --dry-run": ([], ["180 trials", "time: ~"]),
    # the full study is ~180 trials: here LoRA at two lrs, one tuning seed and two confirmation seeds, 2 steps
    "study demo-cpu": (
        [
            "methods=[uniform/lora]",
            "lrs=[1.0e-3,1.0e-2]",
            "max_extensions=0",
            "tuning_seeds=[1]",
            "confirmation_seeds=[3,4]",
            "min_steps=2",
            "base.steps=2",
            "base.checkpoint.every_steps=2",
            "tuning_eval_limit=16",
            "max_concurrent=2",
        ],
        ["Answer: ", "report: runs/studies/demo-cpu/confirm/report/report.html"],
    ),
    "status runs/demo-cpu": ([], ["lora", "done"]),
    "report runs/demo-cpu": ([], ["report:", "report.html", "report.md"]),
    "analyze spectral runs/demo-cpu": ([], ["spectral:", "of 1 trials"]),
    "eval --model tiny --benchmarks synthetic:addition --prompt-template plain --limit 20 --k 4": (
        [],
        ["notice: max_new_tokens 31744 capped to", "synthetic:addition", "avg_at_k"],
    ),
    "model pretrain tiny": ([], ["heldout_accuracy", "weights_sha256"]),
    "model fetch paper-1.5b --dry-run": ([], ["deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B", "math500"]),
}


def readme_commands() -> list[str]:
    """The commands of the README's "Using it" code block, in order, without prefix and comment."""
    text = (REPO / "README.md").read_text()
    block = text.split("## Using it", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    lines = [line.split(" #", 1)[0].strip() for line in block.splitlines() if line.strip()]
    assert all(line.startswith(PREFIX) for line in lines), lines
    return [" ".join(line[len(PREFIX) :].split()) for line in lines]


def rlvr(cwd: Path, args: list[str], timeout: int = 900) -> tuple[int, str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        "RAY_AUTH_MODE": "disabled",
        "COLUMNS": "200",
    }
    out = subprocess.run(
        [sys.executable, "-m", "rlvr.cli", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    return out.returncode, out.stdout + out.stderr


def check(cwd: Path, command: str, extra: list[str], promised: list[str]) -> str | None:
    """None when ``command`` + ``extra`` exits 0 and prints every promised text, else what went wrong."""
    code, output = rlvr(cwd, shlex.split(command) + extra)
    missing = [p for p in promised if p not in output]
    if code == 0 and not missing:
        return None
    return f"rlvr {command} {shlex.join(extra)}: exit {code}, missing {missing}\n{output[-3000:]}"


def test_every_readme_command_has_a_rule():
    commands = readme_commands()
    assert sorted(set(commands) - set(RUNS)) == [], "README commands without an entry in RUNS"
    assert sorted(set(RUNS) - set(commands)) == [], "entries of RUNS no longer in the README"


@pytest.mark.slow
def test_readme_commands_run_as_written(tmp_path):
    failures = [f for command in readme_commands() if (f := check(tmp_path, command, *RUNS[command]))]
    # the README's prose: `rlvr eval --trial DIR` scores a checkpoint with its trial's own evaluation settings
    trials = sorted((tmp_path / "runs" / "demo-cpu" / "trials").glob("*"))
    if trials:
        failure = check(
            tmp_path,
            f"eval --trial {trials[0].relative_to(tmp_path)}",
            ["--limit", "4", "--k", "2"],
            ["synthetic:addition", "avg_at_k"],
        )
        failures += [failure] if failure else []
    else:
        failures.append("the sweep left no trial directory for `rlvr eval --trial`")
    assert not failures, "\n\n".join(failures)
