"""Bootstrap intervals on synthetic per-problem results with known answers."""

import numpy as np
import pyarrow as pa
import pytest

from rlvr.analysis.intervals import Scores, bootstrap, scores
from rlvr.config.schema import AnalysisConfig

CFG = AnalysisConfig(bootstrap_resamples=1000, bootstrap_seed=0)


def _samples(acc_by_problem: dict[tuple[str, str], list[bool]]) -> pa.Table:
    rows = [{"benchmark": b, "problem_id": p, "correct": c} for (b, p), cs in acc_by_problem.items() for c in cs]
    return pa.Table.from_pylist(rows)


def _scores(rng, p_correct: np.ndarray, seeds: int, k: int = 4, bench_sizes=(("a", 30), ("b", 60))) -> Scores:
    """``seeds`` trials of a policy solving problem i with probability p_correct[i], k samples each."""
    problems = [(b, f"{b}{i}") for b, n in bench_sizes for i in range(n)]
    tables = [_samples({pr: list(rng.random(k) < p_correct[j]) for j, pr in enumerate(problems)}) for _ in range(seeds)]
    return scores(tables)


def test_scores_average_k_samples_per_problem_and_keep_problems_every_trial_evaluated():
    s = scores([_samples({("a", "1"): [True, False], ("a", "2"): [True, True]}), _samples({("a", "1"): [False, False]})])
    assert s.problems == (("a", "1"),) and s.values.tolist() == [[0.5], [0.0]]


def test_identical_runs_give_an_interval_around_zero():
    one = _scores(np.random.default_rng(1), np.linspace(0.1, 0.9, 90), seeds=1)
    # one seed each: the problems are drawn paired, so the same run against itself is exactly 0
    assert bootstrap(one, one, CFG).low == bootstrap(one, one, CFG).high == 0.0
    three = _scores(np.random.default_rng(1), np.linspace(0.1, 0.9, 90), seeds=3)
    # seeds are drawn independently per side (unpaired, the cautious choice), so the interval has a width
    iv = bootstrap(three, three, CFG)
    assert iv.estimate == 0.0 and iv.low < 0 < iv.high and iv.seeds == (3, 3) and iv.problems == 90


def test_two_seeds_of_the_same_policy_give_an_interval_around_zero():
    rng = np.random.default_rng(2)
    p = rng.random(90)
    iv = bootstrap(_scores(rng, p, seeds=3), _scores(rng, p, seeds=3), CFG)
    assert iv.low < 0 < iv.high and iv.high - iv.low < 0.1


def test_a_clear_gap_gives_an_interval_excluding_zero_that_covers_the_gap():
    rng = np.random.default_rng(3)
    p = rng.random(90) * 0.8
    iv = bootstrap(_scores(rng, p + 0.15, seeds=3), _scores(rng, p, seeds=3), CFG)
    assert 0 < iv.low < 0.15 < iv.high


def test_average_is_the_unweighted_mean_over_benchmarks():
    # benchmark a: all solved (30 problems), b: none (60): the study's average is 0.5, not 30/90
    s = Scores(tuple([("a", str(i)) for i in range(30)] + [("b", str(i)) for i in range(60)]),
               np.array([[1.0] * 30 + [0.0] * 60]))
    iv = bootstrap(s, None, CFG)
    assert iv.estimate == pytest.approx(0.5) and iv.low == iv.high == pytest.approx(0.5)


def test_the_draws_are_fixed_by_the_configured_seed_and_widen_with_confidence():
    rng = np.random.default_rng(4)
    s = _scores(rng, rng.random(90), seeds=2)
    assert bootstrap(s, None, CFG) == bootstrap(s, None, CFG)
    narrow = bootstrap(s, None, CFG.model_copy(update={"confidence": 0.5}))
    wide = bootstrap(s, None, CFG)
    assert wide.low < narrow.low and narrow.high < wide.high


def test_a_difference_needs_shared_problems():
    a = Scores((("a", "1"),), np.array([[1.0]]))
    b = Scores((("a", "2"),), np.array([[0.0]]))
    with pytest.raises(ValueError, match="share no evaluated problem"):
        bootstrap(a, b, CFG)
