"""Boxed-answer scanning and the format check on plain strings (no subprocess)."""

import pytest

from rlvr.rewards.format import boxed_answers, format_ok


@pytest.mark.parametrize(
    "text, boxes",
    [
        ("\\boxed{1} and \\boxed{\\frac{2}{3}}", ["1", "\\frac{2}{3}"]),
        ("\\boxed{\\{1, 2\\}}", ["\\{1, 2\\}"]),
        ("\\boxed{1", []),
        ("\\boxed{1} then \\boxed{2", ["1"]),
        ("\\boxed{\\boxed{3}}", ["\\boxed{3}"]),
        ("no box", []),
    ],
)
def test_boxed_answers_match_braces_and_skip_unclosed_boxes(text, boxes):
    assert boxed_answers(text) == boxes


@pytest.mark.parametrize(
    "text, truncated, ok",
    [
        ("<think>work</think>\\boxed{1}", False, True),
        ("work</think>\\boxed{1}", False, True),  # <think> came with the prompt
        ("\\boxed{1}", False, True),
        ("<think>work</think>\\boxed{1}", True, False),
        ("<think>\\boxed{1}</think>", False, False),
        ("<think>a</think>b</think>\\boxed{1}", False, False),
        ("<think>a</think>\\boxed{1}\\boxed{2}", False, False),
        ("x<think>a</think>\\boxed{1}", False, False),
        ("<think>a</think>\\boxed{1", False, False),
    ],
)
def test_format_requires_closed_thinking_and_exactly_one_box(text, truncated, ok):
    assert format_ok(text, truncated) is ok


def test_boxed_scan_of_a_megabyte_of_braces_is_linear():
    assert boxed_answers("\\boxed{" + "{" * (1 << 20)) == []
