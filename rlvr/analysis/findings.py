"""The study's findings, each with a verdict at this run's scale from seed-paired tests, corrected for the
number of comparisons.

A verdict never claims more than the evidence supports:
- Each claim is a test of (method - LoRA), paired by seed, against a line: 0 for "above" (a method beats LoRA)
  and "below" (a bottleneck), minus ``collapse_fraction`` of LoRA's average for "collapse" (SVD inits). The
  p-value is Student's t over the per-seed differences (n - 1 degrees of freedom); Holm's correction runs over
  every claim row of the table (the family). A claim holds when its Holm-adjusted p is under 1 - confidence and
  the paired bootstrap interval over seeds and problems also lies wholly on the claimed side of the line; it is
  contradicted when both say the other side; inconclusive otherwise.
- Fewer than two shared seeds: no verdict ("one seed cannot rank"); a run of one seed per method says so.
- A method (or its LoRA reference) whose difference to the base does not exclude zero is "untrained": a verdict
  about its capacity would be about a model that never left its starting point.
- Each row also says whether the study's published difference lies inside our interval.
- "robust" (ablations, LoRA only): an equivalence test (TOST, rlvr.analysis.significance.equivalence) of every
  setting against the default within +-``equivalence_margin``; it holds only when every setting is shown
  equivalent (an intersection-union test, which needs no multiplicity correction), and says "not decidable at
  this noise" when the intervals are wider than the margin band.
A finding the run has no data for says so ("not in this run").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from rlvr.analysis.intervals import Interval, Key, RunIntervals, bootstrap
from rlvr.analysis.published import PUBLISHED_AVERAGE, published_model
from rlvr.analysis.significance import DIFFERENT, EQUIVALENT, UNDECIDABLE, equivalence, holm
from rlvr.analysis.study import ConfigGroup

Rule = Literal["above", "below", "collapse"]
HOLDS, CONTRADICTED, INCONCLUSIVE, ABSENT = "holds", "contradicted", "inconclusive", "not in this run"
ONE_SEED, UNTRAINED, LORA_UNTRAINED = "one seed cannot rank", "untrained", "LoRA untrained"
# The command whose runs can rank methods: learning rates tuned per method, then fresh confirmation seeds.
RANKING_COMMAND = "rlvr study demo-cpu"


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
ABLATIONS = (
    ("LoRA rank", "rank", "16"),
    ("learning rate", "lr", "1e-05"),
    ("loss", "loss", "dapo"),
    ("batch size (prompts per step)", "prompts_per_step", "16"),
)

HEADER = [
    "finding",
    "configuration",
    "vs",
    "seeds",
    "problems",
    "Δ here [t interval]",
    "bootstrap",
    "p (Holm)",
    "study Δ",
    "study Δ inside",
    "verdict",
]


def claim_line(rule: Rule, lora_average: float, collapse_fraction: float) -> float:
    """The value of (method - LoRA) the claim is tested against."""
    return -collapse_fraction * lora_average if rule == "collapse" else 0.0


def verdict(rule: Rule, iv: Interval, line: float, p_holm: float | None, alpha: float) -> str:
    """The verdict of one claim from its paired interval and its Holm-adjusted p-value against ``line``."""
    if iv.t is None or p_holm is None:
        return ONE_SEED
    if p_holm >= alpha:
        return INCONCLUSIVE
    claimed_above = rule == "above"
    if iv.boot_low > line and iv.estimate > line:
        return HOLDS if claimed_above else CONTRADICTED
    if iv.boot_high < line and iv.estimate < line:
        return CONTRADICTED if claimed_above else HOLDS
    return INCONCLUSIVE


@dataclass
class _Pending:
    """A claim row whose verdict waits for the family's Holm correction."""

    cells: list[str]
    rule: Rule
    iv: Interval
    line: float
    blocked: str | None  # UNTRAINED / LORA_UNTRAINED: no test is made


def _published_delta(model: str | None, method: str) -> float | None:
    """The study's (method - LoRA) in points, on the run's model if the study has it, else on the 1.5B."""
    table = PUBLISHED_AVERAGE.get(published_model(model) or "DeepSeek-R1-Distill-Qwen-1.5B", {})
    return table[method] - table["lora"] if method in table and "lora" in table else None


def _published_cells(model: str | None, method: str, iv: Interval | None) -> list[str]:
    delta = _published_delta(model, method)
    if delta is None:
        return ["—", "—"]
    inside = "—" if iv is None else "yes" if iv.contains(delta / 100) else "no"
    return [f"{delta:+.1f}", inside]


def _pending(text: str, key: Key, ref: Key, claim: Claim, iv: Interval, ivs: RunIntervals) -> _Pending:
    cells = [text, key[1], ref[1], str(iv.seeds), str(iv.problems), iv.points(), iv.boot_points(), ""]
    cells += _published_cells(key[0], claim.method, iv)
    blocked = UNTRAINED if ivs.untrained(key) else LORA_UNTRAINED if ivs.untrained(ref) else None
    return _Pending(
        cells, claim.rule, iv, claim_line(claim.rule, ivs.average[ref].estimate, ivs.cfg.collapse_fraction), blocked
    )


