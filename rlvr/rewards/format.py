"""Answer-shape checks on completion text: boxed answers with balanced braces, and the optional format reward.

Pure string scans (linear in the text, no regex backtracking), so they are safe on adversarial input.
"""

from __future__ import annotations

BOXED = "\\boxed{"
THINK_OPEN, THINK_CLOSE = "<think>", "</think>"


def boxed_answers(text: str) -> list[str]:
    """The contents of every ``\\boxed{...}`` whose braces close, in order; an unclosed one is skipped."""
    out: list[str] = []
    start = text.find(BOXED)
    while start != -1:
        i = start + len(BOXED)
        depth = 1
        j = i
        while j < len(text) and depth:
            ch = text[j]
            if ch == "\\" and j + 1 < len(text):
                j += 2  # an escaped brace (\{ or \}) does not open or close the box
                continue
            depth += (ch == "{") - (ch == "}")
            j += 1
        if depth:
            break  # unclosed: no later box can close either, they all sit inside this one
        out.append(text[i : j - 1])
        start = text.find(BOXED, j)
    return out


def format_ok(text: str, truncated: bool) -> bool:
    """Whether a completion has the requested shape: finished, thinking tags (when used) closed once, and
    exactly one boxed answer after the thinking."""
    if truncated:
        return False
    answer = text
    if THINK_OPEN in text or THINK_CLOSE in text:
        # Chat templates such as R1-Distill's put <think> into the prompt, so the opening tag is optional.
        if text.count(THINK_CLOSE) != 1 or text.count(THINK_OPEN) > 1:
            return False
        head, answer = text.split(THINK_CLOSE)
        if THINK_OPEN in head and not head.lstrip().startswith(THINK_OPEN):
            return False
    return answer.count(BOXED) == 1 and len(boxed_answers(answer)) == 1
