"""The post-sync probe passes matching log-probs and names the version and gap when they differ."""

from __future__ import annotations

import math

import pytest

from rlvr.models.tiny import build_tokenizer
from rlvr.sync.probe import StaleEngineError, SyncProbe, check_sync, probe_sequence, probe_tolerance


def test_probe_sequence_is_fixed_and_has_the_requested_length():
    tok = build_tokenizer()
    prompt, completion = probe_sequence(tok, 16)
    assert len(completion) == 16 and prompt
    assert probe_sequence(tok, 16) == (prompt, completion)
    with pytest.raises(ValueError, match="rollout.probe_tokens: 0 must be at least 1"):
        probe_sequence(tok, 0)


def test_matching_logprobs_pass_and_return_the_mean_gap():
    assert check_sync([-1.0, -2.0], [-1.0, -2.0006], 1e-3, 4) == pytest.approx(3e-4)
    # one token rounded differently (as bf16 logits do) does not fail a probe whose mean gap is small
    assert check_sync([-1.0, -2.0, -3.0, -4.0], [-1.0, -2.0, -3.0, -4.3], 0.15, 4) == pytest.approx(0.075)


@pytest.mark.parametrize(
    ("engine", "message"),
    [
        ([-1.0, -2.5], "policy v4: engine log-probs differ from the learner's by 0.25 on average over 2 probe tokens "
                       "\\(up to 0.5 at probe token 1"),
        ([-1.0, math.nan], "by nan on average .*up to nan at probe token 1"),
        ([-1.0], "policy v4: engine scored 1 probe tokens, learner 2"),
    ],
)
def test_stale_or_broken_engines_raise_with_version_and_gap(engine, message):
    with pytest.raises(StaleEngineError, match=message):
        check_sync(engine, [-1.0, -2.0], 1e-3, 4)


def test_tolerance_defaults_by_dtype_and_an_explicit_one_wins():
    assert probe_tolerance(None, "float32") == 1e-3
    assert probe_tolerance(None, "bfloat16") == 0.5
    assert probe_tolerance(0.5, "float32") == 0.5


def test_an_engine_that_did_not_move_while_the_learner_did_is_stale_even_within_tolerance():
    probe = SyncProbe(0.15)
    assert probe.check([[-1.0, -2.0]], [-1.05, -2.0], 0) == pytest.approx(0.025)
    # the learner moved by 0.01 on average: well within bf16's tolerance, but the engine repeats itself exactly
    with pytest.raises(StaleEngineError, match="policy v1: engine 0 scores the probe exactly as at the previous sync"):
        probe.check([[-1.0, -2.0]], [-1.04, -2.01], 1)


def test_an_engine_that_moved_passes_and_an_unchanged_policy_may_repeat():
    probe = SyncProbe(0.15)
    probe.check([[-1.0, -2.0], [-1.0, -2.0]], [-1.05, -2.0], 0)
    assert probe.check([[-1.01, -2.0], [-1.0, -2.02]], [-1.04, -2.01], 1) == pytest.approx(0.025)  # the worse engine
    assert probe.check([[-1.01, -2.0], [-1.0, -2.02]], [-1.04, -2.01], 1) == pytest.approx(0.025)  # a resent version
