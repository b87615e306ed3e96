"""Intervals on synthetic per-problem results with known answers: seed pairing, t over seeds, coverage."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rlvr.analysis.intervals import Scores, bootstrap, eval_steps, scores, step_samples
from rlvr.analysis.rundir import TrialDir
from rlvr.config.schema import AnalysisConfig

CFG = AnalysisConfig(bootstrap_resamples=1000, bootstrap_seed=0)


def _samples(acc_by_problem: dict[tuple[str, str], list[bool]]) -> pa.Table:
    rows = [{"benchmark": b, "problem_id": p, "correct": c} for (b, p), cs in acc_by_problem.items() for c in cs]
    return pa.Table.from_pylist(rows)


def _scores(rng, p_correct: np.ndarray, seeds: int, k: int = 4, bench_sizes=(("a", 30), ("b", 60))) -> Scores:
    """``seeds`` trials of a policy solving problem i with probability p_correct[i], k samples each."""
    problems = [(b, f"{b}{i}") for b, n in bench_sizes for i in range(n)]
    tables = [_samples({pr: list(rng.random(k) < p_correct[j]) for j, pr in enumerate(problems)}) for _ in range(seeds)]
    return scores(tables, list(range(seeds)))


def test_scores_average_k_samples_per_problem_and_keep_problems_every_trial_evaluated():
    s = scores(
        [_samples({("a", "1"): [True, False], ("a", "2"): [True, True]}), _samples({("a", "1"): [False, False]})],
        [7, 3],
    )
    assert s.problems == (("a", "1"),) and s.values.tolist() == [[0.5], [0.0]] and s.seeds == (7, 3)


def test_identical_runs_give_an_interval_of_exactly_zero():
    # the same seeds on both sides are paired: the same run against itself differs by exactly 0
    for seeds in (1, 3):
        s = _scores(np.random.default_rng(1), np.linspace(0.1, 0.9, 90), seeds=seeds)
        iv = bootstrap(s, s, CFG)
        assert iv.estimate == iv.low == iv.high == iv.boot_low == iv.boot_high == 0.0
        assert iv.seeds == seeds and iv.problems == 90 and (iv.t is None) == (seeds == 1)


def _planted(rng, effect: float, seed_sd: float, seeds: list[int], problems: int = 60) -> tuple[Scores, Scores]:
    """Two methods on the same seeds: each seed shifts both alike (shared data order and evaluation draw) by
    N(0, seed_sd); method a is ``effect`` above b; per-problem noise on top."""
    shift = rng.normal(0, seed_sd, len(seeds))[:, None]
    base = rng.uniform(0.2, 0.6, problems)[None, :]
    names = tuple(("m", str(i)) for i in range(problems))
    b = np.clip(base + shift + rng.normal(0, 0.05, (len(seeds), problems)), 0, 1)
    a = np.clip(base + shift + effect + rng.normal(0, 0.05, (len(seeds), problems)), 0, 1)
    return Scores(names, a, tuple(seeds)), Scores(names, b, tuple(seeds))


def test_rows_are_paired_by_seed_not_by_their_order():
    a, b = _planted(np.random.default_rng(5), effect=0.05, seed_sd=0.10, seeds=[1, 2, 3, 4])
    # the same trials listed in another order (as trial ids sort) give the same paired difference
    shuffled = Scores(b.problems, b.values[[2, 0, 3, 1]], tuple(b.seeds[i] for i in [2, 0, 3, 1]))
    assert bootstrap(a, shuffled, CFG) == bootstrap(a, b, CFG)
    iv = bootstrap(a, b, CFG)
    # a seed effect twice the planted one cancels in the pairs: the interval is narrow and excludes 0
    assert 0 < iv.low < 0.05 < iv.high and iv.high - iv.low < 0.05 and iv.boot_low > 0


def test_only_shared_seeds_are_paired():
    a, b = _planted(np.random.default_rng(6), effect=0.05, seed_sd=0.1, seeds=[1, 2, 3])
    b3 = Scores(b.problems, b.values, (2, 3, 9))
    assert bootstrap(a, b3, CFG).seeds == 2
    with pytest.raises(ValueError, match="share no seed"):
        bootstrap(a, Scores(b.problems, b.values, (7, 8, 9)), CFG)


def test_the_t_interval_uses_n_minus_1_degrees_of_freedom():
    a, b = _planted(np.random.default_rng(7), effect=0.02, seed_sd=0.05, seeds=[1, 2, 3])
    iv = bootstrap(a, b, CFG)
    d = a.per_seed() - b.per_seed()
    half = 4.302653 * d.std(ddof=1) / np.sqrt(3)  # t(0.975, 2 df), not z = 1.96
    assert iv.t.df == 2
    assert (iv.low, iv.high) == (pytest.approx(d.mean() - half, rel=1e-5), pytest.approx(d.mean() + half, rel=1e-5))


def test_the_seed_t_interval_covers_a_planted_effect_at_its_nominal_rate():
    # Monte Carlo over simulated studies of 3 seeds whose per-seed differences vary (method x seed interaction):
    # a 95% interval must cover the planted effect about 95% of the time (a z interval covers ~81% here)
    from rlvr.analysis.significance import t_mean

    rng = np.random.default_rng(8)
    covered = 0
    for _ in range(4000):
        low, high = t_mean(0.03 + rng.normal(0, 0.02, 3)).interval(0.95)
        covered += low <= 0.03 <= high
    assert 0.935 < covered / 4000 < 0.965


def test_eval_steps_sort_as_numbers(tmp_path):
    for step, correct in ((90, False), (100, True)):
        (tmp_path / "eval" / f"step_{step}").mkdir(parents=True)
        pq.write_table(_samples({("a", "1"): [correct]}), tmp_path / "eval" / f"step_{step}" / "samples.parquet")
    trial = TrialDir(str(tmp_path))
    assert eval_steps(trial) == [90, 100]
    assert step_samples(trial).column("correct").to_pylist() == [True]  # step 100, not "step_90" > "step_100"
    assert step_samples(trial, 90).column("correct").to_pylist() == [False]


def test_two_seeds_of_the_same_policy_give_an_interval_around_zero():
    rng = np.random.default_rng(2)
    p = rng.random(90)
    iv = bootstrap(_scores(rng, p, seeds=3), _scores(rng, p, seeds=3), CFG)
    assert iv.low < 0 < iv.high and iv.high - iv.low < 0.15  # t with 2 df: honest, so wide


def test_a_clear_gap_gives_an_interval_excluding_zero_that_covers_the_gap():
    rng = np.random.default_rng(3)
    p = rng.random(90) * 0.8
    iv = bootstrap(_scores(rng, p + 0.15, seeds=3), _scores(rng, p, seeds=3), CFG)
    assert 0 < iv.low < 0.15 < iv.high


def test_average_is_the_unweighted_mean_over_benchmarks():
    # benchmark a: all solved (30 problems), b: none (60): the study's average is 0.5, not 30/90
    s = Scores(
        tuple([("a", str(i)) for i in range(30)] + [("b", str(i)) for i in range(60)]),
        np.array([[1.0] * 30 + [0.0] * 60]),
        (1,),
    )
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
    a = Scores((("a", "1"),), np.array([[1.0]]), (1,))
    b = Scores((("a", "2"),), np.array([[0.0]]), (1,))
    with pytest.raises(ValueError, match="share no evaluated problem"):
        bootstrap(a, b, CFG)
