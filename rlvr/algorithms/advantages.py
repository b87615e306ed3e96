"""From rewards to per-completion advantages: group normalisation, DAPO dynamic sampling, overlong shaping.

Completions arrive grouped: ``group_size`` consecutive entries share a prompt. Everything here is pure numpy,
so the trial controller can call it anywhere and tests can check it by hand.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rlvr.config.schema import AlgorithmConfig


def _groups(values: Sequence[float], group_size: int) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1 or len(arr) % group_size:
        raise ValueError(f"rewards: {len(arr)} values do not split into groups of group_size={group_size}")
    return arr.reshape(-1, group_size)


def group_advantages(
    rewards: Sequence[float], group_size: int, scale: bool = True, eps: float = 1e-4, ddof: int = 1
) -> np.ndarray:
    """(r - group mean) / (group std + eps) per completion (GRPO, DAPO); without ``scale`` r - mean (Dr.GRPO).

    ``ddof`` 1 is the unbiased std that TRL's GRPO (the study's code) divides by; 0 is the population std
    (verl, OpenRLHF), which makes advantages smaller by sqrt((G-1)/G). A group whose rewards are all equal
    gets zero advantages either way, so it contributes no gradient.
    """
    g = _groups(rewards, group_size)
    centred = g - g.mean(axis=1, keepdims=True)
    if scale:
        centred = centred / (g.std(axis=1, ddof=ddof, keepdims=True) + eps)
    return centred.reshape(-1)


def dynamic_sampling_keep(rewards: Sequence[float], group_size: int) -> np.ndarray:
    """One bool per group: True where its rewards are not all equal (DAPO keeps those and refills the rest)."""
    g = _groups(rewards, group_size)
    return g.max(axis=1) > g.min(axis=1)


def soft_overlong_penalty(lengths: Sequence[int], max_new_tokens: int, buffer: int, penalty: float) -> np.ndarray:
    """DAPO's soft overlong punishment (a value <= 0 to add to each reward).

    Zero up to ``max_new_tokens - buffer`` tokens, then a linear ramp reaching ``-penalty`` at the limit,
    and ``-penalty`` beyond it.
    """
    if not 0 <= buffer < max_new_tokens:
        raise ValueError(f"overlong_buffer: {buffer} must be in [0, max_new_tokens={max_new_tokens})")
    n = np.asarray(lengths, dtype=np.float64)
    if buffer == 0:
        return np.where(n >= max_new_tokens, -penalty, 0.0)
    over = np.clip(n - (max_new_tokens - buffer), 0.0, buffer)
    return -penalty * over / buffer


def shape_and_normalise(
    algo: AlgorithmConfig,
    rewards: Sequence[float],
    lengths: Sequence[int],
    truncated: Sequence[bool],
    max_new_tokens: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Advantages and the in-loss flag of every completion, as the algorithm config asks.

    overlong "soft" adds the soft punishment to the rewards before normalising; "filter" keeps the rewards
    but takes truncated completions out of the loss (DAPO's overlong filtering); "none" does neither.
    """
    if not len(rewards) == len(lengths) == len(truncated):
        raise ValueError(
            f"rewards, lengths, truncated: lengths differ ({len(rewards)}, {len(lengths)}, {len(truncated)})"
        )
    penalty, in_loss = overlong_shaping(algo, lengths, truncated, max_new_tokens)
    r = np.asarray(rewards, dtype=np.float64) + penalty
    return group_advantages(r, algo.group_size, algo.scale_rewards, algo.adv_eps, algo.std_ddof), in_loss


def overlong_shaping(
    algo: AlgorithmConfig, lengths: Sequence[int], truncated: Sequence[bool], max_new_tokens: int
) -> tuple[np.ndarray, np.ndarray]:
    """What overlong shaping does to each completion: the penalty added to its reward (<= 0; non-zero only under
    "soft") and whether it stays in the loss (False only for truncated completions under "filter")."""
    penalty = np.zeros(len(lengths), dtype=np.float64)
    in_loss = np.ones(len(lengths), dtype=bool)
    if algo.overlong == "soft":
        penalty = soft_overlong_penalty(lengths, max_new_tokens, algo.overlong_buffer, algo.overlong_penalty)
    elif algo.overlong == "filter":
        in_loss = ~np.asarray(truncated, dtype=bool)
    return penalty, in_loss
