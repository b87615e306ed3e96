"""Synthetic verifiable tasks: levels, determinism, a held-out split, and golds math-verify accepts."""

from __future__ import annotations

import pytest

from rlvr.config.schema import RewardConfig
from rlvr.data.synthetic import TASKS, boxed, generate
from rlvr.rewards.pool import RewardItem, RewardPool


@pytest.mark.parametrize("task", sorted(TASKS))
def test_generation_is_deterministic_and_levels_alternate(task):
    a = generate(task, [1, 2], 40, seed=7)
    assert a == generate(task, [1, 2], 40, seed=7)
    assert a != generate(task, [1, 2], 40, seed=8)
    assert [p.level for p in a[:4]] == [1, 2, 1, 2]


def test_levels_scale_difficulty():
    assert all(len(p.problem) == 5 for p in generate("addition", [1], 20, seed=0))  # 2-digit + 2-digit
    assert all(len(p.problem) == 7 for p in generate("addition", [2], 20, seed=0))
    assert all(p.problem.count("+") + p.problem.count("-") + p.problem.count("*") == 3 for p in generate("arithmetic", [2], 20, seed=0))


def test_answers_are_correct():
    for p in generate("arithmetic", [1, 2, 3], 50, seed=1) + generate("addition", [1, 2], 50, seed=1):
        assert int(p.answer) == eval(p.problem)  # noqa: S307 - digits and + - * only


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_train_and_test_splits_never_share_a_problem(seed):
    train = {p.problem for p in generate("addition", [1], 5000, seed=seed)}
    test = generate("addition", [1], 200, seed=seed, split="test")
    assert len({p.problem for p in test}) == len(test)
    assert not train & {p.problem for p in test}


def test_unknown_task_and_split_are_clear_errors():
    with pytest.raises(ValueError, match="unknown synthetic task 'multiply'; available: addition, arithmetic"):
        generate("multiply", [1], 1, seed=0)
    with pytest.raises(ValueError, match="split must be 'train' or 'test'"):
        generate("addition", [1], 1, seed=0, split="dev")


def test_math_verify_accepts_boxed_golds_and_rejects_wrong_ones():
    problems = generate("arithmetic", [1, 2], 20, seed=3)
    items = [RewardItem(f"so {boxed(p.answer)}", p.answer) for p in problems]
    items += [RewardItem(boxed(int(p.answer) + 1), p.answer) for p in problems]
    with RewardPool(RewardConfig(workers=1)) as pool:
        results = pool.score(items)
    assert [r.correct for r in results] == [True] * 20 + [False] * 20
