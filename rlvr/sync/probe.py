"""The post-sync probe: proof that an engine serves the policy the learner just sent.

After every sync the engine scores a fixed probe sequence; its log-probabilities must match the learner's.
A silent sync failure (stale adapter, wrong base, wrong scaling) would otherwise train on off-policy
samples for the rest of the run.
"""

from __future__ import annotations

import math

PROBE_PROMPT = "Compute 12 + 30 and explain each step."
# Long enough for any tokenizer to yield the requested probe tokens.
PROBE_COMPLETION = " We add the tens, 10 + 30 = 40, then the ones, 2 + 0 = 2, so the answer is 42. " * 8


class StaleEngineError(RuntimeError):
    """The engine does not serve the version the learner sent."""


def probe_sequence(tokenizer, n_tokens: int) -> tuple[list[int], list[int]]:
    """A fixed (prompt ids, completion ids) pair with ``n_tokens`` completion tokens, for the given tokenizer."""
    if n_tokens < 1:
        raise ValueError(f"rollout.probe_tokens: {n_tokens} must be at least 1 to build a probe")
    prompt = tokenizer.encode(PROBE_PROMPT, add_special_tokens=False)
    completion = tokenizer.encode(PROBE_COMPLETION, add_special_tokens=False)
    if len(completion) < n_tokens:
        raise ValueError(f"rollout.probe_tokens: {n_tokens} exceeds the {len(completion)} tokens of the probe text")
    return prompt, completion[:n_tokens]


def check_sync(engine_score: list[float], learner_logprobs: list[float], tolerance: float, version: int) -> float:
    """The largest |engine - learner| log-probability gap; raises StaleEngineError above ``tolerance``."""
    if len(engine_score) != len(learner_logprobs):
        raise StaleEngineError(
            f"policy v{version}: engine scored {len(engine_score)} probe tokens, learner {len(learner_logprobs)}"
        )
    gaps = [abs(a - b) for a, b in zip(engine_score, learner_logprobs)]
    bad = [i for i, g in enumerate(gaps) if not g <= tolerance]  # `not <=` also catches NaN
    if bad:
        at = max(bad, key=lambda i: math.inf if math.isnan(gaps[i]) else gaps[i])
        raise StaleEngineError(
            f"policy v{version}: engine log-probs differ from the learner's by up to {gaps[at]:.3g} "
            f"(probe token {at}; rollout.probe_tolerance {tolerance:g}); the engine is not serving this version"
        )
    return max(gaps, default=0.0)