def _claim_rows(claim: Claim, groups: list[ConfigGroup], ivs: RunIntervals) -> list[_Pending | list[str]]:
    # On an lr grid most same-lr pairs say nothing (both sides at the base, or both diverged): the finding is
    # read at LoRA's best lr (the fixed-lr comparison) and with each side at its own best (the tuned row).
    lora = _best_lr(groups, "lora", ivs)
    fixed_lr = _axis_value(lora.setting, "lr") if lora is not None else None
    rows: list[_Pending | list[str]] = []
    for g in groups:
        key = (g.model, g.name)
        if g.method != claim.method or key not in ivs.vs_lora:
            continue
        if fixed_lr is not None and _axis_value(g.setting, "lr") not in (None, fixed_lr):
            continue
        rows.append(_pending(claim.text, key, ivs.reference[key], claim, ivs.vs_lora[key], ivs))
    rows += _tuned_row(claim, groups, ivs)
    return rows or [
        [claim.text, claim.method, "lora", "—", "—", "—", "—", "—"]
        + _published_cells(None, claim.method, None)
        + [ABSENT]
    ]


def _best_lr(groups: list[ConfigGroup], method: str, ivs: RunIntervals) -> ConfigGroup | None:
    """The method's configuration with the highest average among those an lr grid made (two or more)."""
    tried = [
        g
        for g in groups
        if g.method == method and _axis_value(g.setting, "lr") is not None and (g.model, g.name) in ivs.average
    ]
    return max(tried, key=lambda g: ivs.average[(g.model, g.name)].estimate) if len(tried) > 1 else None


def _tuned_row(claim: Claim, groups: list[ConfigGroup], ivs: RunIntervals) -> list[_Pending]:
    """The claim with each side at its own best learning rate (picking the best flatters both a little)."""
    best, lora = _best_lr(groups, claim.method, ivs), _best_lr(groups, "lora", ivs)
    if best is None or lora is None or best.model != lora.model:
        return []
    key, ref = (best.model, best.name), (lora.model, lora.name)
    if not set(ivs.scores[key].seeds) & set(ivs.scores[ref].seeds):
        return []
    iv = bootstrap(ivs.scores[key], ivs.scores[ref], ivs.cfg)
    return [_pending(claim.text + " (tuned lr)", key, ref, claim, iv, ivs)]


def _axis_value(setting: str, axis: str) -> str | None:
    """The value a sweep label's setting gives ``axis`` ('rank=16,alpha=32' -> rank: '16'), else None."""
    for part in re.split(r"[/,]", setting):
        name, _, value = part.partition("=")
        if name == axis:
            return value
    return None


def _ablation_rows(
    label: str, axis: str, default: str, groups: list[ConfigGroup], ivs: RunIntervals
) -> list[list[str]]:
    margin = ivs.cfg.equivalence_margin
    text = f"ablation, {label}: LoRA within ±{100 * margin:g} points of {axis}={default}"
    loras = [
        g
        for g in groups
        if g.method == "lora" and _axis_value(g.setting, axis) is not None and (g.model, g.name) in ivs.scores
    ]
    base = next((g for g in loras if _axis_value(g.setting, axis) == default), None)
    absent = [[text, "lora", "—", "—", "—", "—", "—", "—", "—", "—", ABSENT]]
    if base is None or len(loras) < 2:
        return absent
    base_scores = ivs.scores[(base.model, base.name)]
    pairs = [
        (g, bootstrap(ivs.scores[(g.model, g.name)], base_scores, ivs.cfg))
        for g in loras
        if g is not base and set(ivs.scores[(g.model, g.name)].seeds) & set(base_scores.seeds)
    ]
    if not pairs:
        return absent
    result = robust_verdict([iv for _, iv in pairs], margin, 1 - ivs.cfg.confidence)
    return [
        [text, g.name, base.name, str(iv.seeds), str(iv.problems), iv.points(), iv.boot_points(), "—", "—", "—", result]
        for g, iv in pairs
    ]


def robust_verdict(intervals: list[Interval], margin: float, alpha: float) -> str:
    """ "This setting does not matter", from the paired intervals of (setting - default) of every setting."""
    if any(iv.t is None for iv in intervals):
        return ONE_SEED
    tests = [equivalence(iv.t, margin, alpha) for iv in intervals]
    if DIFFERENT in tests:
        return CONTRADICTED
    if all(t == EQUIVALENT for t in tests):
        return HOLDS
    return UNDECIDABLE if UNDECIDABLE in tests else INCONCLUSIVE


def findings_table(groups: list[ConfigGroup], ivs: RunIntervals) -> tuple[list[str], list[list[str]]]:
    """One row per (finding, configuration the run has for it), in the study's order; Holm's correction over
    every claim row that is tested."""
    rows = [r for claim in CLAIMS for r in _claim_rows(claim, groups, ivs)]
    tested = [r for r in rows if isinstance(r, _Pending) and r.blocked is None and r.iv.t is not None]
    adjusted = dict(zip(map(id, tested), holm([r.iv.p_value(r.line) for r in tested])))
    alpha = 1 - ivs.cfg.confidence
    out = []
    for r in rows:
        if not isinstance(r, _Pending):
            out.append(r)
            continue
        p = adjusted.get(id(r))
        r.cells[7] = "—" if p is None else f"{p:.3g}"
        out.append(r.cells + [r.blocked or verdict(r.rule, r.iv, r.line, p, alpha)])
    out += [r for label, axis, default in ABLATIONS for r in _ablation_rows(label, axis, default, groups, ivs)]
    return HEADER, out
