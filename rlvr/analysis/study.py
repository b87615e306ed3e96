"""The study's results table: trials grouped over seeds, with status, spread, difference to LoRA and the study's
published numbers.

Values in results.parquet are fractions (Avg@k is a mean correctness); the table shows percent. A value that
does not exist shows why: the trials' state ("running", "failed", "pending") or "—" for a benchmark that was
not evaluated; never 0.
"""

from __future__ import annotations

import math
import re
import statistics
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from rlvr.analysis.published import comparable_with_published, published_average
from rlvr.analysis.rundir import RunDir
from rlvr.config.methods import method_info

MISSING = "—"
AVERAGE = "average"
_SEED = re.compile(r"^seed-?\d+$")
_TRIAL_ID = re.compile(r"^[0-9a-f]{12}$")
# Ledger states in the order one of them names a group with no finished trial.
_STATES = ("running", "pending", "failed")


def _number(value: Any) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return float(value)


def _from_config(run: RunDir, trial_id: str) -> dict[str, Any]:
    """What a trial that results.parquet does not list yet can tell about itself."""
    trial = run.trial(trial_id)
    row: dict[str, Any] = {"trial_id": trial_id, "status": "pending"}
    cfg = trial.config()
    if cfg is not None:
        try:
            group = method_info(cfg.method.name).group
        except ValueError:
            group = None
        row.update(
            model=cfg.model.name,
            method=cfg.method.name,
            preset=cfg.method.preset,
            rank=cfg.method.rank,
            seed=cfg.seed,
            group=group,
            label=cfg.name,
        )
    record = trial.record() or {}
    row.update({k: record[k] for k in ("trainable_params", "trainable_pct") if k in record})
    return row


def trial_rows(run: RunDir) -> list[dict[str, Any]]:
    """One dict per trial: its results.parquet row with the ledger's (fresher) status; trials the results table
    does not list yet are described from their config.yaml and record.json."""
    results = run.results()
    rows = {r["trial_id"]: r for r in results.to_pylist()} if results is not None else {}
    ledger = run.ledger()
    for trial_id in run.trial_ids():
        row = rows.get(trial_id) or rows.setdefault(trial_id, _from_config(run, trial_id))
        entry = ledger.get(trial_id, {})
        row["status"] = entry.get("status", row.get("status") or "pending")
        row["label"] = row.get("label") or entry.get("label") or trial_id
    return sorted(rows.values(), key=lambda r: r["trial_id"])


def setting(label: str) -> str:
    """The grid-axis part of a sweep label (model/preset/method/seedN/axis=v.../id): what is not in other columns."""
    parts = label.split("/")[3:]
    return "/".join(p for p in parts if not _SEED.match(p) and not _TRIAL_ID.match(p))


@dataclass
class ConfigGroup:
    """The trials of one configuration, over seeds."""

    model: str | None
    method: str | None
    group: str | None
    preset: str | None
    rank: int | None
    setting: str
    trials: list[dict[str, Any]] = field(default_factory=list)

    @property
    def done(self) -> list[dict[str, Any]]:
        return [t for t in self.trials if t.get("status") == "done"]

    def values(self, column: str) -> list[float]:
        return [v for v in (_number(t.get(column)) for t in self.done) if v is not None]

    def mean(self, column: str) -> float | None:
        vals = self.values(column)
        return statistics.fmean(vals) if vals else None

    def state(self) -> str:
        """Why there is no value: the most hopeful state among the trials."""
        states = Counter(t.get("status") for t in self.trials)
        return next((s for s in _STATES if states[s]), "failed")

    def status_text(self) -> str:
        counts = Counter(t.get("status") or "pending" for t in self.trials)
        if counts["done"] == len(self.trials):
            return f"{len(self.trials)} done"
        return ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))

    @property
    def name(self) -> str:
        parts = [self.method or "?"]
        if self.rank:
            parts.append(f"r{self.rank}")
        if self.setting:
            parts.append(self.setting)
        return " ".join(parts)


def group_trials(rows: list[dict[str, Any]]) -> list[ConfigGroup]:
    """Trials grouped by model, method, preset, rank and the other grid axes (seeds pooled), in first-seen order."""
    groups: dict[tuple, ConfigGroup] = {}
    for r in rows:
        key = (r.get("model"), r.get("method"), r.get("preset"), r.get("rank"), setting(r.get("label") or ""))
        if key not in groups:
            groups[key] = ConfigGroup(
                r.get("model"), r.get("method"), r.get("group"), r.get("preset"), r.get("rank"), key[4]
            )
        groups[key].trials.append(r)
    return list(groups.values())


def benchmarks(rows: list[dict[str, Any]]) -> list[tuple[str, int | None]]:
    """(benchmark, k) for every evaluated benchmark column, the average excluded, in column order."""
    seen: dict[str, int | None] = {}
    for r in rows:
        for col in r:
            parts = col.split("/")
            if len(parts) == 3 and parts[0] == "eval" and parts[1] != AVERAGE:
                k = _number(r.get(f"eval/{parts[1]}/k"))
                if seen.get(parts[1]) is None:
                    seen[parts[1]] = int(k) if k is not None else None
    return list(seen.items())


