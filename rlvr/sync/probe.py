"""The post-sync probe: proof that an engine serves the policy the learner just sent.

After every sync the engine scores a fixed probe sequence and the learner scores it too. Three checks
(docs/probe.md says what each can and cannot see):
- the mean |engine - learner| log-prob gap stays within ``ProbeLimits.gap`` (catches gross errors, and in fp32
  every error);
- the engine's change since the first sync (the base) follows the learner's: regressing one on the other over
  the probe tokens gives a slope of 1 for the right policy, the served fraction of the update for a wrong one
  (adapter scale, a missing module, no adapter); checked once the learner's change stands well above the bf16
  noise floor measured at the first sync (``ProbeLimits.snr``);
- an engine that scores the probe bit for bit as at the previous sync while the learner moved is stale.
A silent sync failure would otherwise train on off-policy samples for the rest of the run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from rlvr.config.trial_plan import PROBE_PROMPT

# Long enough for any tokenizer to yield MAX_PROBE_TOKENS: a byte-level BPE splits words, numbers and punctuation
# apart before merging, so even one trained on this very text yields 28 (GPT-2) to 39 (Qwen2) tokens per sentence.
PROBE_COMPLETION = " We add the tens, 10 + 30 = 40, then the ones, 2 + 0 = 2, so the answer is 42. " * 40
MAX_PROBE_TOKENS = 1024


class StaleEngineError(RuntimeError):
    """The engine does not serve the version the learner sent."""


@dataclass(frozen=True)
class ProbeLimits:
    gap: float
    """Largest mean |engine - learner| log-prob gap over the probe."""
    slope: float
    """Largest |slope - 1| of the engine's change since the first sync regressed on the learner's."""
    step_slope: float
    """Largest |slope - 1| of the engine's change since the previous sync regressed on the learner's."""
    snr: float = 10.0
    """The slope since the first sync is checked once the learner's change since then reaches this many noise
    floors (``noise_floor``): below it the learner's own rounding noise pulls the slope under 1."""
    step_snr: float = 5.0
    """As ``snr``, for the change since the previous sync."""


# Defaults per (model.dtype, sync route), from the right policy's measured statistics over 256 probe tokens
# (benchmarks/RESULTS.md, "Probe calibration" and "The probe's false alarms"). fp32 engine and learner agree
# to ~1e-5, so the gap alone catches every catalogued bug there. In bf16 each side rounds differently: the right
# policy's mean gap measured 0.012-0.054; once the learner moved 10 noise floors its slope 0.99-1.01, once it
# moved 5 floors since the previous sync its step slope 0.91-1.03 (a stale layer on the merged route: 0.59-0.85).
# fp16 rounds finer than bf16, so bf16's limits hold for it.
_FP32 = ProbeLimits(gap=1e-3, slope=0.04, step_slope=0.2)
_BF16_NATIVE = ProbeLimits(gap=0.1, slope=0.04, step_slope=0.3)
_BF16 = {"native": _BF16_NATIVE, "converted": _BF16_NATIVE, "merged": replace(_BF16_NATIVE, step_slope=0.15)}
DEFAULT_LIMITS = {"float32": {r: _FP32 for r in _BF16}, "bfloat16": _BF16, "float16": _BF16}
# A learner whose probe log-probs moved by this much on average since the last sync cannot leave the
# engine's bit-identical: its scores repeat exactly only when its weights did not change. Also the least
# change a slope is judged on, however low the noise floor (fp32).
MOVED = 1e-3
# The share of probe tokens each slope and the noise floor leave out: those where engine and learner disagree
# most. bf16 rounding can move one improbable token's log-prob by ~2 on one side alone (measured: -14.22 ->
# -12.35 where fp32 stayed at -14.2), and least squares weighs a token by its squared change: that one token
# outweighed the other 255 and read the right policy's slope as 0.77.
OUTLIERS = 0.02


def probe_limits(tolerance: float | None, dtype: str, route: str, slope: float | None = None) -> ProbeLimits:
    """The defaults for model.dtype and the sync route, with rollout.probe_tolerance (the gap) and
    rollout.probe_slope_tolerance (both slopes) when set."""
    d = DEFAULT_LIMITS[dtype][route]
    return replace(
        d,
        gap=d.gap if tolerance is None else tolerance,
        slope=d.slope if slope is None else slope,
        step_slope=d.step_slope if slope is None else slope,
    )


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


def _mean(xs: list[float]) -> float:
    return math.nan if any(math.isnan(x) for x in xs) else sum(xs) / max(len(xs), 1)


def _rms(xs: list[float]) -> float:
    return math.sqrt(_mean([x * x for x in xs]))


def _sub(a: list[float], b: list[float]) -> list[float]:
    return [x - y for x, y in zip(a, b)]


def _agreeing(engine: list[float], learner: list[float]) -> list[int]:
    """The probe tokens but the ``OUTLIERS`` share (rounded down) where engine and learner differ most."""
    drop = int(OUTLIERS * len(learner))
    # a NaN sorts first: it is never left out, so it reaches the slope and fails it
    return sorted(
        range(len(learner)),
        key=lambda i: -math.inf if math.isnan(engine[i] - learner[i]) else abs(engine[i] - learner[i]),
    )[: len(learner) - drop]


def noise_floor(engine_score: list[float], learner_logprobs: list[float]) -> float:
    """The rms engine - learner difference at one policy over the agreeing tokens: the two sides' rounding noise.
    A log-prob change on either side carries about this much noise again (it is rounded anew)."""
    keep = _agreeing(engine_score, learner_logprobs)
    return _rms([engine_score[i] - learner_logprobs[i] for i in keep])


