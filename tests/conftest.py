"""Session-wide test environment: no Ray auth, the shared data directory, one private local Ray on request, and the
cold trial runs several modules compare with."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RLVR_DATA_DIR", str((REPO / ".." / "shared" / "data").resolve()))


@pytest.fixture(scope="session")
def local_ray():
    """A private local Ray (never another cluster on the machine), shut down after the session."""
    import ray

    from rlvr.trial.local_ray import init_local_ray

    if not ray.is_initialized():
        init_local_ray(num_cpus=8)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def cold_run(local_ray, tmp_path_factory):
    """``cold_run(method)``: the directory of ``two_step_trial(method)`` (tests/trial/trial_helpers.py) run cold, on
    parts of its own, once per session at its first request; request it before a pool holds the local Ray's CPUs.
    The pool tests and the methods test share these runs (COLD_METHODS)."""
    from rlvr.trial.runner import run_trial
    from tests.trial.trial_helpers import two_step_trial

    runs: dict[str, Path] = {}

    def run(method: str) -> Path:
        if method not in runs:
            trial_dir = tmp_path_factory.mktemp(f"cold-{method}")
            assert run_trial(two_step_trial(method), str(trial_dir))["steps_done"] == 2
            runs[method] = trial_dir
        return runs[method]

    return run


@pytest.fixture(scope="module")
def no_shared_ray():
    """For a module that starts clusters of its own: the shared local Ray is stopped meanwhile, then restarted."""
    import ray

    from rlvr.trial.local_ray import init_local_ray

    shared = ray.is_initialized()
    if shared:
        ray.shutdown()
    yield
    if shared:
        init_local_ray(num_cpus=8)
