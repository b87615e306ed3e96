"""The answer a run gives first: which configurations are best within noise and which are worse, at which
learning rates, with intervals.

Every configuration is compared with the one of highest average on the same model, paired by seed (t interval
over seeds, paired bootstrap beside it); Holm's correction runs over those comparisons. "worse": the
Holm-adjusted p is under 1 - confidence and the bootstrap interval is below 0; otherwise "best within noise".
With fewer than two shared seeds nothing is ranked, and the answer says which command can rank.
"""

from __future__ import annotations

from typing import Any

from rlvr.analysis.baseline import learning_rate
from rlvr.analysis.findings import RANKING_COMMAND
from rlvr.analysis.intervals import Interval, Key, RunIntervals, analysis_config, bootstrap, run_intervals
from rlvr.analysis.rundir import RunDir
from rlvr.analysis.significance import holm
from rlvr.analysis.study import ConfigGroup, group_trials, trial_rows
from rlvr.config.layout import RunLayout

BEST, WITHIN, WORSE, UNRANKED = "best", "best within noise", "worse", "one seed cannot rank"
HEADER = [
    "configuration",
    "lr",
    "seeds",
    "average [t interval]",
    "Δ best [t interval]",
    "bootstrap",
    "p (Holm)",
    "verdict",
]


def _average(iv: Interval) -> str:
    return f"{100 * iv.estimate:.1f} [{100 * iv.low:.1f}, {100 * iv.high:.1f}]"


def _lrs(run: RunDir, g: ConfigGroup) -> str:
    rates = sorted({lr for t in g.done if (lr := learning_rate(run.trial(t["trial_id"]))) is not None})
    return "/".join(f"{lr:g}" for lr in rates) or "—"


def answer(run: RunDir, rows: list[dict[str, Any]], ivs: RunIntervals) -> tuple[str, list[str], list[list[str]]]:
    """(the answer in one paragraph, table header, table rows best first)."""
    groups = [g for g in group_trials(rows) if (g.model, g.name) in ivs.scores]
    if not groups:
        return "No configuration has an evaluation yet.", HEADER, []
    alpha = 1 - ivs.cfg.confidence
    table, sentences = [], []
    for model in dict.fromkeys(g.model for g in groups):
        mine = sorted((g for g in groups if g.model == model), key=lambda g: -ivs.average[(g.model, g.name)].estimate)
        top: Key = (mine[0].model, mine[0].name)
        diffs: dict[Key, Interval] = {}
        for g in mine[1:]:
            key = (g.model, g.name)
            if set(ivs.scores[key].seeds) & set(ivs.scores[top].seeds):
                diffs[key] = bootstrap(ivs.scores[key], ivs.scores[top], ivs.cfg)
        tested = [k for k, iv in diffs.items() if iv.t is not None]
        adjusted = dict(zip(tested, holm([diffs[k].p_value(0.0) for k in tested])))
        alone = len(mine) == 1 and ivs.average[top].seeds > 1
        verdicts: dict[Key, str] = {top: BEST if tested or alone else UNRANKED}
        for key, iv in diffs.items():
            p = adjusted.get(key)
            verdicts[key] = UNRANKED if p is None else WORSE if p < alpha and iv.boot_high < 0 else WITHIN
        lrs = {(g.model, g.name): _lrs(run, g) for g in mine}
        for g in mine:
            key = (g.model, g.name)
            iv, verdict = diffs.get(key), verdicts.get(key, UNRANKED)
            if ivs.untrained(key):
                verdict += " (untrained: did not leave the base)"
            p = adjusted.get(key)
            table.append(
                [
                    g.name,
                    lrs[key],
                    str(ivs.average[key].seeds),
                    _average(ivs.average[key]),
                    "ref" if key == top else iv.points() if iv else "—",
                    iv.boot_points() if iv else "—",
                    "—" if p is None else f"{p:.3g}",
                    verdict,
                ]
            )
        sentences.append(_sentence(model, mine, verdicts, diffs, lrs, ivs))
    return " ".join(sentences), HEADER, table


def _sentence(
    model: str | None,
    mine: list[ConfigGroup],
    verdicts: dict[Key, str],
    diffs: dict[Key, Interval],
    lrs: dict[Key, str],
    ivs: RunIntervals,
) -> str:
    short = (model or "?").rstrip("/").rsplit("/", 1)[-1]
    named = [(g, (g.model, g.name)) for g in mine]
    if any(verdicts.get(k) == UNRANKED for _, k in named):
        return (
            f"On {short}, one seed per configuration cannot rank methods: run `{RANKING_COMMAND}` (each "
            "method's learning rate tuned on tuning seeds, then compared on fresh confirmation seeds)."
        )

    def at(g: ConfigGroup, k: Key) -> str:  # the lr, unless the configuration's name already says it
        return "" if "lr=" in g.setting else f"lr {lrs[k]}, "

    best = [f"{g.name} ({at(g, k)}{_average(ivs.average[k])})" for g, k in named if verdicts[k] in (BEST, WITHIN)]
    worse = [f"{g.name} ({at(g, k)}{diffs[k].points()} vs the best)" for g, k in named if verdicts[k] == WORSE]
    confidence = f"{100 * ivs.cfg.confidence:g}%"
    text = f"On {short}, best within noise ({confidence} t intervals over seeds, Holm-corrected): {', '.join(best)}."
    return text + (f" Worse: {', '.join(worse)}." if worse else " None is shown worse.")


def print_answer(run_dir: str, record: dict[str, Any] | None, console) -> None:
    """The answer of a run (a study's confirmation) on the terminal, then where the full report is."""
    from rich import box
    from rich.table import Table

    from rlvr.analysis.report import build_report  # the report opens with this answer: a cycle at the top

    run = RunDir(run_dir)
    rows = trial_rows(run)
    text, header, table_rows = answer(run, rows, run_intervals(run, rows, analysis_config(run)))
    console.print(f"\n[bold]Answer[/bold]: {text}")
    if table_rows:
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
        for col in header:
            table.add_column(col, no_wrap=True)
        for r in table_rows:
            table.add_row(*r)
        console.print(table)
    for name in (record or {}).get("edge", []):
        console.print(f"{name}: its best lr stayed on the grid's edge after every extension: not tuned; widen lrs.")
    out = RunLayout.report_dir(run_dir)
    html_path, _ = build_report(run_dir, out)
    console.print(f"report: [bold]{html_path}[/bold]")