def slope(engine_change: list[float], learner_change: list[float]) -> tuple[float, float]:
    """Least-squares slope through the origin of the engine's per-token change on the learner's over the
    agreeing tokens, and the learner's rms change over them."""
    keep = _agreeing(engine_change, learner_change)
    den = sum(learner_change[i] ** 2 for i in keep)
    s = sum(engine_change[i] * learner_change[i] for i in keep) / den if den > 0 else math.nan
    return s, math.sqrt(den / max(len(keep), 1))


def check_sync(engine_score: list[float], learner_logprobs: list[float], tolerance: float, version: int) -> float:
    """The mean |engine - learner| log-prob gap; raises StaleEngineError above ``tolerance``.

    The mean over the probe, not the largest gap: in bf16 a single token can differ by ~0.9 when its logit
    rounds differently on the two sides, while the mean over 256 tokens stays near 0.02 for the right policy.
    """
    if len(engine_score) != len(learner_logprobs):
        raise StaleEngineError(
            f"policy v{version}: engine scored {len(engine_score)} probe tokens, learner {len(learner_logprobs)}"
        )
    gaps = [abs(a - b) for a, b in zip(engine_score, learner_logprobs)]
    mean = _mean(gaps)
    if not mean <= tolerance:  # `not <=` also catches NaN
        at = max(range(len(gaps)), key=lambda i: math.inf if math.isnan(gaps[i]) else gaps[i])
        raise StaleEngineError(
            f"policy v{version}: engine log-probs differ from the learner's by {mean:.3g} on average over "
            f"{len(gaps)} probe tokens (up to {gaps[at]:.3g} at probe token {at}; rollout.probe_tolerance "
            f"{tolerance:g}); the engine is not serving this version"
        )
    return mean


class SyncProbe:
    """Checks every sync of a trial against the learner, the first sync seen (the base) and the previous one.

    The first sync is the reference for the slope and gives each engine's noise floor: the base at step 0, the
    restored policy after a resume. State advances only when every engine passed, so a flagged sync leaves the
    probe as it was.
    """

    def __init__(self, limits: ProbeLimits):
        self.limits = limits
        self._first: tuple[list[float], list[list[float]]] | None = None
        self._previous: tuple[list[float], list[list[float]]] | None = None
        self._floors: list[float] = []

    def statistics(self, engine_scores: list[list[float]], learner_logprobs: list[float]) -> dict[str, float]:
        """The worst engine's gap, slopes and noise floor, and how far the learner moved in noise floors over the
        agreeing tokens (the calibration's figures)."""
        out = {"gap": max(_mean([abs(a - b) for a, b in zip(s, learner_logprobs)]) for s in engine_scores)}
        if self._floors:
            out["floor"] = max(self._floors)
        for key, _, _, _, judged in self._slopes(engine_scores, learner_logprobs):
            s, moved, floor = max(judged, key=lambda j: abs(j[0] - 1))
            out[f"{key}moved"], out[f"{key}slope"] = moved / floor if floor > 0 else math.inf, s
        return out

    def _slopes(self, engine_scores: list[list[float]], learner_logprobs: list[float]):
        """Per reference (the first sync, the previous one): its name, limits and, per engine, its slope, the
        learner's rms change over the tokens it used and the engine's noise floor."""
        if self._first is None:
            return
        lim = self.limits
        for key, since, (learner_then, engines_then), tolerance, snr in (
            ("", "the first sync", self._first, lim.slope, lim.snr),
            ("step_", "the previous sync", self._previous, lim.step_slope, lim.step_snr),
        ):
            change = _sub(learner_logprobs, learner_then)
            judged = [
                (*slope(_sub(now, then), change), floor)
                for now, then, floor in zip(engine_scores, engines_then, self._floors)
            ]
            yield key, since, tolerance, snr, judged

    def check(self, engine_scores: list[list[float]], learner_logprobs: list[float], version: int) -> float:
        """The largest mean gap over the engines; raises StaleEngineError if any engine fails a check."""
        gap = max(check_sync(got, learner_logprobs, self.limits.gap, version) for got in engine_scores)
        if self._previous is not None:
            learner_before, engines_before = self._previous
            moved = _mean([abs(a - b) for a, b in zip(learner_logprobs, learner_before)])
            for i, (now, before) in enumerate(zip(engine_scores, engines_before)):
                if moved > MOVED and now == before:
                    raise StaleEngineError(
                        f"policy v{version}: engine {i} scores the probe exactly as at the previous sync while the "
                        f"learner's log-probs moved by {moved:.3g} on average; the engine still serves the old version"
                    )
            self._check_slopes(engine_scores, learner_logprobs, version)
        state = (list(learner_logprobs), [list(s) for s in engine_scores])
        if self._first is None:
            self._first = state
            self._floors = [noise_floor(s, learner_logprobs) for s in engine_scores]
        self._previous = state
        return gap

    def _check_slopes(self, engine_scores: list[list[float]], learner_logprobs: list[float], version: int) -> None:
        for _, since, tolerance, snr, judged in self._slopes(engine_scores, learner_logprobs):
            for i, (s, moved, floor) in enumerate(judged):
                if moved >= max(snr * floor, MOVED) and not abs(s - 1) <= tolerance:
                    raise StaleEngineError(
                        f"policy v{version}: engine {i}'s log-probs moved {s:.3g}x as far as the learner's since "
                        f"{since} (learner moved {moved:.3g} rms against a noise floor of {floor:.3g}, over the "
                        f"{len(learner_logprobs) - int(OUTLIERS * len(learner_logprobs))} of {len(learner_logprobs)} "
                        f"probe tokens where the two agree best; limit 1 +- "
                        f"{tolerance:g}, rollout.probe_slope_tolerance); the engine serves a different update "
                        "(adapter scale, a missing module or layer, no adapter, a stale version)"
                    )
