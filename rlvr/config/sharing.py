"""Which trials can share one engine's batch: those whose trained policy is a plain LoRA on the ORIGINAL base.

A mixed-adapter engine (rlvr.rollout.vllm_engine.VLLMEngine with ``adapter_slots``) serves one base and one
adapter per slot, so a trial can join it only if its policy is W0 + B A with W0 untouched: every LoRA variant
as trained, AdaLoRA as P diag(E) Q, VeRA with its vectors folded into the frozen projections, MiSS (standard and
mini) as its summation matrix and block, and the residual inits (PiSSA, MiLoRA, OLoRA) as the rank-2r LoRA
[s B, -s B0][A; A0] (``rlvr.config.methods.adapter_refusal`` decides from the method table), at a rank vLLM serves.
The policy's ``export(route="native")`` is that adapter. Torch-free, so the pool scheduler can ask anywhere.
"""

from __future__ import annotations

from rlvr.config.methods import adapter_refusal, method_spec
from rlvr.config.schema import VLLM_LORA_RANKS, MethodConfig


def shared_adapter_rank(cfg: MethodConfig) -> int | None:
    """Rank of the method's export as a LoRA on the original base (what a shared engine's max_lora_rank must
    hold): the trained rank, doubled for a residual init, whose initial factors ride along; None without one."""
    spec = method_spec(cfg.name)
    rank = cfg.rank if cfg.rank is not None else spec.default_rank
    if rank is None:
        return None
    return 2 * rank if spec.residual_init else rank


def batch_sharing_refusal(cfg: MethodConfig) -> str | None:
    """Why this method config cannot share a batch with other trials on the original base, or None when it can."""
    why = adapter_refusal(cfg)
    if why is not None:
        return why
    rank = shared_adapter_rank(cfg)
    if rank is not None and rank > max(VLLM_LORA_RANKS):
        return f"its export as a LoRA on the original base has rank {rank}, above vLLM's largest {max(VLLM_LORA_RANKS)}"
    return None


def shares_batch(cfg: MethodConfig) -> bool:
    """True when the trial's policy can be served as one adapter slot of an engine on the original base."""
    return batch_sharing_refusal(cfg) is None
