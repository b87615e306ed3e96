"""Spectral metrics on matrices whose answer is known by construction."""

import math

import pytest
import torch

from rlvr.analysis.spectral import (
    SVD,
    analyze_weights,
    describe_name,
    effective_rank,
    module_metrics,
    principal_angles,
    random_baselines,
    rows_to_table,
    spectral_drift,
    subspace_energy,
)

M, N, K = 96, 64, 8


@pytest.fixture
def W0():
    g = torch.Generator().manual_seed(0)
    return torch.randn(M, N, generator=g)


def _inside(base: SVD, top: bool, g: torch.Generator) -> torch.Tensor:
    """A random update confined to W0's top-K (or bottom-K) singular directions on both sides."""
    sl = slice(0, K) if top else slice(-K, None)
    U, V = base.U[:, sl], base.Vh[sl].T
    return U @ torch.randn(K, K, generator=g) @ V.T


def test_update_inside_principal_subspace_has_energy_share_one(W0):
    base = SVD.of(W0)
    dW = _inside(base, True, torch.Generator().manual_seed(1))
    e = subspace_energy(dW, base.U[:, :K], base.Vh[:K].T)
    assert e["two_sided"] == pytest.approx(1, abs=1e-4)
    assert e["left"] == pytest.approx(1, abs=1e-4) and e["right"] == pytest.approx(1, abs=1e-4)


def test_update_inside_bottom_subspace_has_energy_share_zero(W0):
    base = SVD.of(W0)
    dW = _inside(base, False, torch.Generator().manual_seed(2))
    e = subspace_energy(dW, base.U[:, :K], base.Vh[:K].T)
    assert e["two_sided"] == pytest.approx(0, abs=1e-4)
    assert e["left"] == pytest.approx(0, abs=1e-4) and e["right"] == pytest.approx(0, abs=1e-4)


def test_left_only_update_fills_left_subspace_and_right_share_is_random():
    g = torch.Generator().manual_seed(3)
    W0 = torch.randn(256, 256, generator=g)
    base = SVD.of(W0)
    dW = base.U[:, :K] @ torch.randn(K, 256, generator=g)
    e = subspace_energy(dW, base.U[:, :K], base.Vh[:K].T)
    assert e["left"] == pytest.approx(1, abs=1e-4)
    assert e["right"] == pytest.approx(K / 256, rel=0.35)
    assert e["two_sided"] == pytest.approx(e["right"], rel=1e-3)


def test_random_update_sits_near_the_random_baseline():
    g = torch.Generator().manual_seed(4)
    m, n, k = 160, 128, 16
    base = SVD.of(torch.randn(m, n, generator=g))
    shares = [subspace_energy(torch.randn(m, n, generator=g), base.U[:, :k], base.Vh[:k].T) for _ in range(8)]
    expected = random_baselines(m, n, k)
    assert expected == {"two_sided": (k / m) * (k / n), "left": k / m, "right": k / n}
    for side in ("two_sided", "left", "right"):
        mean = sum(s[side] for s in shares) / len(shares)
        assert mean == pytest.approx(expected[side], rel=0.15), side


@pytest.mark.parametrize("r", [1, 4, 16])
def test_rank_r_update_with_equal_singular_values_has_effective_rank_r(r):
    g = torch.Generator().manual_seed(r)
    Q1, _ = torch.linalg.qr(torch.randn(M, r, generator=g))
    Q2, _ = torch.linalg.qr(torch.randn(N, r, generator=g))
    dW = 0.01 * Q1 @ Q2.T
    assert effective_rank(torch.linalg.svdvals(dW)) == pytest.approx(r, rel=1e-3)


def test_random_low_rank_update_has_effective_rank_at_most_its_rank():
    g = torch.Generator().manual_seed(5)
    dW = torch.randn(M, 8, generator=g) @ torch.randn(8, N, generator=g)
    assert 5 < effective_rank(torch.linalg.svdvals(dW)) <= 8


def test_zero_update_has_effective_rank_zero_and_undefined_energy(W0):
    m = module_metrics(W0, W0.clone(), K)
    assert m["dw_effective_rank"] == 0 and m["dw_norm"] == 0
    assert math.isnan(m["energy_two_sided"])


def test_unchanged_weight_has_zero_principal_angles_and_zero_drift(W0):
    m = module_metrics(W0, W0.clone(), K)
    assert m["angle_left_max_deg"] == pytest.approx(0, abs=1e-2)
    assert m["angle_right_max_deg"] == pytest.approx(0, abs=1e-2)
    assert m["drift"] == 0


def test_principal_angles_recover_a_known_rotation():
    theta = math.radians(30)
    e = torch.eye(6)
    A = e[:, :2]
    B = torch.stack([e[:, 0], math.cos(theta) * e[:, 1] + math.sin(theta) * e[:, 4]], dim=1)
    angles = torch.rad2deg(principal_angles(A, B))
    assert angles.tolist() == pytest.approx([0, 30], abs=1e-3)


def test_drift_of_doubled_weight_is_one(W0):
    assert spectral_drift(torch.linalg.svdvals(W0), torch.linalg.svdvals(2 * W0)) == pytest.approx(1, rel=1e-5)
    assert module_metrics(W0, 2 * W0, K)["drift"] == pytest.approx(1, rel=1e-5)


def test_module_metrics_rejects_mismatched_shapes(W0):
    with pytest.raises(ValueError, match="one shape"):
        module_metrics(W0, W0.T, K)


def test_analyze_weights_names_layers_and_skips_vectors_and_caches_base_svd(W0):
    base = {"model.layers.3.self_attn.q_proj.weight": W0, "model.norm.weight": torch.ones(N)}
    current = {"model.layers.3.self_attn.q_proj.weight": W0 + 0.1, "model.norm.weight": torch.ones(N) * 2}
    cache = {}
    rows = analyze_weights(base, current, step=64, k=K, svd_cache=cache)
    assert len(rows) == 1 and set(cache) == {"model.layers.3.self_attn.q_proj.weight"}
    row = rows[0]
    assert (row["step"], row["module"], row["layer"], row["k"]) == (64, "q_proj", 3, K)
    # A constant shift is rank one.
    assert row["dw_effective_rank"] == pytest.approx(1, abs=1e-3)
    table = rows_to_table(rows + analyze_weights(base, base, step=0, k=K, svd_cache=cache))
    assert table.num_rows == 2 and table.column("energy_two_sided").null_count == 1


def test_describe_name_handles_non_layer_weights():
    assert describe_name("model.layers.12.mlp.down_proj.weight") == ("down_proj", 12)
    assert describe_name("lm_head.weight") == ("lm_head", None)


def test_analyze_weights_reports_a_weight_missing_from_the_base(W0):
    with pytest.raises(KeyError, match="no base weight"):
        analyze_weights({}, {"model.layers.0.mlp.up_proj.weight": W0}, step=1)
