"""DAPO's options at trial level: dynamic sampling keeps only groups with differing rewards; overlong filtering
and soft punishment run end to end; Dr.GRPO without std scaling."""

from __future__ import annotations

import pytest

from .trial_helpers import read_metrics, small_trial


@pytest.mark.slow
def test_async_rollout_overlaps_and_resumes_exactly(local_ray, tmp_path):
    """With async_rollout the batch of step t+1 is generated during step t's update by the previous policy; the
    prefetched batch is checkpointed, so a run preempted by SIGTERM and resumed equals an uninterrupted one."""
    import signal

    from rlvr.trial.runner import TrialPreempted, run_trial

    from .trial_helpers import max_weight_gap, read_trainable, sigterm_self, when_step

    whole, split = tmp_path / "whole", tmp_path / "split"
    cfg = small_trial("algorithm.async_rollout=true", "checkpoint.every_steps=3")
    run_trial(cfg, str(whole))
    outside = signal.signal(signal.SIGTERM, lambda *_: None)
    try:
        when_step(split, 1, sigterm_self)
        with pytest.raises(TrialPreempted):
            run_trial(cfg, str(split))
    finally:
        signal.signal(signal.SIGTERM, outside)
    assert read_metrics(split)[-1]["step"] < 4
    run_trial(cfg, str(split))
    compared = ("step", "reward_mean", "loss", "grad_norm", "policy_version")
    got, want = read_metrics(split), read_metrics(whole)
    assert [{k: m[k] for k in compared} for m in got] == [{k: m[k] for k in compared} for m in want]
    assert max_weight_gap(read_trainable(split, 4), read_trainable(whole, 4)) <= 1e-6
    assert all(m["probe_gap"] < 1e-3 for m in want)


@pytest.fixture(scope="module")
def warm_pool(local_ray):
    """One warm pool for the recipes: they differ in algorithm options only, which each lease sets
    (rlvr.pool.warm.pool_key), so the module starts the parts once; a leased trial gives a cold one's results
    (tests/pool/test_independence.py). Used after the cold trials above, so it never holds CPUs they need."""
    from rlvr.pool.warm import WarmPool

    pool = WarmPool("recipes")
    yield pool
    pool.close()


@pytest.mark.slow
@pytest.mark.parametrize(
    "overrides",
    [
        ("algorithm.dynamic_sampling=true", "algorithm.max_resample_rounds=2", "algorithm.overlong=filter"),
        ("algorithm.overlong=soft", "algorithm.overlong_buffer=4", "algorithm.loss=grpo"),
        (
            "algorithm.loss=dr_grpo",
            "algorithm.scale_rewards=false",
            "algorithm.ppo_epochs=2",
            "algorithm.mini_batches=2",
        ),
    ],
    ids=["dynamic-sampling+filter", "soft-overlong+grpo", "dr_grpo+2epochs"],
)
def test_recipe_runs_and_keeps_its_batch_shape(warm_pool, tmp_path, overrides):
    from rlvr.trial.runner import run_trial

    cfg = small_trial("steps=2", "checkpoint.every_steps=2", *overrides)
    final = run_trial(cfg, str(tmp_path), pool=warm_pool)
    assert final["steps_done"] == 2
    metrics = read_metrics(tmp_path)
    for m in metrics:
        assert 0 <= m["groups_kept"] <= cfg.algorithm.prompts_per_step
        # a partial batch is never silent: the step says how many prompts it lacks, the trial how many steps did
        assert m["batch_short"] == cfg.algorithm.prompts_per_step - m["groups_kept"]
        if cfg.algorithm.dynamic_sampling:
            assert m["resample_rounds"] <= cfg.algorithm.max_resample_rounds
        if m["groups_kept"]:
            assert m["probe_gap"] is not None and m["policy_version"] >= 1
    assert final["short_batches"] == sum(1 for m in metrics if m["batch_short"])
