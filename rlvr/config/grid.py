"""Grid expansion: a SweepConfig becomes a list of fully resolved trials with stable ids.

The product runs models x methods x grid axes x seeds, in that order, so a listing groups a model's trials
together. The id hashes only what decides a trial's results: its name (derived from the grid) and its
output_dir (derived from the storage) are left out, so moving a run to other storage keeps every id. Only
fields set away from their defaults are hashed, so a release that adds a field (with a default that keeps the
old behaviour) keeps every id and a sweep resumes across it; a release that changes a default's value must say
so, because ids do not change with it.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass
from typing import Any

from rlvr.config.layout import RunLayout
from rlvr.config.loader import ConfigError, build, set_dotted
from rlvr.config.schema import UNCHECKED, SweepConfig, TrialConfig

# Fields that label a trial or place it, but do not change what it computes.
UNHASHED_FIELDS = ("name", "output_dir", "resources")


@dataclass(frozen=True)
class TrialSpec:
    """One trial of a sweep: ``trial_id`` is stable across runs and machines; ``axes`` are its grid values."""

    trial_id: str
    label: str
    config: TrialConfig
    axes: tuple[tuple[str, Any], ...] = ()


def trial_id(cfg: TrialConfig) -> str:
    """First 12 hex digits of the sha256 of the config's canonical JSON: its non-default fields, less the unhashed."""
    data = cfg.model_dump(mode="json", exclude=set(UNHASHED_FIELDS), exclude_defaults=True)
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def _short_keys(keys: list[str]) -> dict[str, str]:
    """Each grid key's last component, or the whole dotted key where two keys share a last component."""
    tails = [k.rsplit(".", 1)[-1] for k in keys]
    return {k: (t if tails.count(t) == 1 else k) for k, t in zip(keys, tails)}


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return ",".join(f"{k}={_show(v)}" for k, v in value.items())
    return str(value)


def _label(cfg: TrialConfig, axes: tuple[tuple[str, Any], ...], short: dict[str, str]) -> str:
    model = cfg.model.name.rstrip("/").rsplit("/", 1)[-1]
    parts = [model, cfg.method.preset, cfg.method.name, f"seed{cfg.seed}"]
    # A section-valued axis ({loss: dr_grpo, scale_rewards: false}) shows its own keys.
    parts += [_show(v) if isinstance(v, dict) else f"{short[k]}={_show(v)}" for k, v in axes]
    return "/".join(parts)


def expand(cfg: SweepConfig) -> list[TrialSpec]:
    """Every trial of the sweep, resolved and typed; identical trials from two grid entries are an error. The
    trials' cross-field rules are checked by SweepConfig's validator (rlvr.config.validate.check_sweep), which
    names the trial at fault, so a built SweepConfig expands only to valid trials."""
    for key, values in cfg.grid.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"grid.{key}: expected a non-empty list of values, got {values!r}")
    base = cfg.base.model_dump(mode="json")
    models = cfg.models or [cfg.base.model]
    methods = cfg.methods or [cfg.base.method]
    seeds = cfg.seeds or [cfg.base.seed]
    keys = list(cfg.grid)
    short = _short_keys(keys)
    specs: list[TrialSpec] = []
    seen: dict[str, str] = {}
    trials_dir = f"{RunLayout.run_dir(cfg.storage, cfg.name)}/{RunLayout.TRIALS}"
    for (mi, model), (ki, method), combo, seed in itertools.product(
        enumerate(models), enumerate(methods), itertools.product(*cfg.grid.values()), seeds
    ):
        data = dict(base, model=model.model_dump(mode="json"), method=method.model_dump(mode="json"), seed=seed)
        axes = tuple(zip(keys, combo))
        for key, value in axes:
            set_dotted(data, key, value, f"grid.{key}")
        where = (
            f"sweep trial (models[{mi}], methods[{ki}], seed {seed}"
            + "".join(f", {k}={_show(v)}" for k, v in axes)
            + ")"
        )
        trial = build(TrialConfig, data, where, context=UNCHECKED)
        label = _label(trial, axes, short)
        tid = trial_id(trial)
        if tid in seen:
            raise ConfigError(f"{where}: same trial as {seen[tid]} (id {tid}); remove the duplicate grid entry")
        seen[tid] = label
        trial = trial.model_copy(update={"name": label, "output_dir": trials_dir})
        specs.append(TrialSpec(trial_id=tid, label=label, config=trial, axes=axes))
    # Two entries that differ only where the label does not look (say two ranks in `methods`) get the id appended.
    counts = {label: [s.label for s in specs].count(label) for label in {s.label for s in specs}}
    return [s if counts[s.label] == 1 else _relabel(s, f"{s.label}/{s.trial_id}") for s in specs]


def _relabel(spec: TrialSpec, label: str) -> TrialSpec:
    return TrialSpec(spec.trial_id, label, spec.config.model_copy(update={"name": label}), spec.axes)
