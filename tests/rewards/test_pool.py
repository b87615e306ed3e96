"""RewardPool: deadlines kill and replace stuck workers without losing the batch; counts; format and shaping."""

import os
import signal

import pytest

from rlvr.config.schema import RewardConfig
from rlvr.rewards.pool import RewardItem, RewardPool

STUCK = "\\boxed{9^{9^{9^{9}}}}"  # sympy evaluates this for far longer than any deadline


def test_results_come_back_in_item_order(pool):
    items = [RewardItem(f"\\boxed{{{n}}}", str(n if n % 3 else n + 1)) for n in range(30)]
    assert [r.correct for r in pool.score(items)] == [n % 3 != 0 for n in range(30)]


def test_stuck_item_times_out_its_worker_is_replaced_and_the_rest_of_the_batch_is_scored():
    with RewardPool(RewardConfig(workers=2, timeout_s=1.0)) as p:
        pids = {w.proc.pid for w in p._workers}
        items = [
            RewardItem("\\boxed{1}", "1"),
            RewardItem(STUCK, "3"),
            *[RewardItem(f"\\boxed{{{n}}}", str(n)) for n in range(8)],
        ]
        results = p.score(items)
        assert results[1].timed_out and results[1].reward == 0.0 and not results[1].correct
        assert all(r.correct and not r.timed_out for i, r in enumerate(results) if i != 1)
        assert p.stats["timeouts"] == 1 and p.stats["restarts"] == 1
        assert len({w.proc.pid for w in p._workers} - pids) == 1
        assert all(w.proc.is_alive() for w in p._workers)


def test_worker_killed_from_outside_is_replaced_and_the_next_batch_is_scored():
    with RewardPool(RewardConfig(workers=1, timeout_s=5.0)) as p:
        os.kill(p._workers[0].proc.pid, signal.SIGKILL)
        p._workers[0].proc.join()
        results = p.score([RewardItem("\\boxed{2}", "2"), RewardItem("\\boxed{3}", "3")])
        assert [r.correct for r in results] == [True, True]
        assert p.stats["restarts"] == 1


def test_unparseable_gold_falls_back_to_normalised_string_match_and_is_counted(pool):
    before = pool.stats["gold_fallbacks"]
    results = pool.score(
        [RewardItem("\\boxed{ — }", "—"), RewardItem("\\boxed{-}", "—"), RewardItem("\\boxed{3}", "3")]
    )
    assert [r.correct for r in results] == [True, False, True]
    assert [r.gold_fallback for r in results] == [True, True, False]
    assert pool.stats["gold_fallbacks"] == before + 2


def test_format_reward_is_off_by_default(pool):
    [r] = pool.score([RewardItem("<think>ok</think> \\boxed{4}", "4")])
    assert r.format_ok and r.reward == 1.0


def test_format_weight_adds_to_reward_and_truncated_completions_fail_the_format():
    items = [
        RewardItem("<think>2+2</think> so \\boxed{4}", "4"),
        RewardItem("<think>2+2</think> so \\boxed{5}", "4"),
        RewardItem("<think>2+2</think> \\boxed{4} or \\boxed{4}", "4"),
        RewardItem("<think>2+2 so \\boxed{4}", "4", truncated=True),
    ]
    with RewardPool(RewardConfig(workers=1, format_weight=0.5)) as p:
        assert [r.reward for r in p.score(items)] == [1.5, 0.5, 1.0, 1.0]


def test_shaping_hook_adds_its_term_to_each_reward():
    def length_penalty(item, result):
        return -0.001 * len(item.completion)

    with RewardPool(RewardConfig(workers=1), shaping=length_penalty) as p:
        [r] = p.score([RewardItem("\\boxed{12}", "12")])
    assert r.reward == pytest.approx(1.0 - 0.001 * len("\\boxed{12}"))


def test_empty_batch_returns_empty_list(pool):
    assert pool.score([]) == []
