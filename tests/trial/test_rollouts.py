"""How one update's batch is assembled: dynamic-sampling refill and trim, overlong shaping, and a prefetched
batch that survives a checkpoint. Pure functions over real Completions and RewardResults, no engines."""

from __future__ import annotations

import numpy as np
import pytest

from rlvr.config.schema import AlgorithmConfig, CheckpointConfig
from rlvr.rewards.pool import RewardResult
from rlvr.rollout.types import Completion
from rlvr.storage import RunStorage
from rlvr.trial.checkpoint import Checkpointer
from rlvr.trial.rollouts import Rollout, assemble

G = 2  # completions per prompt


def _round(rewards_per_group: list[list[float]], first_prompt: int, lengths: list[int] | None = None) -> Rollout:
    """A generated and scored round: prompt p is [p]; a completion's tokens say which prompt it answers."""
    prompts, groups, results = [], [], []
    for i, rewards in enumerate(rewards_per_group):
        p = first_prompt + i
        prompts.append([p])
        group = []
        for j, r in enumerate(rewards):
            n = lengths[i * G + j] if lengths else 1
            # engine-local prompt_index (an engine saw this prompt at position i of its own part)
            group.append(Completion(i % 2, [100 + p] * n, [-0.5] * n, str(p), "length" if n >= 4 else "stop"))
            results.append(RewardResult(r, r > 0, str(p)))
        groups.append(group)
    return Rollout(prompts, groups, results)


def _drawer(rounds: list[Rollout]):
    drawn = []

    def draw(round_: int) -> Rollout:
        drawn.append(round_)
        return rounds[round_]

    return draw, drawn


def test_without_dynamic_sampling_the_first_round_is_the_batch():
    algo = AlgorithmConfig(group_size=G, prompts_per_step=3)
    draw, drawn = _drawer([_round([[1, 1], [0, 1], [0, 0]], 0)])
    batch = assemble(draw, algo, num_learners=1)
    assert drawn == [0] and batch.prompts == [[0], [1], [2]] and batch.rounds == 0
    assert len(batch.results) == 3 * G


def test_dynamic_sampling_drops_uniform_groups_and_refills_from_the_next_round():
    algo = AlgorithmConfig(group_size=G, prompts_per_step=3, dynamic_sampling=True, max_resample_rounds=4)
    rounds = [_round([[1, 1], [0, 1], [0, 0]], 0), _round([[0, 0], [1, 0], [0, 1]], 10), _round([[0, 1]] * 3, 20)]
    draw, drawn = _drawer(rounds)
    batch = assemble(draw, algo, num_learners=1)
    assert drawn == [0, 1], "two rounds fill three mixed groups"
    # prompts 0, 2 (all 1, all 0) and 10 (all 0) were uniform: dropped; the batch is cut to prompts_per_step
    assert batch.prompts == [[1], [11], [12]] and batch.rounds == 1
    assert [len(g) for g in batch.groups] == [G] * 3 and len(batch.results) == 3 * G
    for prompt, group, i in zip(batch.prompts, batch.groups, range(3)):
        assert all(c.text == str(prompt[0]) for c in group)
        rewards = [r.reward for r in batch.results[i * G : (i + 1) * G]]
        assert max(rewards) > min(rewards) and all(
            r.extracted == str(prompt[0]) for r in batch.results[i * G : (i + 1) * G]
        )


def test_a_batch_still_short_after_the_last_round_is_cut_to_what_splits_over_the_learners():
    algo = AlgorithmConfig(
        group_size=G, prompts_per_step=4, dynamic_sampling=True, max_resample_rounds=1, mini_batches=2
    )
    rounds = [_round([[0, 1], [1, 1], [0, 0], [1, 0]], 0), _round([[0, 1], [0, 0], [0, 0], [0, 0]], 10)]
    draw, drawn = _drawer(rounds)
    batch = assemble(draw, algo, num_learners=2)
    # three mixed groups (0, 3, 10) = 6 completions do not split into 2 mini-batches x 2 learners: keep 2 groups
    assert drawn == [0, 1] and batch.rounds == 1
    assert batch.prompts == [[0], [3]] and len(batch.results) == 2 * G


def test_learner_batch_pairs_each_completion_with_its_groups_prompt():
    batch = _round([[1, 0], [0, 1], [1, 0]], 5)
    out = batch.learner_batch(AlgorithmConfig(group_size=G, overlong="none"), max_new_tokens=4)
    assert out.prompt_ids == [[5], [5], [6], [6], [7], [7]]
    assert [ids[0] - 100 for ids in out.completion_ids] == [5, 5, 6, 6, 7, 7]
    assert np.allclose(out.advantages, [0.7071, -0.7071, -0.7071, 0.7071, 0.7071, -0.7071], atol=1e-3)


def test_overlong_filter_takes_truncated_completions_out_of_the_loss_and_soft_lowers_their_advantage():
    lengths = [4, 1, 2, 2]  # the first completion hit max_new_tokens
    batch = _round([[1, 1], [1, 1]], 0, lengths)
    filtered = batch.learner_batch(AlgorithmConfig(group_size=G, overlong="filter"), max_new_tokens=4)
    assert filtered.in_loss == [False, True, True, True]
    soft = batch.learner_batch(AlgorithmConfig(group_size=G, overlong="soft", overlong_buffer=2), max_new_tokens=4)
    assert all(soft.in_loss)
    assert soft.advantages[0] < 0 < soft.advantages[1], "the truncated one of two equally rewarded answers loses"
    assert soft.advantages[2] == soft.advantages[3] == 0.0


def test_a_prefetched_rollout_round_trips_through_the_weights_only_checkpoint(tmp_path):
    import torch

    batch = _round([[1, 0], [0, 1]], 3)
    ckpts = Checkpointer(RunStorage(str(tmp_path)), CheckpointConfig(every_steps=1))
    w = torch.zeros(2)
    learner = {
        "world_size": 1,
        "ranks": [
            {
                "trainable": {"w": w},
                "optimizer": {},
                "scheduler": {},
                "step": 1,
                "optimizer_steps": 1,
                "rng": torch.get_rng_state(),
                "cuda_rng": None,
            }
        ],
    }
    ckpts.save(1, learner, {"step": 1, "prefetched": batch})
    got = ckpts.load(1).controller["prefetched"]
    assert isinstance(got, Rollout) and got == batch


@pytest.mark.parametrize("group_size", [2, 4])
def test_take_keeps_each_groups_rewards(group_size):
    rewards = [[float(i)] * group_size for i in range(3)]
    batch = Rollout(
        [[i] for i in range(3)],
        [[Completion(0, [1], [0.0], "", "stop")] * group_size] * 3,
        [RewardResult(r, False, None) for rs in rewards for r in rs],
    )
    kept = batch.take([2, 0], group_size)
    assert kept.prompts == [[2], [0]] and [r.reward for r in kept.results] == [2.0] * group_size + [0.0] * group_size


def test_a_rollout_needs_one_group_per_prompt_and_one_reward_per_completion():
    group = [Completion(0, [1], [0.0], "", "stop")] * G
    with pytest.raises(ValueError, match="2 prompts, 1 groups"):
        Rollout([[1], [2]], [group], [RewardResult(0.0, False, None)] * G)
    with pytest.raises(ValueError, match="1 rewards for 2 completions"):
        Rollout([[1]], [group], [RewardResult(0.0, False, None)])
