"""Plain-argument function behind ``rlvr train`` (and ray_jobs/trial.py)."""

from __future__ import annotations

import json

from rlvr.config.loader import load_trial
from rlvr.trial.local_ray import init_local_ray


def train_command(config: str, overrides: list[str], verbose: bool = True) -> dict:
    """Run or resume one trial in ``<output_dir>/<name>``; prints and returns its final metrics. Without
    ``verbose``, the output of a local Ray's workers (vLLM, tokenizer warnings) stays in Ray's session logs."""
    import ray

    from rlvr.trial.runner import run_trial  # torch: after the config is loaded and checked

    cfg = load_trial(config, overrides)
    if not ray.is_initialized():
        init_local_ray(log_to_driver=verbose)
    trial_dir = f"{cfg.output_dir.rstrip('/')}/{cfg.name}"
    final = run_trial(cfg, trial_dir)
    print(json.dumps({"trial_dir": trial_dir, **final}, indent=2, default=str))
    return final
