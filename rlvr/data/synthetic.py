"""Synthetic verifiable tasks with difficulty levels, for tiny models on CPU.

Every problem has an integer gold answer; a correct completion writes it as ``\\boxed{N}``, which math-verify
checks like any benchmark answer. Generation is deterministic from (task, level, seed), and the held-out
split is disjoint from the training split by problem text.

``repeated_addition`` is the long-reasoning task: its solutions are written out step by step (about 40 to
500 characters, one token each for the tiny model) in one of three styles drawn per solution, so one prompt's
completions differ in length the way a reasoning model's do.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    id: str
    problem: str
    answer: str
    level: int
    solution: str = ""  # worked solution ending in the boxed answer; "" for tasks answered by the boxed answer alone

    def target(self) -> str:
        """What a base is pretrained to write after the prompt."""
        return self.solution or boxed(self.answer)


def _addition(rng: random.Random, level: int) -> tuple[str, int]:
    # level 1: two 2-digit numbers; each level adds a digit.
    lo, hi = 10**level, 10 ** (level + 1) - 1
    a, b = rng.randint(lo, hi), rng.randint(lo, hi)
    return f"{a}+{b}", a + b


def _arithmetic(rng: random.Random, level: int) -> tuple[str, int]:
    # level L: L+1 operations over 1-digit numbers, left-to-right precedence made explicit by Python's.
    terms = [str(rng.randint(1, 9))]
    for _ in range(level + 1):
        terms.append(rng.choice("+-*"))
        terms.append(str(rng.randint(1, 9)))
    expr = "".join(terms)
    return expr, int(eval(expr))  # noqa: S307 - digits and + - * only, built above


_REPEATED = re.compile(r"(\d+)\+(\d+)\*(\d+)")
REPEATS = (5, 21)  # steps of a repeated-addition problem: 40 to ~500 characters of solution over the three styles


def _repeated_addition(rng: random.Random, level: int) -> tuple[str, int]:
    # "a+b*n", solved by adding b to a n times; level L: a has L+1 digits, b has L digits.
    a = rng.randint(10**level, 10 ** (level + 1) - 1)
    b = rng.randint(max(2, 10 ** (level - 1)), 10**level - 1)
    n = rng.randint(*REPEATS)
    return f"{a}+{b}*{n}", a + b * n


def _repeated_addition_solution(rng: random.Random, problem: str) -> str:
    """One line per addition, led by the additions still left after it (counting down, so the last line is the
    one that reaches 0), in a style drawn per solution: ``terse`` (two additions a line, ``k: t+2b=t'``),
    ``plain`` (``k: t+b=t'``) or ``verbose`` (``k: t+b, u+v=s, t'``: the units digits' sum, and so the carry,
    written before the result, which makes each of its lines easier to get right)."""
    a, b, n = (int(x) for x in _REPEATED.fullmatch(problem).groups())
    style = rng.choice(("terse", "plain", "verbose"))
    lines, total, left = [], a, n
    while left:
        step = 2 if style == "terse" and left >= 2 else 1
        left, add = left - step, b * step
        if style == "verbose":
            lines.append(f"{left}: {total}+{add}, {total % 10}+{add % 10}={total % 10 + add % 10}, {total + add}")
        else:
            lines.append(f"{left}: {total}+{add}={total + add}")
        total += add
    return "\n".join(lines + [boxed(total)])


TASKS: dict[str, Callable[[random.Random, int], tuple[str, int]]] = {
    "addition": _addition,
    "arithmetic": _arithmetic,
    "repeated_addition": _repeated_addition,
}

SOLUTIONS: dict[str, Callable[[random.Random, str], str]] = {"repeated_addition": _repeated_addition_solution}
"""Written-out solutions of the tasks that have them, drawn with the generator's rng (styles vary per draw)."""


def boxed(answer: str | int) -> str:
    return f"\\boxed{{{answer}}}"


def _is_holdout(text: str, holdout_fraction: float) -> bool:
    digest = int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)
    return digest / 0xFFFFFFFF < holdout_fraction


def generate(
    task: str, levels: list[int], n: int, seed: int, split: str = "train", holdout_fraction: float = 0.1
) -> list[Problem]:
    """``n`` problems of ``task`` spread evenly over ``levels``, from the train or test split.

    The split is decided by a hash of the problem text, so train and test never share a problem whatever
    the seed or count.
    """
    if task not in TASKS:
        raise ValueError(f"unknown synthetic task {task!r}; available: {', '.join(sorted(TASKS))}")
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    make = TASKS[task]
    rng = random.Random(f"{task}:{seed}:{split}")
    out: list[Problem] = []
    seen: set[str] = set()
    attempts = 0
    while len(out) < n:
        attempts += 1
        if attempts > 100 * n + 1000:
            raise ValueError(f"synthetic task {task!r} levels {levels}: cannot draw {n} distinct {split} problems")
        level = levels[len(out) % len(levels)]
        text, value = make(rng, level)
        if _is_holdout(text, holdout_fraction) != (split == "test"):
            continue
        if split == "test" and text in seen:  # test problems are distinct; training may repeat
            continue
        seen.add(text)
        solution = SOLUTIONS[task](rng, text) if task in SOLUTIONS else ""
        out.append(
            Problem(id=f"{task}-L{level}-{len(out)}", problem=text, answer=str(value), level=level, solution=solution)
        )
    return out
