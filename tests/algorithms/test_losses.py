import math

import pytest
import torch

from rlvr.algorithms.losses import loss_normaliser, policy_loss
from rlvr.config.schema import AlgorithmConfig

NO_TIS = dict(tis_cap=None)


def _inputs(ratios, adv, mask=None):
    ratios = torch.tensor(ratios, dtype=torch.float64)
    old = torch.zeros_like(ratios)
    logp = torch.log(ratios).requires_grad_(True)
    mask = torch.ones_like(ratios) if mask is None else torch.tensor(mask, dtype=torch.float64)
    return logp, old, torch.tensor(adv, dtype=torch.float64), mask


def test_clipping_binds_only_when_the_ratio_leaves_the_asymmetric_band():
    algo = AlgorithmConfig(clip_eps_low=0.2, clip_eps_high=0.28, **NO_TIS)
    # positive advantage: 1.5 is clipped to 1.28; negative advantage: 0.5 is clipped to 0.8; inside band: not
    logp, old, adv, mask = _inputs([[1.5, 1.1], [0.5, 0.9]], [1.0, -1.0])
    out = policy_loss(logp, old, old, adv, mask, algo, normaliser=4)
    expected = -(1.28 + 1.1 - 0.8 - 0.9) / 4
    assert out.loss.item() == pytest.approx(expected)
    assert out.metrics["clip_frac"] == pytest.approx(0.5)
    out.loss.backward()
    # clipped tokens carry no gradient; unclipped token grad = -A * ratio / normaliser
    g = logp.grad
    assert g[0, 0] == 0 and g[1, 0] == 0
    assert g[0, 1].item() == pytest.approx(-1.1 / 4) and g[1, 1].item() == pytest.approx(0.9 / 4)


def test_clip_higher_lets_positive_advantage_ratios_grow_past_the_low_epsilon():
    logp, old, adv, mask = _inputs([[1.25]], [1.0])
    sym = policy_loss(logp, old, old, adv, mask, AlgorithmConfig(clip_eps_low=0.2, clip_eps_high=0.2, **NO_TIS), 1)
    high = policy_loss(logp, old, old, adv, mask, AlgorithmConfig(clip_eps_low=0.2, clip_eps_high=0.28, **NO_TIS), 1)
    assert sym.loss.item() == pytest.approx(-1.2) and high.loss.item() == pytest.approx(-1.25)


def test_tis_weight_is_capped_and_scales_the_token_loss():
    logp, old, adv, mask = _inputs([[1.0, 1.0]], [1.0])
    engine = torch.tensor([[math.log(0.5), math.log(0.25)]], dtype=torch.float64)
    # exp(old - engine) = 2 and 4 -> capped at 3
    out = policy_loss(logp, old, engine, adv, mask, AlgorithmConfig(tis_cap=3.0), normaliser=2)
    assert out.loss.item() == pytest.approx(-(2 + 3) / 2)
    assert out.metrics["tis_weight_mean"] == pytest.approx(2.5)
    off = policy_loss(logp, old, engine, adv, mask, AlgorithmConfig(tis_cap=None), normaliser=2)
    assert off.loss.item() == pytest.approx(-1.0) and off.metrics["tis_weight_mean"] == 1.0


# two sequences: 3 tokens with advantage 1, 1 token with advantage -2; all ratios 1, so each token's term is -A
MASK = [[1, 1, 1], [1, 0, 0]]


@pytest.mark.parametrize(
    "loss_type, expected",
    [
        ("grpo", ((-1 * 3) / 3 + 2 / 1) / 2),  # token mean per sequence, then mean over sequences
        ("dapo", (-1 * 3 + 2) / 4),  # all tokens of the batch
        ("dr_grpo", (-1 * 3 + 2) / (2 * 10)),  # sequences x constant 10
    ],
)
def test_aggregation_modes_match_a_hand_computation(loss_type, expected):
    algo = AlgorithmConfig(loss=loss_type, **NO_TIS)
    logp, old, adv, mask = _inputs([[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]], [1.0, -2.0], MASK)
    norm = loss_normaliser(loss_type, mask, dr_grpo_norm=10)
    out = policy_loss(logp, old, old, adv, mask, algo, norm)
    assert out.loss.item() == pytest.approx(expected)


@pytest.mark.parametrize("loss_type", ["grpo", "dapo", "dr_grpo"])
def test_micro_batches_with_the_global_normaliser_sum_to_the_full_batch_loss(loss_type):
    algo = AlgorithmConfig(loss=loss_type, tis_cap=2.0)
    g = torch.Generator().manual_seed(0)
    logp = -torch.rand(4, 5, generator=g, dtype=torch.float64)
    old, engine = logp - 0.1 * torch.rand(4, 5, generator=g, dtype=torch.float64), logp - 0.3
    adv = torch.tensor([1.0, -0.5, 2.0, -1.0], dtype=torch.float64)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0], [1, 1, 0, 0, 0]], dtype=torch.float64)
    norm = loss_normaliser(loss_type, mask, 7)
    whole = policy_loss(logp, old, engine, adv, mask, algo, norm).loss
    parts = sum(
        policy_loss(logp[s], old[s], engine[s], adv[s], mask[s], algo, norm).loss for s in (slice(0, 1), slice(1, 4))
    )
    assert parts.item() == pytest.approx(whole.item())


def test_kl_to_the_reference_is_zero_when_policy_equals_reference_and_positive_otherwise():
    algo = AlgorithmConfig(kl_coef=0.5, **NO_TIS)
    logp, old, adv, mask = _inputs([[0.5, 0.25]], [0.0])
    same = policy_loss(logp, old, old, adv, mask, algo, 2, ref_logp=logp.detach())
    assert same.metrics["kl"] == 0 and same.loss.item() == 0
    ref = logp.detach() + torch.tensor([[0.3, -0.3]], dtype=torch.float64)
    diff = policy_loss(logp, old, old, adv, mask, algo, 2, ref_logp=ref)
    k3 = [math.exp(d) - d - 1 for d in (0.3, -0.3)]
    assert diff.metrics["kl"] == pytest.approx(sum(k3) / 2)
    assert diff.loss.item() == pytest.approx(0.5 * sum(k3) / 2)


def test_kl_without_reference_logprobs_is_a_clear_error():
    logp, old, adv, mask = _inputs([[1.0]], [1.0])
    with pytest.raises(ValueError, match="ref_logp"):
        policy_loss(logp, old, old, adv, mask, AlgorithmConfig(kl_coef=0.1), 1)
