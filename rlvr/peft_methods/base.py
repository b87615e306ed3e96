"""The contract between the method registry and its users (learner, trial, analysis).

``rlvr.peft_methods.policy.build_policy(model, method_cfg, total_steps)`` returns an object with this
interface (its torch-free facts, ``MethodInfo``, come from the method table in rlvr.config.methods). This module
imports no torch at run time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol

from rlvr.config.methods import MethodInfo, Route
from rlvr.sync.update import PolicyUpdate

if TYPE_CHECKING:
    import torch

Gather = Callable[[Iterable["torch.nn.Parameter"]], AbstractContextManager]


class Policy(Protocol):
    """A trainable model built for one method, plus everything the learner needs around it."""

    info: MethodInfo
    model: torch.nn.Module  # peft model, or the base itself for full fine-tuning / LN tuning

    def make_optimizer(self, lr: float, weight_decay: float, betas: tuple[float, float]) -> torch.optim.Optimizer:
        """AdamW (or the method's optimizer: LoRA+ ratios, LoRA-FA frozen A) over the trainable parameters."""

    def extra_loss(self) -> torch.Tensor | None:
        """Regulariser to add to the RL loss (AdaLoRA's orthogonality penalty), or None."""

    def after_optimizer_step(self, step: int) -> None:
        """Per-step hook (AdaLoRA's update_and_allocate)."""

    def disable_adapter(self) -> AbstractContextManager:
        """Context in which the model computes the reference policy (adapter off)."""

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """Everything that defines the trained policy beyond the pristine base (for checkpoints)."""

    def load_trainable_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Inverse of trainable_state_dict."""

    def export(
        self, version: int, include_base: bool, route: Route | None = None, gather: Gather | None = None
    ) -> PolicyUpdate:
        """The engine's view of the current policy along ``route`` (default ``info.route``; any method may go
        "merged", and "native" as one plain LoRA on the original base wherever the policy is one
        (rlvr.config.methods.adapter_refusal; what a shared batch serves, rlvr.config.sharing); no other detour);
        ``include_base`` forces the residual base weights (always sent with version 0). ``gather(params)`` makes
        sharded parameters whole for a block (ZeRO-3); export asks for one module's at a time, so a sharded model
        is never whole at once."""

    def effective_weights(self) -> dict[str, torch.Tensor]:
        """W_t of every adapted module (HF names, fp32), residual-aware; with the pristine base gives dW."""

    def record(self) -> dict[str, Any]:
        """Resolved, verified adapter config and trainable-parameter counts for the trial record."""
