"""The post-sync probe passes matching log-probs and names the version and gap when they differ."""

from __future__ import annotations

import math

import pytest

from rlvr.models.tiny import build_tokenizer
from rlvr.sync.probe import StaleEngineError, check_sync, probe_sequence


def test_probe_sequence_is_fixed_and_has_the_requested_length():
    tok = build_tokenizer()
    prompt, completion = probe_sequence(tok, 16)
    assert len(completion) == 16 and prompt
    assert probe_sequence(tok, 16) == (prompt, completion)
    with pytest.raises(ValueError, match="rollout.probe_tokens: 0 must be at least 1"):
        probe_sequence(tok, 0)


def test_matching_logprobs_pass_and_return_the_gap():
    assert check_sync([-1.0, -2.0], [-1.0, -2.0005], 1e-3, 4) == pytest.approx(5e-4)


@pytest.mark.parametrize(
    ("engine", "message"),
    [
        ([-1.0, -2.5], "policy v4: engine log-probs differ from the learner's by up to 0.5 \\(probe token 1"),
        ([-1.0, math.nan], "up to nan \\(probe token 1"),
        ([-1.0], "policy v4: engine scored 1 probe tokens, learner 2"),
    ],
)
def test_stale_or_broken_engines_raise_with_version_and_gap(engine, message):
    with pytest.raises(StaleEngineError, match=message):
        check_sync(engine, [-1.0, -2.0], 1e-3, 4)
