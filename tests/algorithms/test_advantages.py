import numpy as np
import pytest

from rlvr.algorithms.advantages import (
    dynamic_sampling_keep,
    group_advantages,
    shape_and_normalise,
    soft_overlong_penalty,
)
from rlvr.config.schema import AlgorithmConfig


def test_group_advantages_normalise_each_group_by_its_own_mean_and_std():
    adv = group_advantages([1, 0, 0, 0, 1, 1, 1, 1], group_size=4, scale=True, eps=1e-4)
    # group 1: mean 0.25, unbiased std sqrt(0.25) (TRL's nanstd); group 2: all equal -> zeros
    std = np.sqrt(0.25)
    np.testing.assert_allclose(adv[:4], [0.75 / (std + 1e-4)] + [-0.25 / (std + 1e-4)] * 3)
    np.testing.assert_allclose(adv[4:], 0.0)


def test_default_group_std_is_the_studys_unbiased_one_and_ddof_0_is_the_named_alternative():
    rewards = [1, 1, 1, 0, 0, 0, 0, 0]  # G = 8
    algo = AlgorithmConfig()
    assert algo.std_ddof == 1
    unbiased, _ = shape_and_normalise(algo, rewards, [4] * 8, [False] * 8, max_new_tokens=16)
    population, _ = shape_and_normalise(AlgorithmConfig(std_ddof=0), rewards, [4] * 8, [False] * 8, max_new_tokens=16)
    # TRL divides by the Bessel-corrected std: advantages are sqrt(7/8) of the population-std ones
    np.testing.assert_allclose(unbiased / population, np.sqrt(7 / 8), rtol=1e-3)
    r = np.asarray(rewards, float)
    np.testing.assert_allclose(unbiased, (r - r.mean()) / (r.std(ddof=1) + 1e-4))


def test_dr_grpo_advantages_are_only_centred():
    np.testing.assert_allclose(group_advantages([2, 0, 1, 1], group_size=2, scale=False), [1, -1, 0, 0])


def test_rewards_that_do_not_fill_whole_groups_are_rejected():
    with pytest.raises(ValueError, match="group_size=4"):
        group_advantages([1, 0, 1], group_size=4)


def test_dynamic_sampling_keeps_only_groups_with_different_rewards():
    keep = dynamic_sampling_keep([1, 1, 0, 0, 0, 1, 1, 1], group_size=2)
    assert keep.tolist() == [False, False, True, False]


def test_soft_overlong_penalty_ramps_linearly_over_the_buffer():
    # limit 10, buffer 4: free up to 6 tokens, then -0.25 per token, -1 at the limit
    pen = soft_overlong_penalty([5, 6, 7, 8, 10], max_new_tokens=10, buffer=4, penalty=1.0)
    np.testing.assert_allclose(pen, [0, 0, -0.25, -0.5, -1.0])
    np.testing.assert_allclose(soft_overlong_penalty([9, 10], 10, 0, 0.5), [0, -0.5])


def test_soft_shaping_changes_rewards_before_normalising():
    algo = AlgorithmConfig(group_size=2, overlong="soft", overlong_buffer=4, overlong_penalty=1.0, scale_rewards=False)
    adv, in_loss = shape_and_normalise(algo, [1, 1], [2, 8], [False, False], max_new_tokens=10)
    # shaped rewards 1 and 0.5 -> centred +-0.25
    np.testing.assert_allclose(adv, [0.25, -0.25])
    assert in_loss.all()


def test_filter_shaping_masks_truncated_completions_and_keeps_their_rewards():
    algo = AlgorithmConfig(group_size=2, overlong="filter", scale_rewards=False)
    adv, in_loss = shape_and_normalise(algo, [1, 0], [3, 10], [False, True], max_new_tokens=10)
    np.testing.assert_allclose(adv, [0.5, -0.5])
    assert in_loss.tolist() == [True, False]
