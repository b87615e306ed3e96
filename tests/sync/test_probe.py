"""The post-sync probe passes matching log-probs and names the version and gap when they differ."""

from __future__ import annotations

import math

import pytest

from rlvr.models.tiny import build_tokenizer
from rlvr.sync.probe import (
    MAX_PROBE_TOKENS,
    PROBE_COMPLETION,
    PROBE_PROMPT,
    ProbeLimits,
    StaleEngineError,
    SyncProbe,
    check_sync,
    probe_limits,
    probe_sequence,
)

QWEN2_SPLIT = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
    r"""|\s*[\r\n]+|\s+(?!\S)|\s+"""
)
GPT2_SPLIT = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
LIMITS = ProbeLimits(gap=0.15, slope=0.03, step_slope=0.2)


def test_probe_sequence_is_fixed_and_has_the_requested_length():
    tok = build_tokenizer()
    prompt, completion = probe_sequence(tok, 16)
    assert len(completion) == 16 and prompt
    assert probe_sequence(tok, 16) == (prompt, completion)
    with pytest.raises(ValueError, match="rollout.probe_tokens: 0 must be at least 1"):
        probe_sequence(tok, 0)


@pytest.mark.parametrize("split", [QWEN2_SPLIT, GPT2_SPLIT], ids=["qwen2", "gpt2"])
def test_the_probe_text_yields_the_most_tokens_allowed_even_for_a_bpe_trained_on_it(split):
    # The worst case for the probe's length: byte-level BPE (Qwen2's digit-splitting or GPT-2's pre-tokenizer)
    # with merges learnt from the probe text itself, so it packs the text into as few tokens as it can.
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(split), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    trainer = trainers.BpeTrainer(vocab_size=4096, initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator([PROBE_PROMPT, PROBE_COMPLETION], trainer)
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe)
    assert len(tok.encode(" We add the tens,", add_special_tokens=False)) == 5, "the merges were learnt"
    prompt, completion = probe_sequence(tok, MAX_PROBE_TOKENS)
    assert len(completion) == MAX_PROBE_TOKENS and prompt


def test_matching_logprobs_pass_and_return_the_mean_gap():
    assert check_sync([-1.0, -2.0], [-1.0, -2.0006], 1e-3, 4) == pytest.approx(3e-4)
    # one token rounded differently (as bf16 logits do) does not fail a probe whose mean gap is small
    assert check_sync([-1.0, -2.0, -3.0, -4.0], [-1.0, -2.0, -3.0, -4.3], 0.15, 4) == pytest.approx(0.075)


@pytest.mark.parametrize(
    ("engine", "message"),
    [
        (
            [-1.0, -2.5],
            "policy v4: engine log-probs differ from the learner's by 0.25 on average over 2 probe tokens "
            "\\(up to 0.5 at probe token 1",
        ),
        ([-1.0, math.nan], "by nan on average .*up to nan at probe token 1"),
        ([-1.0], "policy v4: engine scored 1 probe tokens, learner 2"),
    ],
)
def test_stale_or_broken_engines_raise_with_version_and_gap(engine, message):
    with pytest.raises(StaleEngineError, match=message):
        check_sync(engine, [-1.0, -2.0], 1e-3, 4)


def test_limits_default_by_dtype_and_route_and_explicit_ones_win():
    assert probe_limits(None, "float32", "native").gap == 1e-3
    assert probe_limits(None, "bfloat16", "merged").gap == probe_limits(None, "float16", "merged").gap > 1e-3
    explicit = probe_limits(0.5, "float32", "native", slope=0.3)
    assert (explicit.gap, explicit.slope, explicit.step_slope) == (0.5, 0.3, 0.3)


def scores(base, change, factor=1.0):
    return [b + factor * c for b, c in zip(base, change)]


BASE = [-1.0, -2.0, -0.5, -3.0] * 4
CHANGE = [0.3, -0.2, 0.1, -0.4] * 4  # rms 0.27: the learner moved measurably


def test_an_engine_that_moved_a_fraction_of_the_learners_change_fails_even_within_the_gap_tolerance():
    probe = SyncProbe(LIMITS)
    probe.check([BASE], BASE, 0)
    assert probe.check([scores(BASE, CHANGE, 1.02)], scores(BASE, CHANGE), 1) < 0.01  # within bf16 rounding
    # an adapter served at 0.8x its scale: the mean gap (0.05) passes, the slope (0.8) does not
    with pytest.raises(StaleEngineError, match="policy v2: engine 0's log-probs moved 0.8x as far as the learner's"):
        probe.check([scores(BASE, CHANGE, 0.8)], scores(BASE, CHANGE), 2)
    # the flagged sync left the probe as it was: the right engine passes the next try
    assert probe.check([scores(BASE, CHANGE)], scores(BASE, CHANGE), 2) == 0


NOISE = [0.02, -0.02] * 8  # bf16 rounding: the engine and the learner differ by 0.02 rms at the same policy


def test_the_slope_is_checked_only_once_the_learner_moved_well_above_the_noise_floor():
    probe = SyncProbe(LIMITS)
    probe.check([scores(BASE, NOISE)], BASE, 0)
    small = [c / 10 for c in CHANGE]  # rms 0.027, 1.4 noise floors: rounding alone could tilt its slope
    assert probe.check([scores(scores(BASE, NOISE), small, 0.5)], scores(BASE, small), 1) < LIMITS.gap
    # rms 0.27, 13.7 noise floors (snr 10): measurable
    with pytest.raises(
        StaleEngineError,
        match="moved 0.5x as far .*learner moved 0.274 rms against a noise floor "
        "of 0.02, over the 16 of 16 probe tokens where the two agree best",
    ):
        probe.check([scores(scores(BASE, NOISE), CHANGE, 0.5)], scores(BASE, CHANGE), 2)


def test_one_token_rounded_far_off_on_one_side_does_not_tilt_the_slope():
    # bf16 moved one improbable token's log-prob by 1.9 on the learner's side alone (measured in the rehearsal
    # trial): least squares over every token would read the engine as serving 0.5x the update
    probe = SyncProbe(LIMITS)
    base, change = BASE * 4, CHANGE * 4  # 64 tokens: the slope leaves out the 1 (2%) most at odds
    probe.check([base], base, 0)
    learner = scores(base, change)
    learner[1] += 1.9
    assert probe.check([scores(base, change)], learner, 1) == pytest.approx(1.9 / 64)


def test_an_engine_that_did_not_move_while_the_learner_did_is_stale_even_within_tolerance():
    probe = SyncProbe(LIMITS)
    assert probe.check([[-1.0, -2.0]], [-1.05, -2.0], 0) == pytest.approx(0.025)
    # the learner moved by 0.01 on average: well within bf16's tolerance, but the engine repeats itself exactly
    with pytest.raises(StaleEngineError, match="policy v1: engine 0 scores the probe exactly as at the previous sync"):
        probe.check([[-1.0, -2.0]], [-1.04, -2.01], 1)


def test_an_engine_that_moved_passes_and_an_unchanged_policy_may_repeat():
    probe = SyncProbe(LIMITS)
    probe.check([[-1.0, -2.0], [-1.0, -2.0]], [-1.05, -2.0], 0)
    assert probe.check([[-1.01, -2.0], [-1.0, -2.02]], [-1.04, -2.01], 1) == pytest.approx(0.025)  # the worse engine
    assert probe.check([[-1.01, -2.0], [-1.0, -2.02]], [-1.04, -2.01], 1) == pytest.approx(0.025)  # a resent version
