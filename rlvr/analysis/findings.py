"""The study's findings, each with a verdict at this run's scale derived from its bootstrap interval.

A verdict never claims more than the interval supports:
- "above" (a method beats LoRA): holds when the whole interval of the difference is above 0, contradicted
  when it is below 0, inconclusive otherwise.
- "below" (a bottleneck): the mirror image.
- "collapse" (SVD inits): the method loses at least ``collapse_fraction`` of LoRA's average; holds when the
  whole interval is below that loss, contradicted when the whole interval is above it.
- "robust" (ablations, LoRA only): every setting within +-``equivalence_margin`` of the study's default
  setting holds it, any setting entirely outside contradicts it.
A finding the run has no data for says so ("not in this run").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from rlvr.analysis.intervals import Interval, RunIntervals, bootstrap
from rlvr.analysis.published import PUBLISHED_AVERAGE, published_model
from rlvr.analysis.study import ConfigGroup

Rule = Literal["above", "below", "collapse"]
HOLDS, CONTRADICTED, INCONCLUSIVE, ABSENT = "holds", "contradicted", "inconclusive", "not in this run"


@dataclass(frozen=True)
class Claim:
    """One finding of the study about a method against LoRA."""

    text: str
    method: str
    rule: Rule


CLAIMS = (
    Claim("structural variants beat LoRA: DoRA", "dora", "above"),
    Claim("structural variants beat LoRA: AdaLoRA", "adalora", "above"),
    Claim("structural variants beat LoRA: MiSS", "miss", "above"),
    Claim("SVD inits collapse: PiSSA", "pissa", "collapse"),
    Claim("SVD inits collapse: MiLoRA", "milora", "collapse"),
    Claim("extreme reduction bottlenecks: VeRA", "vera", "below"),
    Claim("extreme reduction bottlenecks: rank-1 LoRA", "lora_rank1", "below"),
    Claim("extreme reduction bottlenecks: IA3", "ia3", "below"),
    Claim("full fine-tuning above LoRA", "full", "above"),
)

# Ablation axis as the sweep labels it (configs/sweeps/ablation-*.yaml) -> the study's default setting.
ABLATIONS = (("LoRA rank", "rank", "16"), ("learning rate", "lr", "1e-05"), ("loss", "loss", "dapo"),
             ("batch size (prompts per step)", "prompts_per_step", "16"))

HEADER = ["finding", "configuration", "vs", "study Δ", "Δ here [interval]", "seeds", "problems", "verdict"]


def verdict(rule: Rule, iv: Interval, lora_average: float, collapse_fraction: float) -> str:
    """The verdict of one claim from the interval of (method - LoRA)."""
    if rule == "above":
        return HOLDS if iv.low > 0 else CONTRADICTED if iv.high < 0 else INCONCLUSIVE
    line = 0.0 if rule == "below" else -collapse_fraction * lora_average
    return HOLDS if iv.high < line else CONTRADICTED if iv.low > line else INCONCLUSIVE


def robust_verdict(intervals: list[Interval], margin: float) -> str:
    """The verdict of "this setting does not matter" from the intervals of (setting - default) of every setting."""
    if any(iv.high < -margin or iv.low > margin for iv in intervals):
        return CONTRADICTED
    return HOLDS if intervals and all(-margin <= iv.low and iv.high <= margin for iv in intervals) else INCONCLUSIVE


def _published_delta(model: str | None, method: str) -> str:
    """The study's (method - LoRA) in points, on the run's model if the study has it, else on the 1.5B."""
    table = PUBLISHED_AVERAGE.get(published_model(model) or "DeepSeek-R1-Distill-Qwen-1.5B", {})
    return f"{table[method] - table['lora']:+.1f}" if method in table and "lora" in table else "—"


def _row(text: str, name: str, vs: str, study: str, iv: Interval, result: str) -> list[str]:
    return [text, name, vs, study, iv.points(), "/".join(map(str, iv.seeds)), str(iv.problems), result]


def _claim_rows(claim: Claim, groups: list[ConfigGroup], ivs: RunIntervals) -> list[list[str]]:
    # On an lr grid most same-lr pairs say nothing (both sides at the base, or both diverged): the finding is
    # read at LoRA's best lr (the fixed-lr comparison) and with each side at its own best (the tuned row).
    lora = _best_lr(groups, "lora", ivs)
    fixed_lr = _axis_value(lora.setting, "lr") if lora is not None else None
    rows = []
    for g in groups:
        key = (g.model, g.name)
        if g.method != claim.method or key not in ivs.vs_lora:
            continue
        if fixed_lr is not None and _axis_value(g.setting, "lr") not in (None, fixed_lr):
            continue
        ref = ivs.reference[key]
        iv = ivs.vs_lora[key]
        rows.append(_row(claim.text, g.name, ref[1], _published_delta(g.model, claim.method), iv,
                         verdict(claim.rule, iv, ivs.average[ref].estimate, ivs.cfg.collapse_fraction)))
    rows += _tuned_row(claim, groups, ivs)
    return rows or [[claim.text, claim.method, "lora", _published_delta(None, claim.method), "—", "—", "—", ABSENT]]


def _best_lr(groups: list[ConfigGroup], method: str, ivs: RunIntervals) -> ConfigGroup | None:
    """The method's configuration with the highest average among those an lr grid made (two or more)."""
    tried = [g for g in groups if g.method == method and _axis_value(g.setting, "lr") is not None
             and (g.model, g.name) in ivs.average]
    return max(tried, key=lambda g: ivs.average[(g.model, g.name)].estimate) if len(tried) > 1 else None


