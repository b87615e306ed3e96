"""Scoring one completion against one gold answer with math-verify. Runs inside a verifier subprocess.

math-verify's own timeouts use SIGALRM, which breaks off the main thread; here they are switched off and the
pool that owns the subprocess enforces the deadline by killing it. math-verify is imported lazily so that the
parent process (a Ray actor, the trial controller) never pays for sympy.
"""

from __future__ import annotations

import logging
import re
from functools import cache, lru_cache

from rlvr.rewards.format import boxed_answers, format_ok

MAX_EXTRACTED_CHARS = 1000  # the extracted answer travels back to the parent and into eval tables
EXTRACTIONS = ("study", "lenient")


@cache
def extraction_config(name: str) -> tuple:
    """math-verify extraction targets for a completion.

    study: the study's reward (open-r1's accuracy_reward): LaTeX only, boxed answers first, nothing without an
    anchor. lenient: also 'Answer: x' lines and bare expressions, for prompts that do not ask for a box.
    """
    from math_verify import ExprExtractionConfig, LatexExtractionConfig
    from math_verify.parser import NormalizationConfig

    if name == "study":
        norm = NormalizationConfig(nits=False, malformed_operators=False, basic_latex=True, boxed="all", units=True)
        return (
            LatexExtractionConfig(normalization_config=norm, boxed_match_priority=0, try_extract_without_anchor=False),
        )
    if name == "lenient":
        return (LatexExtractionConfig(boxed_match_priority=0), ExprExtractionConfig())
    raise ValueError(f"reward.extraction: {name!r} is unknown; allowed: {', '.join(EXTRACTIONS)}")


def quiet_math_verify() -> None:
    # It warns on every call that its timeouts are off; the pool's deadline replaces them.
    logging.getLogger("math_verify").setLevel(logging.ERROR)


_SPACE = re.compile(r"\s+")
_TEXT = re.compile(r"\\(?:text|textbf|mathrm|mbox)\{([^{}]*)\}")


def normalise(answer: str) -> str:
    """A string form for answers sympy cannot read: no dollars, text wrappers, spacing macros or case."""
    s = _TEXT.sub(r"\1", answer)
    for junk in ("$", "\\left", "\\right", "\\!", "\\,", "\\;", "\\ "):
        s = s.replace(junk, "")
    return _SPACE.sub("", s).rstrip(".").lower()


@lru_cache(maxsize=8192)
def parse_gold(gold: str) -> tuple | None:
    """The parsed gold answer, or None when math-verify yields no expression from it, only its raw text
    (then a normalised string match decides)."""
    from math_verify import parse

    text = gold.strip().strip("$")
    parsed = parse(text if "\\boxed" in text else f"\\boxed{{{text}}}", parsing_timeout=None)
    return tuple(parsed) if any(not isinstance(p, str) for p in parsed) else None


def score(completion: str, gold: str, truncated: bool, extraction: str) -> dict:
    """Correctness, extracted answer, gold fallback and format of one completion (RewardResult's fields)."""
    from math_verify import parse, verify

    pred = parse(
        completion, extraction_config=extraction_config(extraction), extraction_mode="first_match", parsing_timeout=None
    )
    extracted = str(pred[-1]) if pred else None
    gold_parsed = parse_gold(gold)
    if gold_parsed is None:
        candidates = boxed_answers(completion)[-1:] or ([extracted] if extracted else [])
        correct = any(normalise(c) == normalise(gold) for c in candidates)
    else:
        correct = bool(pred) and verify(list(gold_parsed), pred, timeout_seconds=None)
    return {
        "correct": bool(correct),
        "extracted": extracted[:MAX_EXTRACTED_CHARS] if extracted else None,
        "gold_fallback": gold_parsed is None,
        "format_ok": format_ok(completion, truncated),
    }
