"""The rollout batch between generation and the update, and the rules that assemble it.

Group ``i`` of a ``Rollout`` answers ``prompts[i]`` and ``results`` holds its completions' rewards, flattened in
the same order (``group_size`` per group). The batch is aligned by position, so nothing renumbers a
Completion: its ``prompt_index`` keeps the one meaning every engine gives it, the position of its prompt in
the generate call that sampled it (``EngineSet`` is one such engine to the loop).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from rlvr.algorithms.advantages import dynamic_sampling_keep, overlong_shaping, shape_and_normalise
from rlvr.config.schema import AlgorithmConfig
from rlvr.learner.batch import RolloutBatch
from rlvr.rewards.pool import RewardResult
from rlvr.rollout.types import Completion


@dataclass
class Rollout:
    """Scored groups for one update; ``rounds``: the dynamic-sampling refill rounds spent on it."""

    prompts: list[list[int]] = field(default_factory=list)
    groups: list[list[Completion]] = field(default_factory=list)
    results: list[RewardResult] = field(default_factory=list)
    rounds: int = 0

    def __post_init__(self) -> None:
        completions = sum(len(g) for g in self.groups)
        if len(self.prompts) != len(self.groups) or len(self.results) != completions:
            raise ValueError(
                f"Rollout: {len(self.prompts)} prompts, {len(self.groups)} groups and {len(self.results)} rewards for "
                f"{completions} completions; expected one group per prompt and one reward per completion"
            )

    def __len__(self) -> int:
        return len(self.groups)

    def completions(self) -> list[Completion]:
        return [c for g in self.groups for c in g]

    def take(self, indices: list[int] | np.ndarray, group_size: int) -> Rollout:
        """The groups at ``indices`` (in that order) with their prompts and rewards."""
        return Rollout(
            [self.prompts[i] for i in indices],
            [self.groups[i] for i in indices],
            [r for i in indices for r in self.results[i * group_size : (i + 1) * group_size]],
            self.rounds,
        )

    def length_metrics(self, algo: AlgorithmConfig, max_new_tokens: int) -> dict[str, float | None]:
        """Response length in tokens (mean and max), the share truncated at ``max_new_tokens``, and what overlong
        shaping did: the mean penalty it added to the rewards and the share of completions it kept out of the loss."""
        flat = self.completions()
        if not flat:
            return {
                "response_len": 0.0,
                "response_len_max": None,
                "truncated_frac": None,
                "overlong_penalty_mean": None,
                "overlong_filtered_frac": None,
            }
        lengths, truncated = [len(c.token_ids) for c in flat], [c.truncated for c in flat]
        penalty, in_loss = overlong_shaping(algo, lengths, truncated, max_new_tokens)
        return {
            "response_len": float(np.mean(lengths)),
            "response_len_max": int(max(lengths)),
            "truncated_frac": float(np.mean(truncated)),
            "overlong_penalty_mean": float(penalty.mean()),
            "overlong_filtered_frac": float(1.0 - in_loss.mean()),
        }

    def learner_batch(self, algo: AlgorithmConfig, max_new_tokens: int) -> RolloutBatch:
        """Rewards shaped (overlong) and group-normalised into advantages, flattened for the learners."""
        flat = self.completions()
        adv, in_loss = shape_and_normalise(
            algo,
            [r.reward for r in self.results],
            [len(c.token_ids) for c in flat],
            [c.truncated for c in flat],
            max_new_tokens,
        )
        return RolloutBatch.from_groups(self.prompts, self.groups, adv, in_loss)


def assemble(draw: Callable[[int], Rollout], algo: AlgorithmConfig, num_learners: int) -> Rollout:
    """The batch of one update from generation rounds ``draw(0), draw(1), ...``.

    Without dynamic sampling that is round 0 as drawn. With it, only groups whose rewards differ are kept, and
    further rounds refill the batch until ``prompts_per_step`` groups are kept or ``max_resample_rounds`` are
    spent. The batch is then cut to at most ``prompts_per_step`` groups, and further until its completions split
    into mini-batches x learners (dynamic sampling may leave a ragged count).
    """
    batch = Rollout()
    while True:
        new = draw(batch.rounds)
        if algo.dynamic_sampling:
            new = new.take(
                np.flatnonzero(dynamic_sampling_keep([r.reward for r in new.results], algo.group_size)), algo.group_size
            )
        batch.prompts += new.prompts
        batch.groups += new.groups
        batch.results += new.results
        if not algo.dynamic_sampling or len(batch) >= algo.prompts_per_step or batch.rounds >= algo.max_resample_rounds:
            break
        batch.rounds += 1
    unit = algo.mini_batches * num_learners
    n = min(len(batch), algo.prompts_per_step)
    while n and (n * algo.group_size) % unit:
        n -= 1
    return batch.take(list(range(n)), algo.group_size)
