"""Token log-probabilities and entropies without a [batch, tokens, vocabulary] tensor.

With Qwen2's 151,936-token vocabulary one fp32 logits row is 0.6 MB, so the full-vocabulary logits of a
micro-batch of 16k-token completions would outweigh the model. The model is run for its final hidden states
only (``logits_to_keep=1``); the output projection is then applied to the scored positions alone (the
completion tokens that count), ``chunk_tokens`` rows at a time. Under autograd each chunk is checkpointed:
backward recomputes its logits instead of keeping them, so at most one chunk of logits is alive at once.
"""

from __future__ import annotations

import torch
from torch.utils.checkpoint import checkpoint


def _score_chunk(head: torch.nn.Module, hidden: torch.Tensor, targets: torch.Tensor, temperature: float):
    logits = head(hidden).float()  # a new tensor when the model is bf16; the matmul output otherwise
    if temperature > 0 and temperature != 1:
        logits.div_(temperature)  # neither the matmul nor the cast keeps its output for backward: no copy
    lse = torch.logsumexp(logits, dim=-1)
    logp = logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1) - lse
    with torch.no_grad():
        # entropy = lse - sum(p * logits); vecdot avoids materialising p * logits
        entropy = lse - torch.linalg.vecdot((logits - lse.unsqueeze(-1)).exp_(), logits)
    return logp, entropy


def selected_logprobs(
    head: torch.nn.Module, hidden: torch.Tensor, targets: torch.Tensor, temperature: float, chunk_tokens: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probabilities of ``targets`` [N] under ``head(hidden)`` [N, H] / temperature, and detached entropies."""
    logps, entropies = [], []
    for start in range(0, hidden.shape[0], chunk_tokens):
        h, y = hidden[start : start + chunk_tokens], targets[start : start + chunk_tokens]
        if torch.is_grad_enabled() and h.requires_grad:
            # ZeRO-3 re-gathers the head's weight during the recompute, so its saved shape differs from the
            # forward's (partitioned); the values are the same, so torch's metadata check is off
            logp, entropy = checkpoint(
                _score_chunk, head, h, y, temperature, use_reentrant=False, determinism_check="none"
            )
        else:
            logp, entropy = _score_chunk(head, h, y, temperature)
        logps.append(logp)
        entropies.append(entropy)
    if not logps:
        # No token in the loss (e.g. every completion truncated and filtered): an empty slice still hangs on the
        # graph, so backward runs (and DeepSpeed's hooks fire on every rank) with zero gradients.
        empty = hidden[:0, 0].float()
        return empty, empty.detach()
    return torch.cat(logps), torch.cat(entropies)


def token_logprobs(
    module: torch.nn.Module,
    head: torch.nn.Module,
    t: dict[str, torch.Tensor],
    temperature: float,
    chunk_tokens: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probabilities of the targets and (detached) entropies on the [B, T-1] grid of ``collate``, computed
    where ``loss_mask`` is set and 0 elsewhere. ``module`` is what the backend calls for forward passes and
    ``head`` the model's output projection (a causal LM whose logits are ``head(final hidden state)``)."""
    out = module(
        input_ids=t["input_ids"],
        attention_mask=t["attention_mask"],
        output_hidden_states=True,
        logits_to_keep=1,  # the full-vocabulary logits are ours to compute, a chunk at a time
        use_cache=False,
    )
    hidden = out.hidden_states[-1][:, :-1]
    where = t["loss_mask"] > 0
    logp_sel, entropy_sel = selected_logprobs(head, hidden[where], t["targets"][where], temperature, chunk_tokens)
    logp = torch.zeros(where.shape, dtype=torch.float32, device=hidden.device)
    entropy = torch.zeros_like(logp)
    logp = logp.masked_scatter(where, logp_sel)
    entropy[where] = entropy_sel
    return logp, entropy
