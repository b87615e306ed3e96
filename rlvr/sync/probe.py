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


def model_logprobs(model, prompt: list[int], completion: list[int]) -> list[float]:
    """The log-probabilities a causal LM gives ``completion`` after ``prompt`` (temperature 1, fp32 softmax): the
    probe scored by a model in this process (the HF engine, an export's load-back check)."""
    import torch

    ids = torch.tensor([prompt + completion], device=next(model.parameters()).device)
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0, len(prompt) - 1 : -1].float()
    return logits.log_softmax(-1).gather(-1, ids[0, len(prompt) :, None])[:, 0].tolist()


# Default rollout.probe_tolerance per model.dtype: the largest mean |engine - learner| gap over the probe.
# fp32 engine and learner agree to ~1e-5. In bf16 each side rounds differently (logits to 8 bits, a merged
# weight once, an fp32 adapter path on the learner only): on the demo trial the right policy's mean gap over
# 16 probe tokens measured 0.02-0.17 in 8 steps of each route, one token alone up to ~0.9 (benchmarks/
# RESULTS.md, "GPU rehearsal"). 0.5 leaves 3x margin; a stale engine is caught by SyncProbe's second check,
# not by this bound. fp16 rounds finer than bf16, so bf16's bound holds for it.
DEFAULT_TOLERANCE = {"float32": 1e-3, "bfloat16": 0.5, "float16": 0.5}
# A learner whose probe log-probs moved by this much on average since the last sync cannot leave the
# engine's bit-identical: its scores repeat exactly only when its weights did not change.
MOVED = 1e-3


def probe_tolerance(tolerance: float | None, dtype: str) -> float:
    """rollout.probe_tolerance, or the default for model.dtype when it is None."""
    return DEFAULT_TOLERANCE[dtype] if tolerance is None else tolerance


def _mean_gap(gaps: list[float]) -> float:
    return math.nan if any(math.isnan(g) for g in gaps) else sum(gaps) / max(len(gaps), 1)


def check_sync(engine_score: list[float], learner_logprobs: list[float], tolerance: float, version: int) -> float:
    """The mean |engine - learner| log-probability gap; raises StaleEngineError above ``tolerance``.

    The mean over the probe, not the largest gap: in bf16 a single token can differ by ~0.9 when its logit
    rounds differently on the two sides, while the mean stays below ~0.2 for the right policy.
    """
    if len(engine_score) != len(learner_logprobs):
        raise StaleEngineError(
            f"policy v{version}: engine scored {len(engine_score)} probe tokens, learner {len(learner_logprobs)}"
        )
    gaps = [abs(a - b) for a, b in zip(engine_score, learner_logprobs)]
    mean = _mean_gap(gaps)
    if not mean <= tolerance:  # `not <=` also catches NaN
        at = max(range(len(gaps)), key=lambda i: math.inf if math.isnan(gaps[i]) else gaps[i])
        raise StaleEngineError(
            f"policy v{version}: engine log-probs differ from the learner's by {mean:.3g} on average over "
            f"{len(gaps)} probe tokens (up to {gaps[at]:.3g} at probe token {at}; rollout.probe_tolerance "
            f"{tolerance:g}); the engine is not serving this version"
        )
    return mean


class SyncProbe:
    """Checks every sync of a trial: each engine is close to the learner, and moved when the learner did.

    The second check catches an engine left one version behind even when the step was smaller than the
    bf16 tolerance: a stale engine scores the probe bit for bit as at the previous sync.
    """

    def __init__(self, tolerance: float):
        self.tolerance = tolerance
        self._previous: tuple[list[float], list[list[float]]] | None = None

    def check(self, engine_scores: list[list[float]], learner_logprobs: list[float], version: int) -> float:
        """The largest mean gap over the engines; raises StaleEngineError if any engine is stale."""
        gap = max(check_sync(got, learner_logprobs, self.tolerance, version) for got in engine_scores)
        if self._previous is not None:
            learner_before, engines_before = self._previous
            moved = _mean_gap([abs(a - b) for a, b in zip(learner_logprobs, learner_before)])
            for i, (now, before) in enumerate(zip(engine_scores, engines_before)):
                if moved > MOVED and now == before:
                    raise StaleEngineError(
                        f"policy v{version}: engine {i} scores the probe exactly as at the previous sync while the "
                        f"learner's log-probs moved by {moved:.3g} on average; the engine still serves the old version"
                    )
        self._previous = (list(learner_logprobs), [list(s) for s in engine_scores])
        return gap
