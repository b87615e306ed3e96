"""Avg@k and Pass@k, including the unbiased estimator when more samples than k are drawn."""

from math import comb

import pyarrow as pa
import pytest

from rlvr.eval.metrics import pass_at_k, summarise


@pytest.mark.parametrize(
    "n, c, k", [(10, 3, 1), (10, 3, 4), (32, 1, 8), (16, 0, 4), (8, 8, 8), (100, 50, 10), (5, 4, 3)]
)
def test_pass_at_k_equals_the_binomial_formula(n, c, k):
    assert pass_at_k(n, c, k) == pytest.approx(1 - comb(n - c, k) / comb(n, k))


def test_pass_at_k_with_k_equal_n_is_any_correct():
    assert pass_at_k(4, 0, 4) == 0.0 and pass_at_k(4, 1, 4) == 1.0


def test_pass_at_k_rejects_fewer_samples_than_k():
    with pytest.raises(ValueError, match="k=5 needs at least k samples"):
        pass_at_k(4, 1, 5)


def test_summary_has_one_row_per_benchmark_and_an_unweighted_average():
    samples = pa.Table.from_pylist(
        [{"benchmark": "a", "problem_id": "p1", "correct": c} for c in (True, False, False, False)]
        + [{"benchmark": "a", "problem_id": "p2", "correct": False} for _ in range(4)]
        + [{"benchmark": "b", "problem_id": "q1", "correct": True} for _ in range(2)]
    )
    rows = {r["benchmark"]: r for r in summarise(samples, {"a": 4, "b": 2}).to_pylist()}
    assert rows["a"] == {"benchmark": "a", "k": 4, "n_problems": 2, "avg_at_k": 1 / 8, "pass_at_k": 0.5}
    assert rows["b"]["avg_at_k"] == 1.0 and rows["b"]["pass_at_k"] == 1.0
    assert rows["average"]["avg_at_k"] == pytest.approx((1 / 8 + 1) / 2)
    assert rows["average"]["pass_at_k"] == pytest.approx(0.75)
    assert rows["average"]["n_problems"] == 3 and rows["average"]["k"] is None
