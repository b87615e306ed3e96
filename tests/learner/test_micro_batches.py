"""Micro-batches by token budget: every completion once, within budget, and a loss that ignores the grouping."""

import pytest
import torch

from rlvr.learner.batch import micro_batches

from .batches import fixed_batch
from .conftest import learner_of, trial_cfg


def _lengths(b):
    return [len(p) + len(c) for p, c in zip(b.prompt_ids, b.completion_ids)]


@pytest.mark.parametrize(
    "max_sequences,max_tokens,at_least", [(16, 24, 1), (2, None, 1), (16, 10, 1), (16, None, 5), (3, 40, 7)]
)
def test_micro_batches_cover_the_batch_once_within_the_budget(max_sequences, max_tokens, at_least):
    batch = fixed_batch(n=12, max_completion=12)
    groups = micro_batches(batch, max_sequences, max_tokens, at_least=at_least)
    seen = sorted(tuple(p + c) for g in groups for p, c in zip(g.prompt_ids, g.completion_ids))
    assert seen == sorted(tuple(p + c) for p, c in zip(batch.prompt_ids, batch.completion_ids))
    assert len(groups) >= at_least
    for g in groups:
        assert len(g) <= max_sequences
        if max_tokens is not None and len(g) > 1:
            assert len(g) * max(_lengths(g)) <= max_tokens


def test_sorting_by_length_cuts_padding():
    batch = fixed_batch(n=16, max_completion=30)
    padded = sum(len(g) * max(_lengths(g)) for g in micro_batches(batch, 4))
    in_order = sum(len(g) * max(_lengths(g)) for g in batch.chunks(4))
    assert padded < in_order


def _first_step_grads(tiny_path: str, over: dict) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
    learner = learner_of(trial_cfg(**{"learner.backend": "torch", "algorithm.max_grad_norm": 1e9, **over}), tiny_path)
    grads = {}

    def capture(step):  # the torch backend calls this before zero_grad
        grads.update({n: p.grad.clone() for n, p in learner.policy.model.named_parameters() if p.grad is not None})

    learner.policy.after_optimizer_step = capture
    metrics = learner.train_step(fixed_batch(n=8, max_completion=12))
    return grads, metrics


@pytest.mark.parametrize("loss", ["dapo", "grpo", "dr_grpo"])
def test_loss_and_gradient_do_not_depend_on_the_micro_batch_grouping(tiny_path, loss):
    algo = {"algorithm.loss": loss, "algorithm.scale_rewards": loss != "dr_grpo"}
    groupings = [
        {"learner.micro_batch_size": 8},  # one micro-batch
        {"learner.micro_batch_size": 1},  # one sequence each
        {"learner.micro_batch_size": 8, "learner.max_tokens_per_micro_batch": 40},  # by token budget
        {"learner.micro_batch_size": 3, "learner.max_tokens_per_micro_batch": 25},
    ]
    ref_grads, ref_metrics = _first_step_grads(tiny_path, {**algo, **groupings[0]})
    assert ref_grads
    for grouping in groupings[1:]:
        grads, metrics = _first_step_grads(tiny_path, {**algo, **grouping})
        assert metrics["loss"] == pytest.approx(ref_metrics["loss"], rel=1e-5, abs=1e-7), grouping
        assert metrics["grad_norm"] == pytest.approx(ref_metrics["grad_norm"], rel=1e-5), grouping
        assert metrics["entropy"] == pytest.approx(ref_metrics["entropy"], rel=1e-5), grouping
        for name, g in ref_grads.items():
            torch.testing.assert_close(
                grads[name], g, rtol=1e-4, atol=1e-7, msg=lambda m, where=f"{grouping} {name}": f"{where}: {m}"
            )
