"""The evaluation seed is fixed per trial: the step-0 and the final evaluation draw alike, so a trial's difference
to the base is paired, and a method that did not move reads the same before and after."""

from __future__ import annotations

import pytest

from rlvr.config.schema import EvalConfig, TrialConfig
from rlvr.trial.controller import TrialController
from rlvr.trial.state import TrialState


class _Drawn(Exception):
    pass


def test_the_eval_seed_does_not_depend_on_the_step(monkeypatch):
    import rlvr.eval.runner as runner

    seeds = []

    def capture(*args):
        seeds.append(args[-1])
        raise _Drawn

    monkeypatch.setattr(runner, "evaluate", capture)
    controller = TrialController.__new__(TrialController)  # only the seed's derivation is exercised here
    controller.cfg = TrialConfig(seed=7, eval=EvalConfig(benchmarks=[{"name": "math500"}]))
    controller.engines = controller.tokenizer = controller.rewards = None
    for step in (0, 40):
        controller.state = TrialState(step=step)
        with pytest.raises(_Drawn):
            controller.evaluate()
    controller.cfg = TrialConfig(seed=8, eval=EvalConfig(benchmarks=[{"name": "math500"}]))
    with pytest.raises(_Drawn):
        controller.evaluate()
    assert seeds[0] == seeds[1] != seeds[2]
