"""Synthetic verifiable tasks: levels, determinism, a held-out split, and golds math-verify accepts."""

from __future__ import annotations

import random
import re

import pytest

from rlvr.config.schema import RewardConfig
from rlvr.config.validate import SYNTHETIC_TASKS
from rlvr.data.synthetic import SOLUTIONS, TASKS, boxed, generate
from rlvr.rewards.pool import RewardItem, RewardPool


def test_config_validation_knows_exactly_the_tasks_that_exist():
    assert sorted(SYNTHETIC_TASKS) == sorted(TASKS)


@pytest.mark.parametrize("task", sorted(TASKS))
def test_generation_is_deterministic_and_levels_alternate(task):
    a = generate(task, [1, 2], 40, seed=7)
    assert a == generate(task, [1, 2], 40, seed=7)
    assert a != generate(task, [1, 2], 40, seed=8)
    assert [p.level for p in a[:4]] == [1, 2, 1, 2]


def test_levels_scale_difficulty():
    assert all(len(p.problem) == 5 for p in generate("addition", [1], 20, seed=0))  # 2-digit + 2-digit
    assert all(len(p.problem) == 7 for p in generate("addition", [2], 20, seed=0))
    assert all(
        p.problem.count("+") + p.problem.count("-") + p.problem.count("*") == 3
        for p in generate("arithmetic", [2], 20, seed=0)
    )


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
    with pytest.raises(
        ValueError, match="unknown synthetic task 'multiply'; available: addition, arithmetic, repeated_addition"
    ):
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


def test_repeated_addition_solutions_add_up_and_math_verify_accepts_their_answers():
    problems = generate("repeated_addition", [1, 2], 40, seed=5)
    for p in problems:
        a, b, n = map(int, re.fullmatch(r"(\d+)\+(\d+)\*(\d+)", p.problem).groups())
        assert int(p.answer) == a + b * n
        *lines, last = p.solution.split("\n")
        assert last == boxed(p.answer)
        total, left = a, n
        for line in lines:  # "k: t+s=u" or "k: t+s, x+y=z, u": every step is right and they reach the gold
            plain, verbose = (
                re.fullmatch(r"(\d+): (\d+)\+(\d+)=(\d+)", line),
                re.fullmatch(r"(\d+): (\d+)\+(\d+), (\d)\+(\d)=(\d+), (\d+)", line),
            )
            if verbose:
                k, t, s, x, y, z, u = map(int, verbose.groups())
                assert (x, y, z) == (t % 10, s % 10, t % 10 + s % 10)
            else:
                k, t, s, u = map(int, plain.groups())
            assert (t, u, k) == (total, t + s, left - s // b) and s in (b, 2 * b)
            total, left = u, k
        assert (total, left) == (a + b * n, 0)
    with RewardPool(RewardConfig(workers=1)) as pool:
        results = pool.score([RewardItem(p.solution, p.answer) for p in problems])
    assert all(r.correct for r in results)


def test_repeated_addition_lengths_span_50_to_500_tokens_and_vary_for_one_prompt():
    from rlvr.models.tiny import build_tokenizer

    tok = build_tokenizer()
    lengths = sorted(
        len(tok(p.solution)["input_ids"]) + 1 for p in generate("repeated_addition", [1], 1000, seed=0)
    )  # + EOS
    assert lengths[0] >= 40 and lengths[-1] <= 500
    assert lengths[len(lengths) // 20] < 100 and lengths[-len(lengths) // 20] > 350  # 5th and 95th percentiles
    one_prompt = {len(SOLUTIONS["repeated_addition"](random.Random(i), "57+8*20")) for i in range(30)}
    assert len(one_prompt) == 3 and max(one_prompt) > 2 * min(one_prompt)  # terse, plain, verbose
