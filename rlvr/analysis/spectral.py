"""Where in a weight matrix's spectrum the RL update lives.

For every adapted linear module, W0 (the pristine base) against W_t (the trained policy's effective weight):
the singular spectrum and effective rank of dW = W_t - W0, the share of dW's energy inside the top-k singular
subspaces of W0 next to what a random dW would put there, the principal angles between the top-k subspaces of
W0 and W_t, and the relative drift of W's singular values. The study's "spectral collapse" claim is that
SVD-initialised methods (PiSSA) update inside W0's principal subspace while RLVR learns off it; these numbers
test that per module and per checkpoint.

Weights are (out, in) = (m, n) as torch stores them: left singular vectors live in the output space, right ones
in the input space. Everything is computed in fp32 with torch.linalg.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass

import pyarrow as pa
import torch

from rlvr.analysis.rundir import RunDir, TrialDir
from rlvr.models.loading import load_model, resolve_model_path
from rlvr.peft_methods.policy import build_policy

DEFAULT_K = 16
SPECTRUM_LEN = 128  # singular values of dW kept per row; the effective rank uses all of them
_LAYER = re.compile(r"(?:^|\.)layers\.(\d+)\.")


@dataclass(frozen=True)
class SVD:
    """Thin SVD of a matrix, W = U diag(S) Vh, optionally with only the top-k singular vectors kept."""

    U: torch.Tensor
    S: torch.Tensor
    Vh: torch.Tensor

    @classmethod
    def of(cls, W: torch.Tensor, k: int | None = None) -> SVD:
        U, S, Vh = torch.linalg.svd(W.float(), full_matrices=False)
        return cls(U[:, :k], S, Vh[:k]) if k else cls(U, S, Vh)


def effective_rank(s: torch.Tensor) -> float:
    """Roy & Vetterli's effective rank exp(H(p)), p = s / sum(s), over the numerically non-zero singular values.

    Equals r for r equal non-zero singular values; 0 for the zero matrix.
    """
    s = s.float()
    if s.numel() == 0 or float(s.max()) == 0.0:
        return 0.0
    # Drop what is rounding noise (the threshold torch.linalg.matrix_rank uses), not small real directions.
    s = s[s > s.max() * s.numel() * torch.finfo(torch.float32).eps]
    p = s / s.sum()
    return float(torch.exp(-(p * p.log()).sum()))


def subspace_energy(dW: torch.Tensor, Uk: torch.Tensor, Vk: torch.Tensor) -> dict[str, float]:
    """Share of ||dW||_F^2 inside span(Uk) x span(Vk) (two-sided), span(Uk) (left) and span(Vk) (right).

    ``Uk`` (m, k) and ``Vk`` (n, k) have orthonormal columns. Undefined (NaN) for dW = 0.
    """
    total = float(dW.pow(2).sum())
    if total == 0.0:
        return {"two_sided": math.nan, "left": math.nan, "right": math.nan}
    left = Uk.T @ dW
    return {
        "two_sided": float((left @ Vk).pow(2).sum()) / total,
        "left": float(left.pow(2).sum()) / total,
        "right": float((dW @ Vk).pow(2).sum()) / total,
    }


def random_baselines(m: int, n: int, k: int) -> dict[str, float]:
    """Expected subspace_energy of an isotropic random dW (m, n): k/m * k/n, k/m and k/n.

    For Gaussian dW every orthonormal direction carries the same expected energy, so a fixed k-dimensional
    subspace holds its dimension's share of it.
    """
    return {"two_sided": (k / m) * (k / n), "left": k / m, "right": k / n}


def principal_angles(A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    """Principal angles (radians, ascending) between the column spans of orthonormal A (m, k) and B (m, k).

    Small angles come from the sines and large ones from the cosines (Knyazev & Argentati): arccos alone
    loses all precision near 0, which is exactly where identical subspaces must read 0.
    """
    cos = torch.linalg.svdvals(A.T @ B).clamp(0, 1)  # descending, so angles ascending
    sin = torch.linalg.svdvals(B - A @ (A.T @ B)).clamp(0, 1).flip(0)  # ascending
    return torch.where(cos.pow(2) < 0.5, torch.arccos(cos), torch.arcsin(sin))


def spectral_drift(s0: torch.Tensor, st: torch.Tensor) -> float:
    """||sigma(W_t) - sigma(W0)|| / ||sigma(W0)|| with both spectra sorted descending."""
    return float(torch.linalg.vector_norm(st - s0) / torch.linalg.vector_norm(s0))


def module_metrics(W0: torch.Tensor, Wt: torch.Tensor, k: int = DEFAULT_K, base: SVD | None = None) -> dict:
    """All spectral numbers of one module; ``base`` is W0's SVD (top-k vectors suffice) when the caller caches it."""
    if W0.shape != Wt.shape or W0.dim() != 2:
        raise ValueError(f"module_metrics needs two matrices of one shape, got {tuple(W0.shape)} and {tuple(Wt.shape)}")
    W0, Wt = W0.float(), Wt.float()
    m, n = W0.shape
    k = min(k, m, n)
    base = base or SVD.of(W0, k)
    cur = SVD.of(Wt, k)
    dW = Wt - W0
    s_dw = torch.linalg.svdvals(dW)
    energy = subspace_energy(dW, base.U[:, :k], base.Vh[:k].T)
    baseline = random_baselines(m, n, k)
    left = torch.rad2deg(principal_angles(base.U[:, :k], cur.U[:, :k]))
    right = torch.rad2deg(principal_angles(base.Vh[:k].T, cur.Vh[:k].T))
    w0_norm = float(torch.linalg.vector_norm(base.S))
    return {
        "m": m,
        "n": n,
        "k": k,
        "dw_norm": float(torch.linalg.vector_norm(s_dw)),
        "dw_rel_norm": float(torch.linalg.vector_norm(s_dw)) / w0_norm if w0_norm else math.nan,
        "dw_effective_rank": effective_rank(s_dw),
        "dw_spectrum": s_dw[:SPECTRUM_LEN].tolist(),
        **{f"energy_{side}": v for side, v in energy.items()},
        **{f"baseline_{side}": v for side, v in baseline.items()},
        "angle_left_max_deg": float(left.max()),
        "angle_left_mean_deg": float(left.mean()),
        "angle_right_max_deg": float(right.max()),
        "angle_right_mean_deg": float(right.mean()),
        "drift": spectral_drift(base.S, cur.S),
    }