def _tuned_row(claim: Claim, groups: list[ConfigGroup], ivs: RunIntervals) -> list[list[str]]:
    """The claim with each side at its own best learning rate (picking the best flatters both a little)."""
    best, lora = _best_lr(groups, claim.method, ivs), _best_lr(groups, "lora", ivs)
    if best is None or lora is None or best.model != lora.model:
        return []
    a, b = ivs.scores[(best.model, best.name)], ivs.scores[(lora.model, lora.name)]
    iv = bootstrap(a, b, ivs.cfg)
    return [_row(claim.text + " (tuned lr)", best.name, lora.name, _published_delta(best.model, claim.method), iv,
                 verdict(claim.rule, iv, ivs.average[(lora.model, lora.name)].estimate, ivs.cfg.collapse_fraction))]


def _axis_value(setting: str, axis: str) -> str | None:
    """The value a sweep label's setting gives ``axis`` ('rank=16,alpha=32' -> rank: '16'), else None."""
    for part in re.split(r"[/,]", setting):
        name, _, value = part.partition("=")
        if name == axis:
            return value
    return None


def _ablation_rows(label: str, axis: str, default: str, groups: list[ConfigGroup], ivs: RunIntervals) -> list[list[str]]:
    text = f"ablation, {label}: LoRA within ±{100 * ivs.cfg.equivalence_margin:g} points of {axis}={default}"
    loras = [g for g in groups if g.method == "lora" and _axis_value(g.setting, axis) is not None
             and (g.model, g.name) in ivs.scores]
    base = next((g for g in loras if _axis_value(g.setting, axis) == default), None)
    if base is None or len(loras) < 2:
        return [[text, "lora", "—", "—", "—", "—", "—", ABSENT]]
    pairs = [(g, bootstrap(ivs.scores[(g.model, g.name)], ivs.scores[(base.model, base.name)], ivs.cfg))
             for g in loras if g is not base]
    result = robust_verdict([iv for _, iv in pairs], ivs.cfg.equivalence_margin)
    return [_row(text, g.name, base.name, "—", iv, result) for g, iv in pairs]


def findings_table(groups: list[ConfigGroup], ivs: RunIntervals) -> tuple[list[str], list[list[str]]]:
    """One row per (finding, configuration the run has for it), in the study's order."""
    rows = [r for claim in CLAIMS for r in _claim_rows(claim, groups, ivs)]
    rows += [r for label, axis, default in ABLATIONS for r in _ablation_rows(label, axis, default, groups, ivs)]
    return HEADER, rows
