"""A run's report: one self-contained HTML page (figures embedded as base64 PNG) and a Markdown twin.

Sections: the answer (best within noise and worse, rlvr.analysis.answer), overview, the study's table, the
starting point (base model's step-0 accuracy, each configuration's difference to it, learning rates), the study's
findings with verdicts, accuracy against trainable parameters, training curves, spectral analysis, the study's
published numbers, and the trials with their states and pools (which trials shared one). Each figure has a sentence
saying what to read from it. Every section renders from what the run has so far; what is missing is named, never
drawn as zero.
"""

from __future__ import annotations

import base64
import html
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rlvr.analysis import curves, plots
from rlvr.analysis.answer import answer
from rlvr.analysis.baseline import before_after
from rlvr.analysis.findings import RANKING_COMMAND, findings_table
from rlvr.analysis.intervals import RunIntervals, analysis_config, run_intervals
from rlvr.analysis.published import PUBLISHED_AVERAGE, STUDY, STUDY_BENCHMARKS
from rlvr.analysis.rundir import RunDir
from rlvr.analysis.study import MISSING, frontier_points, group_trials, study_table, trial_rows
from rlvr.config.layout import RunLayout
from rlvr.sweep.ledger import placement, shared_pools

CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1400px; padding: 0 1em; color: #222; }
table { border-collapse: collapse; font-size: 12px; margin: 0.5em 0 1em; }
th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: right; white-space: nowrap; }
th { background: #f3f3f3; } td:nth-child(-n+3) { text-align: left; }
img.plot { max-width: 100%; display: block; margin: 0.5em 0; border: 1px solid #eee; }
p.note { color: #666; font-size: 12px; }
p.caption { font-size: 13px; margin: 0 0 1.2em; max-width: 60em; }
"""


@dataclass
class Section:
    """One part of the report: prose, an optional table and figures (name -> PNG bytes)."""

    key: str
    title: str
    text: str = ""
    table: tuple[list[str], list[list[str]]] | None = None
    figures: dict[str, bytes] = field(default_factory=dict)
    captions: dict[str, str] = field(default_factory=dict)  # figure name -> what to read from it

    def html(self) -> str:
        body = [f'<section id="{self.key}"><h2>{html.escape(self.title)}</h2>']
        if self.text:
            body.append(f'<p class="note">{html.escape(self.text)}</p>')
        if self.table:
            head, rows = self.table
            body.append("<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>")
            body += ["<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows]
            body.append("</table>")
        for name, png in self.figures.items():
            data = base64.b64encode(png).decode()
            body.append(f'<img class="plot" alt="{html.escape(name)}" src="data:image/png;base64,{data}">')
            if name in self.captions:
                body.append(f'<p class="caption">{html.escape(self.captions[name])}</p>')
        return "\n".join(body + ["</section>"])

    def markdown(self) -> str:
        body = [f"## {self.title}", ""]
        if self.text:
            body += [self.text, ""]
        if self.table:
            head, rows = self.table
            body.append("| " + " | ".join(head) + " |")
            body.append("|" + "|".join("---" if i < 3 else "---:" for i in range(len(head))) + "|")
            body += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
            body.append("")
        for name in self.figures:
            body += [f"![{name}](figures/{name}.png)", ""] + (
                [self.captions[name], ""] if name in self.captions else []
            )
        return "\n".join(body)


def _short(model: str | None) -> str:
    return (model or "?").rstrip("/").rsplit("/", 1)[-1]


def _trial_names(rows: list[dict[str, Any]]) -> dict[str, tuple[str | None, str]]:
    """trial_id -> (model, configuration name) as the study table names it."""
    return {t["trial_id"]: (g.model, g.name) for g in group_trials(rows) for t in g.trials}


def _overview(run: RunDir, rows: list[dict[str, Any]]) -> Section:
    sweep = run.sweep_config() or {}
    counts = Counter(r.get("status") or "pending" for r in rows)
    states = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no trials yet"
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return Section(
        "overview",
        "Overview",
        f"Run {sweep.get('name', _short(run.uri))} at {run.uri}: {len(rows)} trials ({states}). Generated {when}.",
    )


def _answer(run: RunDir, rows: list[dict[str, Any]], ivs: RunIntervals) -> Section:
    text, header, table = answer(run, rows, ivs)
    return Section(
        "answer",
        "Answer",
        text + " Each configuration against the best one, paired by seed; the rest of the report has the details.",
        table=(header, table) if table else None,
    )


def _results(rows: list[dict[str, Any]], ivs: RunIntervals) -> Section:
    text = (
        "Accuracy in percent; mean ± std over seeds where several finished. 'running', 'pending' or 'failed' "
        f"mark configurations with no finished trial, {MISSING} a benchmark not evaluated. Δ LoRA: points of "
        f"average accuracy against LoRA on the same model, with its {_interval_words(ivs)}. Published: the study's "
        f"average ({STUDY}) over "
        f"{', '.join(f'{b}@{k}' for b, k in STUDY_BENCHMARKS.items())}; a row evaluated on other benchmarks "
        "marks it 'not comparable'."
    )
    return Section("results", "Results", text, table=study_table(rows, ivs.vs_lora))


def _baseline(run: RunDir, rows: list[dict[str, Any]]) -> Section:
    text = (
        "Average accuracy (percent) of the base model before any update (every trial's step-0 evaluation), then "
        "per configuration before → after training, the difference to the base and to LoRA in points, and the "
        "learning rate it trained at. A negative Δ base means training made the model worse than where it started."
    )
    return Section("baseline", "Against the starting model", text, table=before_after(run, rows))


def _interval_words(ivs: RunIntervals) -> str:
    c = ivs.cfg
    return (
        f"{100 * c.confidence:g}% t interval over seeds (n - 1 degrees of freedom), differences paired by seed "
        f"on the problems both sides evaluated; beside it a paired bootstrap over seeds and problems "
        f"({c.bootstrap_resamples} resamples, seed {c.bootstrap_seed}; sweep.yaml analysis section). With one seed "
        "only the bootstrap over problems exists"
    )


def one_seed_note(ivs: RunIntervals) -> str:
    """What a run with a single seed per configuration can and cannot say, and the command that can rank."""
    if any(iv.seeds > 1 for iv in ivs.vs_lora.values()):
        return ""
    return (
        f"One seed per method cannot rank methods: the spread between seeds is as large as most differences "
        f"here. `{RANKING_COMMAND}` tunes each method's learning rate on tuning seeds and compares them on fresh "
        "confirmation seeds. "
    )


def _findings(run: RunDir, rows: list[dict[str, Any]], ivs: RunIntervals) -> Section:
    rules = sorted(
        {cfg.reward.extraction for cfg in (run.trial(r["trial_id"]).config() for r in rows) if cfg is not None}
    )
    alpha = 1 - ivs.cfg.confidence
    text = (
        one_seed_note(ivs) + f"Each finding of {STUDY} with its verdict at this run's scale, from the "
        f"{_interval_words(ivs)}. p (Holm): the t test of the claim, Holm-corrected over every claim row. holds / "
        f"contradicted: Holm-adjusted p < {alpha:g} and the bootstrap interval on the same side; inconclusive "
        "otherwise; untrained: the method's (or LoRA's) difference to the base does not exclude 0, so no verdict "
        f"about capacity. Collapse: losing {100 * ivs.cfg.collapse_fraction:g}% of LoRA's average or more. "
        "study Δ: "
        "the published difference to LoRA in points, and whether it lies inside our interval. Ablations: an "
        "equivalence test (TOST) against the margin. Seeds: seeds both sides share. Answers extracted with the "
        f"{' and '.join(rules) or 'study'} rule (reward.extraction; `rlvr eval --trial` scores a checkpoint with "
        "its trial's rule)."
    )
    return Section("findings", "Findings", text, table=findings_table(group_trials(rows), ivs))


def _frontier(rows: list[dict[str, Any]], palette: dict[str, Any], ivs: RunIntervals) -> Section:
    points = frontier_points(rows)
    errors = {(str(m), n): (100 * iv.low, 100 * iv.high) for (m, n), iv in ivs.average.items()}
    if not points:
        return Section(
            "frontier",
            "Accuracy against trainable parameters",
            "No finished trial has both an evaluated average and a trainable-parameter count yet.",
        )
    return Section(
        "frontier",
        "Accuracy against trainable parameters",
        "Each point is one configuration (mean over seeds) with the interval of its average "
        f"({_interval_words(ivs)}); the shaded area lies under the Pareto frontier.",
        figures={"frontier": plots.frontier_figure(points, palette, errors)},
        captions={
            "frontier": "Read up for accuracy and left for fewer trained parameters: configurations on "
            "the green step are the ones no other configuration beats on both."
        },
    )


def _by_model(run: RunDir, rows: list[dict[str, Any]], read) -> dict[str, list[tuple[str, Any]]]:
    """model -> [(configuration name, what ``read`` returns for a trial)], trials where it returns nothing left out."""
    out: dict[str, list[tuple[str, Any]]] = {}
    for trial_id, (model, name) in sorted(_trial_names(rows).items(), key=lambda kv: kv[1][1]):
        data = read(run.trial(trial_id))
        if data is not None and len(data):
            out.setdefault(_short(model), []).append((name, data))
    return out


def _curves(run: RunDir, rows: list[dict[str, Any]], palette: dict[str, Any]) -> Section:
    series = _by_model(run, rows, lambda t: t.metrics())
    if not series:
        return Section("curves", "Training curves", "No trial has logged metrics yet.")
    figures, captions = {}, {}
    for model, s in series.items():
        figures[f"curves_{model}"] = curves.curves_figure(s, palette, model)
        captions[f"curves_{model}"] = (
            "Each line is a configuration's rolling mean over steps (seeds averaged); the band is the spread over "
            "seeds, or the rolling standard deviation with one seed. Read the trend of reward and accuracy and "
            "whether response length or entropy collapse; a wide band means a noisy run."
        )
        lengths = curves.length_figure(s, palette, model)
        if lengths is not None:
            figures[f"lengths_{model}"] = lengths
            captions[f"lengths_{model}"] = (
                "Response length (mean and longest completion of each step), the share cut off at the completion "
                "limit, and the mean penalty overlong shaping added to the rewards (0 without soft shaping): a "
                "policy that learns to stop in time shows falling truncation and a penalty rising towards 0."
            )
        multiples = curves.small_multiples_figure(s, palette, model)
        if multiples is not None:
            figures[f"reward_{model}"] = multiples
            captions[f"reward_{model}"] = (
                "The reward panel split by configuration: each in colour against all others in grey. A "
                "configuration whose line ends above the grey bundle learned faster than most."
            )
    text = (
        f"Smoothed over a rolling window of about a fifth of the run; configurations beyond "
        f"{curves.SMALL_MULTIPLES_ABOVE} also get one small panel each."
    )
    return Section("curves", "Training curves", text, figures=figures, captions=captions)


def _spectral(run: RunDir, rows: list[dict[str, Any]], palette: dict[str, Any]) -> Section:
    series = _by_model(run, rows, lambda t: t.spectral())
    if not series:
        return Section(
            "spectral",
            "Spectral analysis",
            "No spectral data in this run: run "
            f"`rlvr analyze spectral {run.uri}` to compute it from the trials' checkpoints.",
        )
    text = (
        "Means over adapted modules at each checkpoint. Energy share: ||U_k^T ΔW V_k||² / ||ΔW||² for W0's "
        "top-k singular vectors, against what a random ΔW puts there (dashed). SVD-initialised methods that "
        "collapse update inside the principal subspace; the study's claim is that RLVR learns off it."
    )
    figures = {f"spectral_{model}": plots.spectral_figure(s, palette, model) for model, s in series.items()}
    captions = {
        name: "Energy share above the dashed random line means the update concentrates in the base "
        "weights' principal directions; a rising effective rank or principal angle means it spreads "
        "and turns them."
        for name in figures
    }
    return Section("spectral", "Spectral analysis", text, figures=figures, captions=captions)


def _published() -> Section:
    rows = [
        [_short(model), method, f"{acc:.1f}"]
        for model, table in PUBLISHED_AVERAGE.items()
        for method, acc in sorted(table.items(), key=lambda kv: -kv[1])
    ]
    return Section(
        "published",
        "Published reference",
        f"Average accuracy over math benchmarks in {STUDY}.",
        table=(["model", "method", "average %"], rows),
    )


def _shared(ledger: dict[str, dict[str, Any]], rows: list[dict[str, Any]]) -> str:
    """Which trials were tenants of one pool together, one clause per pool and time."""
    labels = {r["trial_id"]: r.get("label") or r["trial_id"] for r in rows}
    shared = shared_pools(ledger)
    if not shared:
        return ""
    groups = "; ".join(f"{pool}: {', '.join(labels.get(t, t) for t in ids)}" for pool, ids in shared)
    return f"Shared pools (the same pool, attempts overlapping in time; pool/slot in the table): {groups}."


def _trials(run: RunDir, rows: list[dict[str, Any]]) -> Section:
    ledger = run.ledger()
    table = []
    for r in rows:
        entry = ledger.get(r["trial_id"], {})
        steps = r.get("steps_done", entry.get("step"))
        table.append(
            [
                r["trial_id"],
                r.get("label") or MISSING,
                r.get("status") or "pending",
                MISSING if steps is None else str(steps),
                str(entry.get("attempts", MISSING)),
                placement(entry),
                str(entry.get("error") or ""),
            ]
        )
    head = ["trial", "label", "status", "steps", "attempts", "pool", "error"]
    return Section("trials", "Trials", _shared(ledger, rows), table=(head, table))


def build_report(run_dir: str, out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``report.html`` (self-contained) and ``report.md`` (figures under ``figures/``) for a run.

    ``run_dir`` is a local path or a pyarrow filesystem URI; ``out_dir`` a local folder. Returns both paths.
    """
    run = RunDir(str(run_dir))
    marks = (RunLayout.LEDGER, RunLayout.TRIALS, RunLayout.RESULTS)
    if not run.exists("") or not any(run.exists(rel) for rel in marks):
        raise FileNotFoundError(f"{run_dir}: not a sweep run directory (expected ledger/, trials/ or results.parquet)")
    rows = trial_rows(run)
    palette = plots.colors([name for _, name in _trial_names(rows).values()])
    ivs = run_intervals(run, rows, analysis_config(run))
    sections = [
        _answer(run, rows, ivs),
        _overview(run, rows),
        _results(rows, ivs),
        _baseline(run, rows),
        _findings(run, rows, ivs),
        _frontier(rows, palette, ivs),
        _curves(run, rows, palette),
        _spectral(run, rows, palette),
        _published(),
        _trials(run, rows),
    ]
    out = Path(out_dir)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    for s in sections:
        for name, png in s.figures.items():
            (out / "figures" / f"{name}.png").write_bytes(png)
    title = f"rlvr report: {_short(run.uri)}"
    page = (
        f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1>\n"
        + "\n".join(s.html() for s in sections)
        + "\n</body></html>\n"
    )
    html_path, md_path = out / "report.html", out / "report.md"
    html_path.write_text(page)
    md_path.write_text(f"# {title}\n\n" + "\n\n".join(s.markdown() for s in sections) + "\n")
    return html_path, md_path
