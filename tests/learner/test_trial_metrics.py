from rlvr.trial.controller import LEARNER_METRICS

from .batches import fixed_batch
from .conftest import learner_of, trial_cfg


def test_every_learner_metric_the_trial_writes_is_one_the_learner_emits(tiny_path):
    # kl_coef > 0 and a TIS cap: every optional metric is on, so none may be missing by name
    cfg = trial_cfg(**{"learner.backend": "torch", "algorithm.kl_coef": 0.1, "algorithm.tis_cap": 2.0})
    learner = learner_of(cfg, tiny_path)
    metrics = learner.train_step(fixed_batch())
    assert set(LEARNER_METRICS) <= set(metrics), f"never emitted: {set(LEARNER_METRICS) - set(metrics)}"
    # the fixed batch's engine log-probs are a uniform sampler's, so the weights are far from 1 and capped
    assert 0 < metrics["tis_weight_mean"] <= 2.0
