"""RL works: GRPO with LoRA raises the reward of the pretrained tiny base within fifteen steps."""

from __future__ import annotations

import numpy as np
import pytest

from rlvr.trial.runner import run_trial
from trial_helpers import read_metrics, small_trial

pytestmark = pytest.mark.slow


def test_grpo_lora_raises_mean_reward(local_ray, tmp_path):
    # Sampled at temperature 1 the base is right ~25% of the time. Measured with these settings (seeds 42 and 7,
    # 12 steps): the mean reward of the last 3 steps beats the first 3 by 0.10-0.11; 16 x 8 samples a step keep
    # the step-to-step noise (sd ~0.04) well below that. Higher lr (5e-3 and up) or 8 x 8 batches did not rise.
    cfg = small_trial(
        "steps=15", "algorithm.loss=grpo", "algorithm.lr=2e-3", "algorithm.prompts_per_step=16",
        "algorithm.group_size=8", "rollout.max_new_tokens=16", "checkpoint.every_steps=15", "learner.micro_batch_size=64",
    )
    run_trial(cfg, str(tmp_path))
    rewards = [m["reward_mean"] for m in read_metrics(tmp_path)]
    first, last = np.mean(rewards[:3]), np.mean(rewards[-3:])
    assert last > first + 0.05, f"reward did not rise: {[round(r, 3) for r in rewards]}"
