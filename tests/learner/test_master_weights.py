"""The torch backend steps fp32 masters of weights trained in bf16, so updates below bf16's spacing accumulate."""

import pytest
import torch
from safetensors.torch import load

from rlvr.learner.backends import TorchBackend

from .batches import fixed_batch
from .conftest import learner_of, trial_cfg


def _adamw_run(dtype: torch.dtype, steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    layer = torch.nn.Linear(64, 64, bias=False).to(dtype)
    layer.weight.data = (0.02 * torch.randn(64, 64)).to(torch.bfloat16).to(dtype)  # the same start for both
    start = layer.weight.detach().clone()
    backend = TorchBackend(layer, torch.optim.AdamW(layer.parameters(), lr=1e-5, weight_decay=0.0), 1.0, 1)
    grad = torch.linspace(-1, 1, 64 * 64).reshape(64, 64).to(torch.bfloat16).to(dtype)
    for _ in range(steps):
        layer.weight.grad = grad.clone()
        backend.step(lambda: None)
    return start, layer.weight.detach()


def test_bf16_weights_are_the_rounded_fp32_run_not_updates_rounded_away():
    start, bf16 = _adamw_run(torch.bfloat16, 20)
    _, fp32 = _adamw_run(torch.float32, 20)
    assert bf16.dtype == torch.bfloat16
    # 20 steps of 1e-5 exceed half of bf16's spacing at 0.02 (7.8e-5), each step alone does not
    assert torch.equal(bf16, fp32.to(torch.bfloat16))
    assert (bf16 != start).float().mean() > 0.5


@pytest.fixture
def full_bf16_cfg():
    return trial_cfg(
        **{
            "method.name": "full",
            "method.rank": None,
            "method.alpha": None,
            "method.target_modules": None,
            "model.dtype": "bfloat16",
            "algorithm.lr": 1e-6,
            "method.dropout": 0.0,
            "learner.backend": "torch",
        }
    )


def test_one_bf16_full_fine_tuning_step_at_lr_1e6_changes_the_exported_weights(tiny_path, full_bf16_cfg):
    learner = learner_of(full_bf16_cfg, tiny_path)
    before = {n: p.detach().clone() for n, p in learner.policy.model.named_parameters()}
    assert not load(learner.export(0, include_base=True).base_weights)  # version 0: the engines' checkpoint
    learner.train_step(fixed_batch())
    after = load(learner.export(1, include_base=True).base_weights)
    assert after and all(t.dtype == torch.bfloat16 for t in after.values())
    assert sum(int((t != before[n]).sum()) for n, t in after.items()) > 0


def test_a_resumed_bf16_learner_keeps_its_fp32_masters(tiny_path, full_bf16_cfg):
    batches = [fixed_batch(seed=s) for s in range(3)]
    straight = learner_of(full_bf16_cfg, tiny_path)
    straight.train_step(batches[0])
    saved = straight.state()
    for b in batches[1:]:
        straight.train_step(b)
    resumed = learner_of(full_bf16_cfg, tiny_path)
    resumed.load_state(saved)
    for b in batches[1:]:
        resumed.train_step(b)
    for (name, a), b in zip(straight.policy.model.named_parameters(), resumed.policy.model.parameters()):
        assert torch.equal(a, b), name
