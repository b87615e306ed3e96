"""The report's figures, drawn with matplotlib's Agg backend and returned as PNG bytes."""

from __future__ import annotations

import io
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import pyarrow as pa  # noqa: E402

from rlvr.analysis.study import pareto_front  # noqa: E402

CURVES = (
    ("reward_mean", "reward"),
    ("accuracy", "accuracy"),
    ("response_len", "response length (tokens)"),
    ("entropy", "entropy"),
)
LENGTH_CURVES = (
    ("response_len", "mean response length (tokens)"),
    ("response_len_max", "longest response (tokens)"),
    ("truncated_frac", "truncated share"),
    ("overlong_penalty_mean", "mean overlong penalty"),
)
"""Response length and overlong shaping per step, as the study's long-completion curves show them."""
SPECTRAL = (
    ("energy_two_sided", "baseline_two_sided", "energy share in W0's top-k subspace (both sides)"),
    ("energy_left", "baseline_left", "energy share in W0's top-k output subspace"),
    ("dw_effective_rank", None, "effective rank of ΔW"),
    ("angle_left_mean_deg", None, "mean principal angle, top-k output subspace (°)"),
)


def colors(names: list[str]) -> dict[str, Any]:
    """One colour per configuration name, the same in every figure."""
    cmap = plt.get_cmap("tab10" if len(names) <= 10 else "tab20")
    return {name: cmap(i % cmap.N) for i, name in enumerate(sorted(set(names)))}


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _legend(ax) -> None:
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles))  # several seeds share one entry
    if unique:
        ax.legend(unique.values(), unique.keys(), fontsize=7)


def frontier_figure(
    points: list[tuple[str, str, float, float]],
    palette: dict[str, Any],
    errors: dict[tuple[str, str], tuple[float, float]] | None = None,
) -> bytes:
    """Average accuracy against trainable % (log x), one panel per model, the Pareto frontier shaded;
    ``errors`` (model, name) -> (low, high) % draws each point's interval."""
    models = sorted({p[0] for p in points})
    fig, axes = plt.subplots(1, len(models), figsize=(6 * len(models), 4.2), squeeze=False)
    for ax, model in zip(axes[0], models):
        mine = [p for p in points if p[0] == model]
        front = pareto_front([(x, y) for _, _, x, y in mine])
        xs, ys = zip(*front)
        low = min(
            [y for *_, y in mine] + [errors[(model, n)][0] for _, n, _, _ in mine if errors and (model, n) in errors]
        )
        ax.fill_between(xs, ys, low - 5, step="post", alpha=0.15, color="tab:green", label="Pareto frontier")
        ax.step(xs, ys, where="post", color="tab:green", lw=1)
        for _, name, x, y in mine:
            ax.scatter([x], [y], color=palette[name], s=40, zorder=3)
            if errors and (model, name) in errors:
                lo, hi = errors[(model, name)]
                ax.vlines(x, lo, hi, color=palette[name], lw=1.2, zorder=2)
            ax.annotate(name, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
        ax.set_xscale("log")
        ax.set_ylim(bottom=low - 5)
        ax.set(
            xlabel="trainable parameters (% of the model, log)",
            ylabel="average Avg@k (%)",
            title=model.rstrip("/").rsplit("/", 1)[-1],
        )
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7, loc="lower right")
    return _png(fig)


def _per_step(table: pa.Table, columns: list[str]) -> dict[str, list]:
    """Mean over modules of each column, per step (null shares of zero updates are skipped)."""
    present = [c for c in columns if c in table.column_names]
    agg = table.group_by("step").aggregate([(c, "mean") for c in present]).sort_by("step")
    return {"step": agg.column("step").to_pylist(), **{c: agg.column(f"{c}_mean").to_pylist() for c in present}}


def spectral_figure(series: list[tuple[str, pa.Table]], palette: dict[str, Any], title: str) -> bytes:
    """Where the update lives over training, averaged over modules, one line per trial."""
    fig, axes = plt.subplots(1, len(SPECTRAL), figsize=(4.4 * len(SPECTRAL), 3.4))
    for ax, (key, base_key, label) in zip(axes, SPECTRAL):
        baseline_drawn = False
        for name, table in series:
            data = _per_step(table, [key] + ([base_key] if base_key else []))
            pts = [(s, v) for s, v in zip(data["step"], data.get(key, [])) if v is not None]
            if pts:
                ax.plot(*zip(*pts), marker="o", ms=3, color=palette[name], label=name)
            if base_key and base_key in data and not baseline_drawn:
                ax.plot(data["step"], data[base_key], ls="--", color="gray", label="random ΔW")
                baseline_drawn = True
        if base_key:
            ax.set_yscale("log")
        ax.set(xlabel="step", title=label)
        ax.title.set_fontsize(9)
        ax.grid(alpha=0.3, which="both")
    _legend(axes[0])
    fig.suptitle(title, fontsize=10, y=1.03)
    return _png(fig)