def describe_name(name: str) -> tuple[str, int | None]:
    """(module kind, layer index) of an HF weight name: model.layers.3.self_attn.q_proj.weight -> (q_proj, 3)."""
    stem = name.removesuffix(".weight")
    layer = _LAYER.search(stem)
    return stem.rsplit(".", 1)[-1], int(layer.group(1)) if layer else None


def _analyzed(name: str, weight: torch.Tensor) -> bool:
    return weight.dim() == 2 and describe_name(name)[1] is not None


def analyze_weights(
    base: dict[str, torch.Tensor],
    current: dict[str, torch.Tensor],
    step: int,
    k: int = DEFAULT_K,
    svd_cache: dict[str, SVD] | None = None,
    device: str = "cpu",
) -> list[dict]:
    """One row per decoder-layer matrix in ``current`` (W_t by HF name) against ``base`` (W0).

    Vectors (norm scales) and matrices outside the decoder layers (embeddings, lm_head, which only full
    fine-tuning changes and whose vocabulary-sized SVD would dominate the cost) are skipped. ``svd_cache``
    keeps W0's SVDs (top-k vectors only) between calls, since the base is the same at every step of a trial.
    The SVDs run on ``device``; the inputs may stay on the CPU.
    """
    svd_cache = {} if svd_cache is None else svd_cache
    rows = []
    for name in sorted(current):
        Wt = current[name]
        if not _analyzed(name, Wt):
            continue
        if name not in base:
            raise KeyError(
                f"effective weight {name!r} has no base weight; base names look like {next(iter(base), '-')!r}"
            )
        W0, Wt = base[name].to(device), Wt.to(device)
        if name not in svd_cache:
            svd_cache[name] = SVD.of(W0, k)
        module, layer = describe_name(name)
        metrics = module_metrics(W0, Wt, k, svd_cache[name])
        rows.append({"step": step, "param": name, "module": module, "layer": layer, **metrics})
    return rows


