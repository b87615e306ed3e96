"""DAPO's options at trial level: dynamic sampling keeps only groups with differing rewards; overlong filtering
and soft punishment run end to end; Dr.GRPO without std scaling."""

from __future__ import annotations

import pytest

from trial_helpers import read_metrics, small_trial


@pytest.mark.slow
@pytest.mark.parametrize(
    "overrides",
    [
        ("algorithm.dynamic_sampling=true", "algorithm.max_resample_rounds=2", "algorithm.overlong=filter"),
        ("algorithm.overlong=soft", "algorithm.overlong_buffer=4", "algorithm.loss=grpo"),
        ("algorithm.loss=dr_grpo", "algorithm.scale_rewards=false", "algorithm.ppo_epochs=2", "algorithm.mini_batches=2"),
    ],
    ids=["dynamic-sampling+filter", "soft-overlong+grpo", "dr_grpo+2epochs"],
)
def test_recipe_runs_and_keeps_its_batch_shape(local_ray, tmp_path, overrides):
    from rlvr.trial.runner import run_trial

    cfg = small_trial("steps=2", "checkpoint.every_steps=2", *overrides)
    final = run_trial(cfg, str(tmp_path))
    assert final["steps_done"] == 2
    for m in read_metrics(tmp_path):
        assert 0 <= m["groups_kept"] <= cfg.algorithm.prompts_per_step
        if cfg.algorithm.dynamic_sampling:
            assert m["resample_rounds"] <= cfg.algorithm.max_resample_rounds
        if m["groups_kept"]:
            assert m["probe_gap"] is not None and m["policy_version"] >= 1
