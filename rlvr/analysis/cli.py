"""The two analysis commands with plain arguments, for the `rlvr` CLI to wire up: `report RUN` and
`analyze spectral TARGET`."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from rlvr.analysis.report import build_report
from rlvr.analysis.rundir import Folder
from rlvr.analysis.spectral import DEFAULT_K, analyze_run, analyze_trial
from rlvr.config.layout import RunLayout, TrialLayout


def report_command(run_dir: str, out_dir: str | None = None) -> tuple[Path, Path]:
    """Build the report of ``run_dir``; by default into ``<run_dir>/report`` for a local run, else ``./report``."""
    if out_dir is None:
        out_dir = RunLayout.report_dir(run_dir)
    html_path, md_path = build_report(run_dir, out_dir)
    print(f"report: {html_path} and {md_path}")
    return html_path, md_path


def spectral_command(target: str, steps: list[int] | None = None, k: int = DEFAULT_K, device: str = "auto") -> pa.Table:
    """Spectral analysis of a trial directory (it has config.yaml) or of every trial of a run directory.

    ``device``: where the SVDs run (auto, cpu, cuda). One checkpoint of a 1.5B model (196 matrices) takes about
    20 minutes on one CPU thread; use a GPU for whole sweeps.
    """
    if k < 1:
        raise ValueError(f"k: {k} must be at least 1 (the dimension of W0's top singular subspace)")
    folder = Folder(target)
    # first: `rlvr train NAME` may have left a trial's files in the run directory NAME
    if folder.exists(RunLayout.TRIALS):
        table = analyze_run(target, k, steps, device)
        trials = len(set(table.column("trial_id").to_pylist())) if table.num_rows else 0
        where = f"analysis/spectral.parquet of {trials} trials"
    elif folder.exists(TrialLayout.CONFIG):
        table = analyze_trial(target, steps, k, device=device)
        where = f"{target}/analysis/spectral.parquet"
    else:
        raise FileNotFoundError(f"{target}: neither a trial directory (config.yaml) nor a run directory (trials/)")
    print(f"spectral: {table.num_rows} rows written to {where}")
    return table
