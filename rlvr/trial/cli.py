"""Plain-argument function behind ``rlvr train`` (and ray_jobs/trial.py)."""

from __future__ import annotations

import json

from rlvr.config.loader import load_trial


def train_command(config: str, overrides: list[str]) -> dict:
    """Run or resume one trial in ``<output_dir>/<name>``; prints and returns its final metrics."""
    from rlvr.trial.runner import run_trial

    cfg = load_trial(config, overrides)
    trial_dir = f"{cfg.output_dir.rstrip('/')}/{cfg.name}"
    final = run_trial(cfg, trial_dir)
    print(json.dumps({"trial_dir": trial_dir, **final}, indent=2, default=str))
    return final
