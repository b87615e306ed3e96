"""The README as an executable contract: every command of its "Using it" block runs, in order, on the tiny base
and prints what its line promises.

Each command runs as written (``.venv/bin/rlvr`` becomes this interpreter's ``-m rlvr.cli``) in a fresh working
directory, so ``runs/demo-cpu`` is the run the README's own ``rlvr sweep demo-cpu`` line made there. The rule per
command is RUNS below: the arguments appended to keep it short (overrides and options come last on the command
line, so they win) and the text its output must contain. A command added to the README without an entry here
fails ``test_every_readme_command_has_a_rule``. The commands run once (``readme_run``); the study's line, which
promises that a re-run resumes, is checked in depth by its own test on that run.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
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


def check(cwd: Path, command: str, extra: list[str], promised: list[str]) -> tuple[str | None, str]:
    """(None when ``command`` + ``extra`` exits 0 and prints every promised text, else what went wrong; its output)"""
    code, output = rlvr(cwd, shlex.split(command) + extra)
    missing = [p for p in promised if p not in output]
    if code == 0 and not missing:
        return None, output
    return f"rlvr {command} {shlex.join(extra)}: exit {code}, missing {missing}\n{output[-3000:]}", output


def test_every_readme_command_has_a_rule():
    commands = readme_commands()
    assert sorted(set(commands) - set(RUNS)) == [], "README commands without an entry in RUNS"
    assert sorted(set(RUNS) - set(commands)) == [], "entries of RUNS no longer in the README"


@pytest.fixture(scope="module")
def readme_run(tmp_path_factory) -> tuple[Path, dict[str, tuple[str | None, str]]]:
    """Every README command run once, in order, in one working directory: (it, command -> check's result)."""
    cwd = tmp_path_factory.mktemp("readme")
    return cwd, {command: check(cwd, command, *RUNS[command]) for command in readme_commands()}


@pytest.mark.slow
def test_readme_commands_run_as_written(readme_run):
    cwd, results = readme_run
    failures = [failure for failure, _ in results.values() if failure]
    # the README's prose: `rlvr eval --trial DIR` scores a checkpoint with its trial's own evaluation settings
    trials = sorted((cwd / "runs" / "demo-cpu" / "trials").glob("*"))
    if trials:
        failure, _ = check(
            cwd,
            f"eval --trial {trials[0].relative_to(cwd)}",
            ["--limit", "4", "--k", "2"],
            ["synthetic:addition", "avg_at_k"],
        )
        failures += [failure] if failure else []
    else:
        failures.append("the sweep left no trial directory for `rlvr eval --trial`")
    assert not failures, "\n\n".join(failures)


@pytest.mark.slow
def test_the_readme_study_tunes_confirms_answers_and_a_rerun_resumes(readme_run):
    """`rlvr study demo-cpu` as the README runs it (LoRA at two lrs, one tuning and two confirmation seeds, 2
    steps: 4 trials): the budget before any trial, the answer after the last, the stages' records, the
    confirmation evaluating the whole held-out set; then, as the README promises, the same command resumes."""
    cwd, results = readme_run
    failure, out = results["study demo-cpu"]
    assert failure is None, failure
    assert out.index("= 4 trials") < out.index("demo-cpu/tune-0") < out.index("demo-cpu/confirm") < out.index("Answer")
    study = cwd / "runs" / "studies" / "demo-cpu"
    record = json.loads((study / "study.json").read_text())
    assert set(record["chosen"]) == {"lora r16"} and record["chosen"]["lora r16"] in (1e-3, 1e-2)
    assert [s["name"] for s in record["stages"]] == ["demo-cpu/tune-0", "demo-cpu/confirm"]
    confirm = study / "confirm"
    ledger = [json.loads(p.read_text()) for p in (confirm / "ledger").glob("*.json")]
    assert len(ledger) == 2 and {e["status"] for e in ledger} == {"done"}
    report = (confirm / "report" / "report.md").read_text()
    assert report.index("## Answer") < report.index("## Overview") and "lr" in report
    # the confirmation trials evaluated the whole held-out set (128 problems), the tuning ones 16
    for stage, problems in (("confirm", 128), ("tune-0", 16)):
        samples = next((study / stage).glob("trials/*/eval/step_000002/samples.parquet"))
        assert len(set(pq.read_table(samples).column("problem_id").to_pylist())) == problems

    again, out = check(cwd, "study demo-cpu", *RUNS["study demo-cpu"])
    assert again is None and "Answer" in out, again
    assert [json.loads(p.read_text())["attempts"] for p in (confirm / "ledger").glob("*.json")] == [1, 1]