SCHEMA_TYPES = {
    "step": pa.int64(),
    "param": pa.string(),
    "module": pa.string(),
    "layer": pa.int64(),
    "m": pa.int64(),
    "n": pa.int64(),
    "k": pa.int64(),
    "dw_spectrum": pa.list_(pa.float32()),
}


def rows_to_table(rows: list[dict]) -> pa.Table:
    """Rows of analyze_weights as a table; NaN (undefined energy share of a zero update) becomes null."""
    if not rows:
        return pa.table({})
    columns = {}
    for key in rows[0]:
        values = [r[key] for r in rows]
        if key not in SCHEMA_TYPES:
            values = [None if v is None or (isinstance(v, float) and math.isnan(v)) else v for v in values]
        columns[key] = pa.array(values, type=SCHEMA_TYPES.get(key, pa.float64()))
    return pa.table(columns)


def _load_base_and_policy(trial: TrialDir):
    """The pristine base weights (fp32 copies taken before any adapter touches the model) and the rebuilt policy."""
    cfg = trial.config()
    if cfg is None:
        raise FileNotFoundError(f"{trial.uri}: no config.yaml; is this a trial directory (<run>/trials/<trial_id>)?")
    model = load_model(cfg.model, resolve_model_path(cfg.model), "cpu")
    # PiSSA/MiLoRA rewrite the base into a residual when the adapter is built: copy W0 first.
    base = {name: p.detach().float().clone() for name, p in model.state_dict().items() if _analyzed(name, p)}
    return base, build_policy(model, cfg.method, cfg.steps)


def analyze_trial(
    trial_dir: str | TrialDir,
    steps: Iterable[int] | None = None,
    k: int = DEFAULT_K,
    write: bool = True,
    device: str = "auto",
) -> pa.Table:
    """Spectral rows (step, param, module, layer, metrics) for a trial's checkpoints (all, or ``steps``).

    Each checkpoint is loaded into the method's policy rebuilt with ``build_policy``; its ``effective_weights``
    (residual-aware for PiSSA/MiLoRA) are W_t. With ``write``, the table goes to ``analysis/spectral.parquet``.
    The model stays on the CPU; the SVDs run on ``device`` ("auto": a GPU when there is one).
    """
    trial = trial_dir if isinstance(trial_dir, TrialDir) else TrialDir(trial_dir)
    available = trial.checkpoint_steps()
    wanted = available if steps is None else sorted(set(steps))
    missing = [s for s in wanted if s not in available]
    if missing:
        raise ValueError(f"{trial.uri}: steps {missing} have no checkpoint; available steps: {available or 'none'}")
    if not wanted:
        raise FileNotFoundError(f"{trial.uri}: no complete checkpoint (a checkpoints/step_N/ folder with meta.json)")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    base, policy = _load_base_and_policy(trial)
    cache: dict[str, SVD] = {}
    rows = []
    with torch.no_grad():
        for step in wanted:
            policy.load_trainable_state_dict(trial.trainable_state(step))
            rows += analyze_weights(base, policy.effective_weights(), step, k, cache, device)
    table = rows_to_table(rows)
    if write:
        trial.write_parquet("analysis/spectral.parquet", table)
    return table


def analyze_run(run_dir: str, k: int = DEFAULT_K, steps: Iterable[int] | None = None, device: str = "auto") -> pa.Table:
    """analyze_trial for every trial of a run that has checkpoints (those of ``steps`` it has, when given).

    The rows gain a ``trial_id`` column; each trial's own table is written to its analysis/ folder.
    """
    run = RunDir(run_dir)
    tables = []
    for trial_id in run.trial_ids():
        trial = run.trial(trial_id)
        available = trial.checkpoint_steps()
        chosen = available if steps is None else sorted(set(steps) & set(available))
        if not chosen:
            continue
        table = analyze_trial(trial, chosen, k, device=device)
        tables.append(table.add_column(0, "trial_id", pa.array([trial_id] * table.num_rows, pa.string())))
    return pa.concat_tables(tables) if tables else pa.table({})
