"""Session-wide test environment: no Ray auth, the shared data directory, and one private local Ray on request."""

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
