"""Synthetic verifiable tasks with difficulty levels, for tiny models on CPU.

Every problem has an integer gold answer; a correct completion writes it as ``\\boxed{N}``, which math-verify
checks like any benchmark answer. Generation is deterministic from (task, level, seed), and the held-out
split is disjoint from the training split by problem text.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Problem:
    id: str
    problem: str
    answer: str
    level: int


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


TASKS: dict[str, Callable[[random.Random, int], tuple[str, int]]] = {
    "addition": _addition,
    "arithmetic": _arithmetic,
}


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
        out.append(Problem(id=f"{task}-L{level}-{len(out)}", problem=text, answer=str(value), level=level))
    return out
