"""The message a learner sends to rollout engines after an update: plain bytes, so it crosses Ray cheaply."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rlvr.config.methods import Route


@dataclass
class PolicyUpdate:
    """One version of the policy, in the form the engine route needs.

    - native / converted: ``lora_tensors`` (safetensors bytes, peft key names) and ``lora_config`` (peft
      LoraConfig as a dict); a converted route also sets ``base_weights`` when the engine's base must change
      (PiSSA/MiLoRA residual base, sent once with the first version and after a restore).
    - merged: ``base_weights`` only: base + delta computed in fp32 from a pristine base, HF parameter names.

    ``base_weights`` must hold every tensor that differs from the pristine base, in every version that has
    any: engines may reset unlisted tensors that share a layer with listed ones to the pristine checkpoint
    (vLLM reloads q/k/v and gate/up as one packed layer).
    """

    version: int
    route: Route
    lora_tensors: bytes | None = None
    lora_config: dict[str, Any] | None = None
    base_weights: bytes | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def adapter_name(self) -> str:
        # vLLM keys LoRARequests and its prefix cache by name: every version needs a new one.
        return f"policy-v{self.version}"

    @property
    def has_adapter(self) -> bool:
        return self.lora_tensors is not None
