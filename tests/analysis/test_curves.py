"""Smoothed training curves: the rolling mean and its band, seeds pooled, small multiples for many configurations."""

import io

import matplotlib.image
import numpy as np

from rlvr.analysis.curves import (
    SMALL_MULTIPLES_ABOVE,
    curves_figure,
    length_figure,
    rolling,
    small_multiples_figure,
    smoothed,
    window,
)
from rlvr.analysis.plots import colors


def _run(slope: float, noise: float, seed: int, steps: int = 40) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [
        {
            "step": s,
            "reward_mean": slope * s + noise * rng.standard_normal(),
            "accuracy": 0.5,
            "response_len": 10,
            "entropy": 1.0,
        }
        for s in range(1, steps + 1)
    ]


def test_rolling_mean_flattens_noise_and_keeps_the_trend():
    values = np.array([0.0, 1.0] * 10)
    mean, std = rolling(values, 5)
    assert np.allclose(mean[2:-2], [0.4, 0.6] * 8) and np.all(std[2:-2] > 0.4)
    assert window(40) == 9 and window(30) == 7 and window(10) == 3 and window(3) == 3 and window(2) == 1


def test_one_seed_gets_a_rolling_band_several_seeds_their_spread():
    steps, mean, low, high = smoothed([_run(0.01, 0.2, 0)], "reward_mean")
    assert len(steps) == 40 and np.all(high - low > 0) and mean[-1] > mean[0]
    steps, mean, low, high = smoothed([_run(0.01, 0.0, 0), _run(0.02, 0.0, 1)], "reward_mean")
    assert np.allclose(low[10:-10], 0.01 * steps[10:-10]) and np.allclose(high[10:-10], 0.02 * steps[10:-10])
    assert np.allclose(mean, (low + high) / 2)
    assert smoothed([[{"step": 1}]], "reward_mean") is None


def test_many_configurations_get_one_small_panel_each():
    few = [(f"m{i}", _run(0.01 * i, 0.1, i)) for i in range(SMALL_MULTIPLES_ABOVE)]
    assert small_multiples_figure(few, colors([n for n, _ in few]), "tiny") is None
    many = [(f"m{i}", _run(0.01 * i, 0.1, i)) for i in range(14)]
    png = small_multiples_figure(many, colors([n for n, _ in many]), "tiny")
    height, width = matplotlib.image.imread(io.BytesIO(png)).shape[:2]
    assert width > 1000 and height > 500, "three rows of five panels"
    height, width = matplotlib.image.imread(
        io.BytesIO(curves_figure(many, colors([n for n, _ in many]), "tiny"))
    ).shape[:2]
    assert width > 1200 and height > 300


def test_length_figure_draws_four_panels_and_only_for_runs_that_logged_lengths():
    runs = [
        (
            f"m{i}",
            [
                {**row, "response_len_max": 300 - s, "truncated_frac": 0.2 / s, "overlong_penalty_mean": -0.1 / s}
                for s, row in enumerate(_run(0.01, 0.1, i), start=1)
            ],
        )
        for i in range(2)
    ]
    png = length_figure(runs, colors(["m0", "m1"]), "tiny")
    height, width = matplotlib.image.imread(io.BytesIO(png)).shape[:2]
    assert width > 1200 and height > 250, "four panels in a row"
    assert (
        smoothed([runs[0][1]], "overlong_penalty_mean")[1][-1] > smoothed([runs[0][1]], "overlong_penalty_mean")[1][0]
    )
    assert length_figure([("old", _run(0.01, 0.1, 0))], colors(["old"]), "tiny") is None
