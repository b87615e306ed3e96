"""RL works: GRPO with LoRA raises the reward of the pretrained tiny base within a dozen steps."""

from __future__ import annotations

import numpy as np
import pytest

from rlvr.trial.runner import run_trial
from trial_helpers import read_metrics, small_trial

pytestmark = pytest.mark.slow


def test_grpo_lora_raises_mean_reward(local_ray, tmp_path):
    # Sampled at temperature 1 the base is right ~30% of the time: room to improve within a dozen steps.
    cfg = small_trial(
        "steps=12", "algorithm.loss=grpo", "algorithm.lr=3e-3", "algorithm.prompts_per_step=8", "algorithm.group_size=8",
        "checkpoint.every_steps=12", "learner.micro_batch_size=64",
    )
    run_trial(cfg, str(tmp_path))
    rewards = [m["reward_mean"] for m in read_metrics(tmp_path)]
    first, last = np.mean(rewards[:3]), np.mean(rewards[-3:])
    assert last > first + 0.15, f"reward did not rise: {[round(r, 3) for r in rewards]}"
