"""Small trial configs and readers of a trial directory, shared by the trial tests."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import psutil

from rlvr.config.layout import TrialLayout
from rlvr.config.loader import load_trial
from rlvr.config.methods import method_spec
from rlvr.config.schema import TrialConfig

# demo-cpu on the pretrained tiny base (configs/models/tiny.yaml, cached under ~/.cache/rlvr), cut to a few
# seconds a step: no evaluation, 4 prompts x 4 samples, answers fit in 12 tokens ("\boxed{123}" + EOS).
# The shipped base is right on 43% of held-out problems greedily and ~17% of samples at temperature 1 (the demo's
# first-step reward), so groups have mixed rewards and every step changes the weights.
STEPS = 4
SMALL = [
    f"steps={STEPS}",
    "eval.benchmarks=[]",
    "algorithm.prompts_per_step=4",
    "algorithm.group_size=4",
    "rollout.max_new_tokens=12",
    "method.rank=8",
    "method.alpha=16",
    "data.num_synthetic=2000",
    "learner.micro_batch_size=16",
    "checkpoint.every_steps=2",
    "checkpoint.keep_last=10",
]


COMPARED = ("step", "reward_mean", "accuracy", "loss", "grad_norm", "response_len", "policy_version")


def small_trial(*overrides: str) -> TrialConfig:
    """The demo-cpu trial made small; later overrides win."""
    return load_trial("demo-cpu", [*SMALL, *overrides])


# One method per sync route and full fine-tuning, run cold once per session as two_step_trial (tests/conftest.py,
# cold_run): the pool tests compare warm leases with these runs, the methods test checks them as its trials.
COLD_METHODS = ("lora", "pissa", "dora", "full")


def two_step_trial(method: str, *more: str) -> TrialConfig:
    """The small trial of ``method`` on the demo's method fields, two steps, one checkpoint (step 2); a method
    without a rank gets none."""
    no_rank = () if method_spec(method).has_rank else ("method.rank=null", "method.alpha=null")
    return small_trial(f"method.name={method}", "steps=2", "checkpoint.every_steps=2", *no_rank, *more)


def assert_same_run(trial_dir: str | Path, reference: str | Path) -> None:
    """Same per-step metrics, no step lost or repeated, and the same final trainable weights (within 1e-6)."""
    got, want = read_metrics(trial_dir), read_metrics(reference)
    assert [m["step"] for m in got] == list(range(1, STEPS + 1))
    assert [{k: m.get(k) for k in COMPARED} for m in got] == [{k: m.get(k) for k in COMPARED} for m in want]
    assert max_weight_gap(read_trainable(trial_dir, STEPS), read_trainable(reference, STEPS)) <= 1e-6


def read_metrics(trial_dir: str | Path) -> list[dict]:
    return [json.loads(line) for line in (Path(trial_dir) / TrialLayout.METRICS).read_text().splitlines()]


def read_trainable(trial_dir: str | Path, step: int) -> dict:
    from safetensors.torch import load_file

    return load_file(str(Path(trial_dir) / TrialLayout.checkpoint(step, TrialLayout.TRAINABLE)))


def max_weight_gap(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in a)


def progress_step(trial_dir: str | Path) -> int:
    try:
        return json.loads((Path(trial_dir) / "progress.json").read_text())["step"]
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        return -1  # not written yet, or caught mid-write


def when_step(trial_dir: str | Path, step: int, action, timeout_s: float = 600) -> threading.Thread:
    """Run ``action()`` in a background thread once the trial's progress.json reaches ``step``."""

    def watch():
        deadline = time.monotonic() + timeout_s
        while progress_step(trial_dir) < step:
            if time.monotonic() > deadline:
                return
            time.sleep(0.05)
        action()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def sigterm_self() -> None:
    os.kill(os.getpid(), signal.SIGTERM)


def actor_pids(class_name: str) -> list[int]:
    """Pids of this test process's own Ray workers hosting ``class_name`` actors (Ray titles them ray::Class)."""
    title = f"ray::{class_name}"
    pids = []
    for proc in psutil.Process().children(recursive=True):
        try:
            cmd = proc.cmdline()
        except psutil.Error:
            continue
        if cmd and (cmd[0] == title or cmd[0].startswith(title + ".")):
            pids.append(proc.pid)
    return pids
