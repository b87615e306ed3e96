"""What every rollout engine takes and returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from rlvr.sync.update import PolicyUpdate


@dataclass
class SamplingSpec:
    """How to sample: one spec per generate call."""

    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 256
    seed: int | None = None


@dataclass
class SlotBatch:
    """One policy's share of a mixed-adapter generate call: what ``generate(prompts, spec)`` would take if the
    engine served only the policy in adapter slot ``slot``."""

    slot: int
    prompts: list[list[int]]
    spec: SamplingSpec


@dataclass
class Completion:
    """One sampled completion with the engine's log-probabilities of its tokens."""

    prompt_index: int  # position of its prompt in the prompts of the generate call that sampled it
    token_ids: list[int]
    logprobs: list[float]
    text: str
    finish_reason: str  # "stop" or "length"

    @property
    def truncated(self) -> bool:
        return self.finish_reason == "length"


class RolloutEngine(Protocol):
    """An engine serving the current policy. Implementations: rlvr.rollout.vllm_engine, rlvr.rollout.hf_engine."""

    version: int | None  # the PolicyUpdate version served; None while the pristine base is served

    def generate(self, prompts: list[list[int]], spec: SamplingSpec) -> list[list[Completion]]:
        """``spec.n`` completions per prompt, grouped by prompt, in prompt order."""

    def load_policy(self, update: PolicyUpdate) -> None:
        """Serve this policy version from now on (adapter hot-swap or in-place base reload)."""

    def score(self, prompt: list[int], completion: list[int]) -> list[float]:
        """Log-probabilities the served policy gives ``completion`` after ``prompt`` (the post-sync probe)."""

    def reset(self, seed: int) -> None:
        """Back to an engine just started with ``seed``: the pristine base, no adapter, nothing cached."""

    def close(self) -> None:
        """Release memory and threads."""
