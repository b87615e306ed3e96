"""Chunked, completion-only log-probabilities equal the full-vocabulary computation, values and gradients."""

import pytest
import torch

from rlvr.learner.batch import collate
from rlvr.learner.logprobs import token_logprobs

from .batches import fixed_batch
from .conftest import learner_of, trial_cfg


def _full_vocabulary(model, t, temperature):
    """The computation the chunked one replaces: fp32 logits over every position and the whole vocabulary."""
    logits = model(input_ids=t["input_ids"], attention_mask=t["attention_mask"]).logits[:, :-1].float()
    if temperature > 0:
        logits = logits / temperature
    lse = torch.logsumexp(logits, dim=-1)
    logp = logits.gather(-1, t["targets"].unsqueeze(-1)).squeeze(-1) - lse
    entropy = lse - (torch.softmax(logits, dim=-1) * logits).sum(-1)
    mask = t["loss_mask"]
    return logp * mask, entropy.detach() * mask


@pytest.mark.parametrize("temperature", [1.0, 0.7])
@pytest.mark.parametrize("chunk", [1, 5, 4096])
def test_chunked_logprobs_equal_the_full_vocabulary_ones_in_value_and_gradient(tiny_path, temperature, chunk):
    learner = learner_of(trial_cfg(**{"learner.backend": "torch", "method.rank": 8}), tiny_path)
    model = learner.policy.model
    batch = fixed_batch(n=6, max_completion=9)
    batch.in_loss[1] = False  # a masked-out completion is not scored
    t = collate(batch)
    params = [p for p in model.parameters() if p.requires_grad]
    weights = torch.randn(t["loss_mask"].shape, generator=torch.Generator().manual_seed(0))

    def run(fn):
        model.zero_grad(set_to_none=True)
        logp, entropy = fn()
        (logp * weights).sum().backward()
        return logp.detach(), entropy, [p.grad.clone() for p in params]

    ref = run(lambda: _full_vocabulary(model, t, temperature))
    got = run(lambda: token_logprobs(model, model.get_output_embeddings(), t, temperature, chunk))
    torch.testing.assert_close(got[0], ref[0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got[1], ref[1], rtol=1e-5, atol=1e-5)
    assert not got[1].requires_grad
    for g, r in zip(got[2], ref[2]):
        torch.testing.assert_close(g, r, rtol=1e-4, atol=1e-6)


def test_logprobs_of_full_fine_tuning_reach_the_output_projection(tiny_path):
    # full FT trains lm_head, which the chunks apply outside the model's forward
    learner = learner_of(
        trial_cfg(
            **{
                "learner.backend": "torch",
                "method.name": "full",
                "method.rank": None,
                "method.alpha": None,
                "method.target_modules": None,
            }
        ),
        tiny_path,
    )
    model = learner.policy.model
    t = collate(fixed_batch(n=4))
    logp, _ = token_logprobs(model, model.get_output_embeddings(), t, 1.0, 3)
    logp.sum().backward()
    grad = model.get_output_embeddings().weight.grad
    assert grad is not None and grad.abs().sum() > 0


def test_a_batch_with_no_token_in_the_loss_steps_without_error_and_leaves_the_weights(tiny_path):
    # overlong filtering can take every completion out of the loss (all truncated): the step must still run
    # backward (DeepSpeed ranks meet in it) and change nothing
    from dataclasses import replace

    learner = learner_of(trial_cfg(**{"learner.backend": "torch"}), tiny_path)
    before = {k: v.clone() for k, v in learner.policy.trainable_state_dict().items()}
    batch = fixed_batch(n=8)
    metrics = learner.train_step(replace(batch, in_loss=[False] * len(batch)))
    assert metrics["tokens"] == 0 and metrics["grad_norm"] == 0
    after = learner.policy.trainable_state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
