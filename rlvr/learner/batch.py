"""What the learner trains on: a rollout batch as plain lists (cheap to send through Ray), and its collate.

The collated tensors live on the "next-token" grid: position t of ``input_ids[:, :-1]`` predicts
``targets[:, t]``; ``loss_mask`` is 1 where the target is a completion token of an in-loss completion.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

import torch

from rlvr.rollout.types import Completion


@dataclass
class RolloutBatch:
    """One completion per entry: its prompt, tokens, the engine's sampling logprobs and its advantage.

    ``in_loss`` False takes a completion out of the loss (overlong filtering) while keeping it in the batch.
    """

    prompt_ids: list[list[int]]
    completion_ids: list[list[int]]
    engine_logprobs: list[list[float]]
    advantages: list[float]
    in_loss: list[bool]

    def __post_init__(self) -> None:
        n = len(self.prompt_ids)
        for f in fields(self):
            if len(getattr(self, f.name)) != n:
                raise ValueError(
                    f"RolloutBatch.{f.name}: {len(getattr(self, f.name))} entries, expected {n} (one per completion)"
                )
        for i, (ids, lps) in enumerate(zip(self.completion_ids, self.engine_logprobs)):
            if len(ids) != len(lps):
                raise ValueError(
                    f"RolloutBatch.engine_logprobs[{i}]: {len(lps)} values for {len(ids)} completion tokens"
                )

    @classmethod
    def from_groups(
        cls,
        prompts: Sequence[Sequence[int]],
        groups: Sequence[Sequence[Completion]],
        advantages: Sequence[float],
        in_loss: Sequence[bool],
    ) -> RolloutBatch:
        """Flatten per-prompt groups (group i answers prompts[i]; prompt order, then completion order) into a batch."""
        flat = [c for g in groups for c in g]
        return cls(
            prompt_ids=[list(p) for p, g in zip(prompts, groups) for _ in g],
            completion_ids=[list(c.token_ids) for c in flat],
            engine_logprobs=[list(c.logprobs) for c in flat],
            advantages=[float(a) for a in advantages],
            in_loss=[bool(x) for x in in_loss],
        )

    def __len__(self) -> int:
        return len(self.prompt_ids)

    def select(self, indices: Sequence[int]) -> RolloutBatch:
        return RolloutBatch(**{f.name: [getattr(self, f.name)[i] for i in indices] for f in fields(self)})

    def chunks(self, n: int) -> list[RolloutBatch]:
        """``n`` contiguous parts of (nearly) equal size, in order."""
        bounds = [round(i * len(self) / n) for i in range(n + 1)]
        return [self.select(range(bounds[i], bounds[i + 1])) for i in range(n)]

    def shard(self, rank: int, world_size: int, mini_batches: int) -> RolloutBatch:
        """This rank's share: its part of every mini-batch, so rank-local mini-batch j is a slice of global j."""
        parts = [mb.chunks(world_size)[rank] for mb in self.chunks(mini_batches)]
        return RolloutBatch(**{f.name: [x for p in parts for x in getattr(p, f.name)] for f in fields(self)})


def micro_batches(
    batch: RolloutBatch, max_sequences: int, max_tokens: int | None = None, at_least: int = 1
) -> list[RolloutBatch]:
    """The batch in micro-batches of at most ``max_sequences`` completions and, when ``max_tokens`` is set, at
    most ``max_tokens`` padded tokens (sequences x the longest one), split further to ``at_least`` parts.

    Sequences are sorted longest first and grouped greedily, so rows of a micro-batch have similar lengths and
    padding is small. A sequence longer than ``max_tokens`` gets a micro-batch of its own. The loss does not
    depend on the grouping: its normaliser is the whole mini-batch's (``loss_normaliser``).
    """
    lengths = [len(p) + len(c) for p, c in zip(batch.prompt_ids, batch.completion_ids)]
    order = sorted(range(len(batch)), key=lambda i: -lengths[i])
    budget = max_tokens if max_tokens is not None else float("inf")
    groups: list[list[int]] = []
    for i in order:
        g = groups[-1] if groups else None
        # longest first: the group's padded width is its first sequence's length
        if g is not None and len(g) < max_sequences and (len(g) + 1) * lengths[g[0]] <= budget:
            g.append(i)
        else:
            groups.append([i])
    while len(groups) < min(at_least, len(batch)):
        # halve the group holding the most padded tokens; halves never exceed the budget
        j = max(
            (k for k in range(len(groups)) if len(groups[k]) > 1), key=lambda k: len(groups[k]) * lengths[groups[k][0]]
        )
        g = groups.pop(j)
        groups[j:j] = [g[: len(g) // 2], g[len(g) // 2 :]]
    return [batch.select(g) for g in groups]


def collate(batch: RolloutBatch, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
    """Right-padded tensors: input_ids, attention_mask [B, T]; targets, loss_mask, engine_logprobs [B, T-1];
    advantages [B]. Padding is token 0: the attention and loss masks hide it, so its id never matters."""
    seqs = [p + c for p, c in zip(batch.prompt_ids, batch.completion_ids)]
    width = max(len(s) for s in seqs)
    input_ids = torch.zeros((len(seqs), width), dtype=torch.long)
    attention_mask = torch.zeros((len(seqs), width), dtype=torch.long)
    loss_mask = torch.zeros((len(seqs), width - 1))
    engine_logprobs = torch.zeros((len(seqs), width - 1))
    for i, (p, c, lps) in enumerate(zip(batch.prompt_ids, batch.completion_ids, batch.engine_logprobs)):
        if not p:
            raise ValueError(f"RolloutBatch.prompt_ids[{i}]: empty prompt; the first completion token needs a context")
        input_ids[i, : len(p) + len(c)] = torch.tensor(p + c)
        attention_mask[i, : len(p) + len(c)] = 1
        # the logits at position len(p)-1 score the first completion token
        span = slice(len(p) - 1, len(p) - 1 + len(c))
        loss_mask[i, span] = float(batch.in_loss[i])
        engine_logprobs[i, span] = torch.tensor(lps, dtype=torch.float32)
    out = {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "targets": input_ids[:, 1:].clone(),
        "loss_mask": loss_mask,
        "engine_logprobs": engine_logprobs,
        "advantages": torch.tensor(batch.advantages, dtype=torch.float32),
    }
    return {k: v.to(device) for k, v in out.items()}
