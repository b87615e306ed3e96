"""The load-back check can fail: an export that is not the trial's policy is caught."""

from __future__ import annotations

import pytest

from rlvr.export import verify
from rlvr.export.source import TrialPolicy
from rlvr.models.loading import load_tokenizer

from .conftest import fake_trial


def test_an_export_of_another_policy_fails_the_load_back_check(tmp_path):
    trial_dir = str(fake_trial(tmp_path / "trial", "lora", scale=0.2))
    older = TrialPolicy.load(trial_dir, step=2)
    older.write_merged(tmp_path / "step2")
    newest = TrialPolicy.load(trial_dir)
    probe = verify.make_probe(newest.cfg, load_tokenizer(newest.cfg.model, newest.base_path), newest.policy.model)
    with pytest.raises(
        verify.ExportMismatch, match=r"with transformers, the export does not reproduce .* differ from the trial policy"
    ):
        verify.check_merged(str(tmp_path / "step2"), older.cfg, probe)
