"""A warm pool's learner: ``reset`` to another trial gives exactly the learner a cold start for that trial gives
(same adapter draw, optimizer, schedule and dropout stream), under torch and DeepSpeed, whatever the previous
lease trained; a reset refuses a trial whose learner section would need another process."""

from __future__ import annotations

import pytest

from rlvr.learner.learner import Learner
from rlvr.learner.spec import LearnerSpec

from .batches import fixed_batch
from .conftest import trial_cfg


def _run(learner: Learner, steps: int = 2) -> tuple[list[dict], dict]:
    metrics = [learner.train_step(fixed_batch(seed=i)) for i in range(steps)]
    return metrics, {k: v.detach().clone() for k, v in learner.policy.trainable_state_dict().items()}


@pytest.mark.parametrize("backend", ["torch", "deepspeed"])
def test_a_reset_learner_trains_exactly_like_a_cold_one(tiny_path, backend):
    common = {"learner.backend": backend, "learner.zero_stage": 2, "method.dropout": 0.1}
    before = trial_cfg(**common, **{"method.name": "dora", "seed": 7})
    target = trial_cfg(**common, **{"algorithm.lr_schedule": "cosine", "seed": 3})
    warm = Learner(LearnerSpec.from_trial(before), tiny_path, keep_base=True)
    _run(warm)  # the previous lease: another method and seed, trained
    warm.reset(LearnerSpec.from_trial(target))
    got_metrics, got_weights = _run(warm)
    want_metrics, want_weights = _run(Learner(LearnerSpec.from_trial(target), tiny_path))
    assert got_metrics == want_metrics
    assert got_weights.keys() == want_weights.keys()
    assert all(got_weights[k].equal(want_weights[k]) for k in got_weights)


def test_a_reset_refuses_another_learner_section(tiny_path):
    warm = Learner(LearnerSpec.from_trial(trial_cfg()), tiny_path, keep_base=True)
    with pytest.raises(ValueError, match="learner differs from the pool's"):
        warm.reset(LearnerSpec.from_trial(trial_cfg(**{"learner.micro_batch_size": 2})))
