"""The clipped policy-gradient loss with truncated importance sampling, KL and the three aggregations.

All tensors are padded ``[batch, tokens]`` on the same grid (position t scores token t of the completion
region); ``mask`` is 1 on tokens that count. Aggregation is written as ``sum(weight * term) / normaliser``
so that a batch split into micro-batches or across ranks gives the same gradient as the whole batch: the
caller passes the normaliser of the whole (mini-)batch, see ``loss_normaliser``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from rlvr.config.schema import AlgorithmConfig


@dataclass
class LossOutput:
    """The loss to backpropagate and token-mean metrics of this (micro-)batch, with its token count."""

    loss: torch.Tensor
    metrics: dict[str, float]
    tokens: int


def loss_normaliser(loss_type: str, mask: torch.Tensor, dr_grpo_norm: int) -> float:
    """The denominator of the aggregation over a whole batch (its ``mask``).

    dapo: every token of the batch; grpo: the sequences (each already a token mean); dr_grpo: sequences x a
    constant length, so long and short completions weigh the same per token.
    """
    seqs = float((mask.sum(dim=1) > 0).sum())
    if loss_type == "dapo":
        return float(mask.sum())
    if loss_type == "grpo":
        return seqs
    if loss_type == "dr_grpo":
        return seqs * dr_grpo_norm
    raise ValueError(f"algorithm.loss: {loss_type!r} is not one of grpo, dapo, dr_grpo")


def _token_weights(loss_type: str, mask: torch.Tensor) -> torch.Tensor:
    if loss_type == "grpo":
        return mask / mask.sum(dim=1, keepdim=True).clamp(min=1)
    return mask


def policy_loss(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    engine_logp: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    algo: AlgorithmConfig,
    normaliser: float,
    ref_logp: torch.Tensor | None = None,
    entropy: torch.Tensor | None = None,
) -> LossOutput:
    """PPO clip (clip-higher) x truncated importance weight, aggregated by ``algo.loss``, plus k3 KL.

    ``advantages`` is per sequence ``[batch]``. The importance weight min(exp(old - engine), tis_cap) corrects
    for the engine sampling from a slightly different distribution than the learner computes; it is detached.
    ``ref_logp`` (the policy with adapters off) is needed only when ``algo.kl_coef > 0``.
    """
    mask = mask.to(logp.dtype)
    ratio = torch.exp(logp - old_logp)
    adv = advantages.to(logp.dtype).unsqueeze(1)
    unclipped = ratio * adv
    clipped = torch.clamp(ratio, 1 - algo.clip_eps_low, 1 + algo.clip_eps_high) * adv
    per_token = -torch.minimum(unclipped, clipped)
    if algo.tis_cap is not None:
        tis = torch.exp(old_logp - engine_logp).clamp(max=algo.tis_cap).detach()
        per_token = per_token * tis
    else:
        tis = torch.ones_like(logp)
    kl = None
    if algo.kl_coef > 0:
        if ref_logp is None:
            raise ValueError("ref_logp: required when algorithm.kl_coef > 0")
        log_ref_ratio = ref_logp - logp
        kl = torch.exp(log_ref_ratio) - log_ref_ratio - 1  # k3: unbiased, always >= 0
        per_token = per_token + algo.kl_coef * kl
    weights = _token_weights(algo.loss, mask)
    loss = (per_token * weights).sum() / normaliser

    tokens = int(mask.sum())
    with torch.no_grad():

        def mean(x: torch.Tensor) -> float:
            return float((x * mask).sum() / max(tokens, 1))

        log_ratio = logp - old_logp
        metrics = {
            "clip_frac": mean((clipped < unclipped).to(mask.dtype)),
            "approx_kl": mean(torch.exp(-log_ratio) + log_ratio - 1),
            "ratio_mean": mean(ratio),
            "ratio_max": float(ratio.masked_fill(mask == 0, float("-inf")).max()) if tokens else 1.0,
            "ratio_min": float(ratio.masked_fill(mask == 0, float("inf")).min()) if tokens else 1.0,
            "tis_weight_mean": mean(tis),
        }
        if kl is not None:
            metrics["kl"] = mean(kl)
        if entropy is not None:
            metrics["entropy"] = mean(entropy)
    return LossOutput(loss=loss, metrics=metrics, tokens=tokens)
