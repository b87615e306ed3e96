import pytest
import torch

from rlvr.learner.batch import RolloutBatch, collate
from rlvr.rollout.types import Completion


def _batch():
    return RolloutBatch(
        prompt_ids=[[5, 6, 7], [8]],
        completion_ids=[[9, 10], [11, 12, 13]],
        engine_logprobs=[[-0.1, -0.2], [-0.3, -0.4, -0.5]],
        advantages=[1.0, -1.0],
        in_loss=[True, False],
    )


def test_collate_right_pads_and_masks_completion_tokens_only():
    t = collate(_batch())
    assert t["input_ids"].tolist() == [[5, 6, 7, 9, 10], [8, 11, 12, 13, 0]]
    assert t["attention_mask"].tolist() == [[1, 1, 1, 1, 1], [1, 1, 1, 1, 0]]
    assert t["targets"].tolist() == [[6, 7, 9, 10], [11, 12, 13, 0]]
    # row 0: targets 9, 10 are completion tokens; row 1 is out of the loss (overlong filter)
    assert t["loss_mask"].tolist() == [[0, 0, 1, 1], [0, 0, 0, 0]]
    assert torch.allclose(t["engine_logprobs"][0], torch.tensor([0, 0, -0.1, -0.2]))
    assert torch.allclose(t["engine_logprobs"][1], torch.tensor([-0.3, -0.4, -0.5, 0]))


def test_from_groups_flattens_engine_groups_in_prompt_order():
    groups = [
        [Completion(0, [1], [-0.5], "a", "stop"), Completion(0, [2], [-0.6], "b", "length")],
        [Completion(1, [3, 4], [-0.1, -0.2], "c", "stop")],
    ]
    b = RolloutBatch.from_groups([[7], [8, 9]], groups, [0.5, -0.5, 0.0], [True, False, True])
    assert b.prompt_ids == [[7], [7], [8, 9]] and b.completion_ids == [[1], [2], [3, 4]]
    assert b.in_loss == [True, False, True]


def test_mismatched_lengths_name_the_field():
    with pytest.raises(ValueError, match="engine_logprobs\\[0\\]"):
        RolloutBatch([[1]], [[2, 3]], [[-0.1]], [1.0], [True])
    with pytest.raises(ValueError, match="RolloutBatch.advantages"):
        RolloutBatch([[1]], [[2]], [[-0.1]], [1.0, 2.0], [True])


def test_shard_gives_each_rank_its_slice_of_every_mini_batch():
    b = RolloutBatch([[i] for i in range(8)], [[1]] * 8, [[0.0]] * 8, [0.0] * 8, [True] * 8)
    assert [p[0] for p in b.shard(0, 2, 2).prompt_ids] == [0, 1, 4, 5]
    assert [p[0] for p in b.shard(1, 2, 2).prompt_ids] == [2, 3, 6, 7]
