"""Equivalent ways of writing a correct answer are accepted; wrong answers are not (real MATH-500 golds)."""

import pytest

from rlvr.config.schema import RewardConfig
from rlvr.rewards.pool import RewardItem, RewardPool

# (MATH-500 id, a correct completion written differently from the gold)
ACCEPTED = [
    ("test/algebra/2584.json", "so the answer is \\boxed{\\dfrac{14}{3}}"),  # \frac vs \dfrac
    ("test/algebra/2584.json", "Therefore \\boxed{14/3}."),  # \frac vs a/b
    ("test/prealgebra/1655.json", "\\boxed{\\frac{17}{50}}"),  # \dfrac gold vs \frac
    ("test/prealgebra/1655.json", "\\boxed{0.34}"),  # fraction vs decimal
    ("test/prealgebra/1558.json", "\\boxed{\\frac{5}{4}}"),  # decimal gold vs fraction
    ("test/intermediate_algebra/558.json", "The solution set is \\boxed{(3, 4]}"),  # interval
    ("test/intermediate_algebra/183.json", "\\boxed{(2, \\infty)}"),  # unbounded interval
    ("test/algebra/2043.json", "\\boxed{(-\\infty,2)\\cup(3,\\infty)}"),  # union of intervals
    ("test/intermediate_algebra/1388.json", "\\boxed{-2, 1}"),  # list of answers in another order
    ("test/intermediate_algebra/428.json", "\\boxed{7, 5, 3}"),
    ("test/intermediate_algebra/2015.json", "\\boxed{\\{-2, 1 \\pm \\sqrt{5}\\}}"),  # set in another order
    ("test/precalculus/927.json", "\\boxed{90}"),  # degrees dropped
    ("test/precalculus/927.json", "\\boxed{90^{\\circ}}"),
    ("test/prealgebra/1044.json", "\\boxed{5.4}"),  # unit in \text dropped
    ("test/geometry/473.json", "\\boxed{864}"),  # \mbox unit dropped
    ("test/algebra/1349.json", "\\boxed{\\text{Evelyn}}"),  # text answer
    ("test/algebra/1349.json", "\\boxed{Evelyn}"),
    ("test/precalculus/819.json", "\\boxed{C}"),  # multiple choice letter without \text{()}
    ("test/algebra/2193.json", "\\boxed{5}"),  # gold "x=5", answer without "x ="
    ("test/algebra/2036.json", "\\boxed{x = 3\\sqrt{13}}"),  # answer with "x =", gold without
    ("test/precalculus/356.json", "\\boxed{y=-2x}"),
    ("test/precalculus/807.json", "\\boxed{(3, \\pi/2)}"),  # tuple with \left( \right) in gold
    ("test/counting_and_probability/508.json", "\\boxed{10080}"),  # thousands separator 10,\!080
    ("test/precalculus/263.json", "\\boxed{\\begin{pmatrix} -2 \\\\ -14 \\\\ -7 \\end{pmatrix}}"),
    ("test/intermediate_algebra/662.json", "\\boxed{1 \\pm \\sqrt{19}}"),
    ("test/algebra/2253.json", "\\boxed{\\frac{3}{4}\\sqrt{3}}"),  # symbolic rearrangement
]

REJECTED = [
    ("test/algebra/2584.json", "\\boxed{\\frac{3}{14}}"),
    ("test/intermediate_algebra/558.json", "\\boxed{[3, 4]}"),  # wrong endpoint type
    ("test/intermediate_algebra/428.json", "\\boxed{3, 5}"),  # a missing element
    ("test/algebra/1349.json", "\\boxed{\\text{Alice}}"),
    ("test/precalculus/927.json", "\\boxed{91^\\circ}"),
    ("test/algebra/2584.json", "14/3 is what I think but I never box it"),  # study extraction needs a box or LaTeX
]


def test_equivalent_forms_of_real_math500_golds_are_accepted(pool, math500_gold):
    items = [RewardItem(completion=c, gold=math500_gold[i]) for i, c in ACCEPTED]
    results = pool.score(items)
    failed = [(i, math500_gold[i], c, r.extracted) for (i, c), r in zip(ACCEPTED, results) if not r.correct]
    assert not failed, failed
    assert all(r.reward == 1.0 and not r.timed_out for r in results)


def test_wrong_answers_to_real_math500_golds_score_zero(pool, math500_gold):
    results = pool.score([RewardItem(completion=c, gold=math500_gold[i]) for i, c in REJECTED])
    assert [r.correct for r in results] == [False] * len(REJECTED)
    assert all(r.reward == 0.0 for r in results)


@pytest.mark.parametrize(
    "gold, completion",
    [
        ("0.5", "\\boxed{\\frac{1}{2}}"),
        ("\\frac12", "\\boxed{0.5}"),
        ("50\\%", "\\boxed{50\\%}"),
        ("50\\%", "\\boxed{0.5}"),
    ],
)
def test_decimal_fraction_and_percent_forms_match(pool, gold, completion):
    assert pool.score([RewardItem(completion, gold)])[0].correct


def test_study_extraction_keeps_trl_quirks_and_lenient_extraction_relaxes_them(pool):
    """The study's reward (TRL accuracy_reward) does not repair brace-less \\frac12 or read 'Answer: x' lines."""
    items = [RewardItem("\\boxed{\\frac12}", "0.5"), RewardItem("Answer: 34", "34")]
    assert [r.correct for r in pool.score(items)] == [False, False]
    with RewardPool(RewardConfig(workers=1, extraction="lenient")) as lenient:
        assert [r.correct for r in lenient.score(items)] == [True, True]


def test_last_boxed_answer_is_extracted_and_reported(pool):
    [res] = pool.score([RewardItem("First \\boxed{2} then I am sure: \\boxed{\\frac{7}{3}}", "7/3")])
    assert res.extracted is not None
    assert not res.format_ok  # two boxes
