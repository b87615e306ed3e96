"""Student's t, Holm and the equivalence test against published tables and hand-worked cases."""

import numpy as np
import pytest

from rlvr.analysis.significance import (
    DIFFERENT,
    EQUIVALENT,
    UNDECIDABLE,
    UNDECIDED,
    TMean,
    equivalence,
    holm,
    t_mean,
    t_quantile,
    t_two_sided_mass,
)


@pytest.mark.parametrize("df, q", [(1, 12.7062), (2, 4.3027), (3, 3.1824), (4, 2.7764), (9, 2.2622), (30, 2.0423)])
def test_t_quantiles_match_the_table(df, q):
    assert t_quantile(0.95, df) == pytest.approx(q, abs=1e-4)


def test_t_mass_approaches_the_normal_with_many_degrees_of_freedom():
    assert t_two_sided_mass(1.959964, 2000) == pytest.approx(0.95, abs=1e-3)
    assert t_two_sided_mass(0.0, 3) == 0.0 and t_two_sided_mass(float("inf"), 3) == 1.0


def test_t_p_value_of_a_hand_worked_case():
    # differences 1, 2, 3: mean 2, sd 1, se 1/sqrt(3), t = 3.464 on 2 df -> two-sided p = 0.0742
    tm = t_mean(np.array([1.0, 2.0, 3.0]))
    assert (tm.mean, tm.df) == (2.0, 2) and tm.p_value(0.0) == pytest.approx(0.0742, abs=1e-4)
    assert tm.p_value(2.0) == pytest.approx(1.0) and t_mean(np.array([1.0])) is None


def test_holm_against_a_hand_worked_case():
    # sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 -> 0.02, 0.03, 0.06, 0.04 -> monotone 0.02, 0.03, 0.06, 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0]) and holm([]) == []


def test_holm_keeps_the_familywise_error_rate_under_alpha():
    # 10 true nulls (uniform p-values): a false rejection anywhere in at most ~5% of families
    rng = np.random.default_rng(0)
    false_families = sum(min(holm(list(rng.random(10)))) < 0.05 for _ in range(4000))
    assert false_families / 4000 < 0.06


def test_equivalence_can_hold_can_fail_and_says_when_the_noise_is_too_large():
    assert equivalence(TMean(0.0, 0.002, 9), margin=0.02, alpha=0.05) == EQUIVALENT
    assert equivalence(TMean(0.08, 0.005, 9), margin=0.02, alpha=0.05) == DIFFERENT
    # se 0.015 with 2 df: the 90% interval is +-0.044 wide, more than the +-0.02 band, whatever the mean
    assert equivalence(TMean(0.0, 0.015, 2), margin=0.02, alpha=0.05) == UNDECIDABLE
    assert equivalence(TMean(0.015, 0.003, 9), margin=0.02, alpha=0.05) == UNDECIDED
