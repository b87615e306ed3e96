"""The reference run several trial tests compare against: the small trial, uninterrupted."""

from __future__ import annotations

import pytest

from .trial_helpers import STEPS, small_trial


@pytest.fixture(scope="session")
def uninterrupted(local_ray, tmp_path_factory):
    from rlvr.trial.runner import run_trial

    trial_dir = tmp_path_factory.mktemp("uninterrupted")
    final = run_trial(small_trial(), str(trial_dir))
    assert final["steps_done"] == STEPS
    return trial_dir
