"""Small-sample tests the verdicts rest on: Student's t over seeds, Holm's step-down correction, and the
two one-sided tests (TOST) of equivalence. numpy only (the project does not depend on scipy).

With n seeds a mean difference has n - 1 degrees of freedom: with 3 seeds the 97.5% quantile is 4.30, not the
normal 1.96, which is why an interval from a z (or a percentile bootstrap over 3 seeds) covers far less than it
says.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def t_two_sided_mass(t: float, df: int) -> float:
    """P(|T| < t) for Student's T with integer ``df`` (Abramowitz & Stegun 26.7.3-4, exact for integer df)."""
    if df < 1:
        raise ValueError(f"t distribution: df must be >= 1, got {df}")
    t = abs(t)
    if math.isinf(t):
        return 1.0
    theta = math.atan(t / math.sqrt(df))
    s, c2 = math.sin(theta), math.cos(theta) ** 2
    if df % 2 == 1:
        term, total = 1.0, 1.0 if df > 1 else 0.0
        for j in range(2, df - 1, 2):  # 1 + 2/3 c^2 + (2*4)/(3*5) c^4 + ...
            term *= c2 * j / (j + 1)
            total += term
        return min(1.0, 2 / math.pi * (theta + s * math.cos(theta) * total))
    term, total = 1.0, 1.0
    for j in range(1, df - 2, 2):  # 1 + 1/2 c^2 + (1*3)/(2*4) c^4 + ...
        term *= c2 * j / (j + 1)
        total += term
    return min(1.0, s * total)


def t_quantile(confidence: float, df: int) -> float:
    """The t with P(|T| < t) = ``confidence`` (a two-sided critical value), by bisection."""
    low, high = 0.0, 1.0
    while t_two_sided_mass(high, df) < confidence:
        high *= 2
    for _ in range(200):
        mid = (low + high) / 2
        low, high = (mid, high) if t_two_sided_mass(mid, df) < confidence else (low, mid)
    return (low + high) / 2


@dataclass(frozen=True)
class TMean:
    """The mean of n values (per-seed differences) with its standard error and n - 1 degrees of freedom."""

    mean: float
    se: float
    df: int

    def interval(self, confidence: float) -> tuple[float, float]:
        half = t_quantile(confidence, self.df) * self.se
        return self.mean - half, self.mean + half

    def p_value(self, line: float = 0.0) -> float:
        """Two-sided p of "the true mean is ``line``"."""
        if self.se == 0:
            return 0.0 if self.mean != line else 1.0
        return 1.0 - t_two_sided_mass((self.mean - line) / self.se, self.df)


def t_mean(values: np.ndarray) -> TMean | None:
    """Student's t summary of ``values`` (one per seed); None with fewer than two."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) < 2:
        return None
    return TMean(float(values.mean()), float(values.std(ddof=1) / math.sqrt(len(values))), len(values) - 1)


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the input order: a family of m tests rejected at adjusted p < alpha
    makes a false rejection anywhere in the family with probability at most alpha."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted, running = [0.0] * m, 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


EQUIVALENT, DIFFERENT, UNDECIDABLE, UNDECIDED = "equivalent", "different", "not decidable at this noise", "inconclusive"


def equivalence(tm: TMean, margin: float, alpha: float) -> str:
    """TOST at level ``alpha``: equivalent when the (1 - 2 alpha) t interval lies inside +-margin; different when
    the (1 - alpha) interval lies wholly outside it; not decidable when the (1 - 2 alpha) interval is wider than
    the margin band, so no outcome at this noise could show equivalence; inconclusive otherwise."""
    low, high = tm.interval(1 - 2 * alpha)
    if -margin < low and high < margin:
        return EQUIVALENT
    low1, high1 = tm.interval(1 - alpha)
    if high1 < -margin or low1 > margin:
        return DIFFERENT
    return UNDECIDABLE if high - low >= 2 * margin else UNDECIDED