def evaluated(group: ConfigGroup, benches: list[tuple[str, int | None]]) -> list[tuple[str, int | None]]:
    """The (benchmark, k) a group's finished trials have a score on: what its average is taken over."""
    return [(b, k) for b, k in benches if group.values(f"eval/{b}/avg_at_k")]


def lora_reference(group: ConfigGroup, groups: list[ConfigGroup]) -> ConfigGroup | None:
    """The LoRA configuration a group is compared with: same model, preferring the same preset, setting and rank."""
    loras = [
        g
        for g in groups
        if g.method == "lora" and g.model == group.model and g.mean(f"eval/{AVERAGE}/avg_at_k") is not None
    ]
    loras.sort(key=lambda g: (g.preset != group.preset, g.setting != group.setting, g.rank != group.rank))
    return loras[0] if loras else None


ONE_SEED_CELL = "1 seed"


def delta_lora(group: ConfigGroup, ref: ConfigGroup | None) -> str:
    """A group's mean difference to its LoRA reference in points; with one seed on either side no number, since
    one seed cannot rank two methods (seed-to-seed spread is as large as most differences)."""
    avg = f"eval/{AVERAGE}/avg_at_k"
    if ref is None or group.mean(avg) is None or ref.mean(avg) is None:
        return MISSING
    if ref is group:
        return "ref"
    if min(len(group.values(avg)), len(ref.values(avg))) < 2:
        return ONE_SEED_CELL
    return f"{100 * (group.mean(avg) - ref.mean(avg)):+.1f}"


def _pct(vals: list[float]) -> str:
    mean = 100 * statistics.fmean(vals)
    if len(vals) < 2:
        return f"{mean:.1f}"
    return f"{mean:.1f} ± {100 * statistics.stdev(vals):.1f}"


def _cell(group: ConfigGroup, column: str) -> str:
    if not group.done:
        return group.state()
    vals = group.values(column)
    return _pct(vals) if vals else MISSING


def study_table(
    rows: list[dict[str, Any]], vs_lora: dict[tuple[str | None, str], Any] | None = None
) -> tuple[list[str], list[list[str]]]:
    """Header and rows (as text) of the study's table, one row per configuration, best average first per model.

    ``vs_lora``: (model, name) -> rlvr.analysis.intervals.Interval of the difference to LoRA, shown with Δ LoRA."""
    groups = group_trials(rows)
    benches = benchmarks(rows)
    avg = f"eval/{AVERAGE}/avg_at_k"
    header = ["model", "method", "group", "rank", "trainable %", "trials"]
    for b, k in benches:
        suffix = f"@{k}" if k else "@k"
        header += [f"{b} Avg{suffix}", f"{b} Pass{suffix}"]
    header += ["average", "Δ LoRA", "published avg"]
    groups.sort(key=lambda g: (str(g.model), -(g.mean(avg) if g.mean(avg) is not None else -math.inf)))
    out = []
    for g in groups:
        pct = g.mean("trainable_pct") if g.done else _number(next(iter(g.trials)).get("trainable_pct"))
        row = [
            (g.model or "?").rstrip("/").rsplit("/", 1)[-1],
            g.name,
            g.group or MISSING,
            str(g.rank) if g.rank else MISSING,
            f"{pct:.3g}" if pct is not None else MISSING,
            g.status_text(),
        ]
        for b, _ in benches:
            row += [_cell(g, f"eval/{b}/avg_at_k"), _cell(g, f"eval/{b}/pass_at_k")]
        row.append(_cell(g, avg))
        ref = lora_reference(g, groups)
        interval = (vs_lora or {}).get((g.model, g.name))
        row.append(
            "ref"
            if ref is g
            else interval.points()
            if interval is not None and interval.seeds > 1
            else delta_lora(g, ref)
        )
        published = published_average(g.model, g.method)
        row.append(
            MISSING
            if published is None
            else f"{published:.1f}"
            if comparable_with_published(evaluated(g, benches))
            else f"{published:.1f} (not comparable)"
        )
        out.append(row)
    return header, out


def frontier_points(rows: list[dict[str, Any]]) -> list[tuple[str, str, float, float]]:
    """(model, configuration name, trainable %, average accuracy %) of every configuration with both known."""
    points = []
    for g in group_trials(rows):
        pct, acc = g.mean("trainable_pct"), g.mean(f"eval/{AVERAGE}/avg_at_k")
        if pct is not None and pct > 0 and acc is not None:
            points.append((str(g.model), g.name, pct, 100 * acc))
    return points


def pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Points no other point beats on both fewer trainable parameters and higher accuracy, by trainable % ascending."""
    front: list[tuple[float, float]] = []
    for x, y in sorted(points, key=lambda p: (p[0], -p[1])):
        if not front or y > front[-1][1]:
            front.append((x, y))
    return front
