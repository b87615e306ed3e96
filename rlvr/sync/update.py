"""The message a learner sends to rollout engines after an update: plain bytes, so it crosses Ray cheaply."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Route = Literal["native", "converted", "merged"]


@dataclass
class PolicyUpdate:
    """One version of the policy, in the form the engine route needs.

    - native / converted: ``lora_tensors`` (safetensors bytes, peft key names) and ``lora_config`` (peft
      LoraConfig as a dict); a converted route also sets ``base_weights`` when the engine's base must change
      (PiSSA/MiLoRA residual base, sent once with the first version and after a restore).
    - merged: ``base_weights`` only: base + delta computed in fp32 from a pristine base, HF parameter names.
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
