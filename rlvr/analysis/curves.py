"""Training curves that can be read: per configuration a smoothed mean with a band, small multiples when the
lines would pile up.

Per step, a configuration's value is the mean over its seeds. The line is a centred rolling mean of that; the
band is the spread over seeds (min to max of the smoothed seeds) when there are several, else the rolling
standard deviation of the single run, so a noisy method shows a wide band instead of a zig-zag.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rlvr.analysis.plots import CURVES, LENGTH_CURVES, _png, plt

SMALL_MULTIPLES_ABOVE = 6  # more configurations than this get one small panel each


def window(n_steps: int) -> int:
    """Rolling window: about a fifth of the run, odd, at least 3 steps when the run has them."""
    w = max(3, n_steps // 5)
    w += 1 - w % 2
    return w if w <= n_steps else max(n_steps - 1 + n_steps % 2, 1)


def rolling(values: np.ndarray, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Centred rolling mean and standard deviation, NaNs skipped, the window shrinking at the ends."""
    mean, std = np.full(len(values), np.nan), np.full(len(values), np.nan)
    half = w // 2
    for i in range(len(values)):
        part = values[max(0, i - half) : i + half + 1]
        part = part[~np.isnan(part)]
        if len(part):
            mean[i], std[i] = part.mean(), part.std()
    return mean, std


def smoothed(
    runs: list[list[dict[str, Any]]], key: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """(steps, smoothed mean, band low, band high) of one metric over a configuration's seeds, or None."""
    steps = sorted({r["step"] for rows in runs for r in rows if r.get("step") is not None and r.get(key) is not None})
    if not steps:
        return None
    index = {s: i for i, s in enumerate(steps)}
    grid = np.full((len(runs), len(steps)), np.nan)
    for j, rows in enumerate(runs):
        for r in rows:
            if r.get("step") in index and r.get(key) is not None:
                grid[j, index[r["step"]]] = float(r[key])
    w = window(len(steps))
    per_seed = np.array([rolling(row, w)[0] for row in grid])
    with np.errstate(all="ignore"):
        if len(runs) > 1:
            mean = np.nanmean(per_seed, axis=0)
            low, high = np.nanmin(per_seed, axis=0), np.nanmax(per_seed, axis=0)
        else:
            mean, std = rolling(grid[0], w)
            low, high = mean - std, mean + std
    return np.array(steps), mean, low, high


def _draw(ax, curve, color, label: str | None) -> None:
    steps, mean, low, high = curve
    ax.fill_between(steps, low, high, color=color, alpha=0.18, lw=0)
    ax.plot(steps, mean, color=color, lw=1.6, label=label)


def curves_figure(
    series: list[tuple[str, list[dict[str, Any]]]],
    palette: dict[str, Any],
    title: str,
    panels: tuple[tuple[str, str], ...] = CURVES,
) -> bytes:
    """One panel per metric of ``panels``, one smoothed line with its band per configuration (seeds pooled)."""
    configs: dict[str, list[list[dict[str, Any]]]] = {}
    for name, rows in series:
        configs.setdefault(name, []).append(rows)
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6))
    for ax, (key, label) in zip(axes, panels):
        for name, runs in configs.items():
            curve = smoothed(runs, key)
            if curve is not None:
                _draw(ax, curve, palette[name], name)
        ax.set(xlabel="step", title=label)
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    if handles:
        fig.legend(
            handles,
            labels,
            fontsize=7,
            loc="upper center",
            bbox_to_anchor=(0.5, 0.0),
            ncol=min(len(labels), 7),
            frameon=False,
        )
    fig.suptitle(title, fontsize=10, y=1.03)
    return _png(fig)


def length_figure(series: list[tuple[str, list[dict[str, Any]]]], palette: dict[str, Any], title: str) -> bytes | None:
    """Response length (mean, longest), truncated share and mean overlong penalty over steps; None when no trial
    logged them (runs from before they were recorded)."""
    if not any(r.get("response_len_max") is not None for _, rows in series for r in rows):
        return None
    return curves_figure(series, palette, title, LENGTH_CURVES)


def small_multiples_figure(
    series: list[tuple[str, list[dict[str, Any]]]],
    palette: dict[str, Any],
    title: str,
    key: str = "reward_mean",
    label: str = "reward",
) -> bytes | None:
    """One small panel per configuration: its smoothed curve and band in colour over every other configuration's
    smoothed mean in grey. None when there are few enough configurations for one panel to stay readable."""
    configs: dict[str, list[list[dict[str, Any]]]] = {}
    for name, rows in series:
        configs.setdefault(name, []).append(rows)
    curves = {name: c for name, runs in configs.items() if (c := smoothed(runs, key)) is not None}
    if len(curves) <= SMALL_MULTIPLES_ABOVE:
        return None
    cols = 5
    rows = -(-len(curves) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.1 * cols, 2.4 * rows), sharex=True, sharey=True, squeeze=False)
    for ax, (name, curve) in zip(axes.flat, curves.items()):
        for other, c in curves.items():
            if other != name:
                ax.plot(c[0], c[1], color="0.8", lw=0.8)
        _draw(ax, curve, palette[name], None)
        ax.set_title(name, fontsize=9)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(curves) :]:
        ax.axis("off")
    for ax in axes[-1]:
        ax.set_xlabel("step")
    fig.suptitle(f"{title}: {label}, one panel per configuration", fontsize=10)
    fig.tight_layout()
    return _png(fig)
