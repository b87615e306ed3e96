"""A synthetic sweep run directory in the storage layout the trial and sweep code write.

Seven trials on one model: LoRA over two seeds, DoRA, PiSSA (its updates inside W0's principal subspace),
VeRA (one benchmark not evaluated), full fine-tuning (failed) and IA3 (still running, absent from
results.parquet). Spectral tables are computed by the real analysis code on small random matrices.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from rlvr.analysis.spectral import analyze_weights, rows_to_table
from rlvr.config.loader import dump
from rlvr.config.schema import CheckpointConfig, MethodConfig, ModelConfig, TrialConfig

MODEL = "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B"
BENCHES = {"aime24": 32, "math500": 4}
# trial_id: (method, group, rank, seed, status, trainable %, accuracy by benchmark or None)
TRIALS = {
    "aaaaaaaaaa01": ("lora", "baseline", 16, 1, "done", 0.5, {"aime24": 0.30, "math500": 0.70}),
    "aaaaaaaaaa02": ("lora", "baseline", 16, 2, "done", 0.5, {"aime24": 0.34, "math500": 0.74}),
    "aaaaaaaaaa03": ("dora", "structural", 32, 1, "done", 1.0, {"aime24": 0.40, "math500": 0.80}),
    "aaaaaaaaaa04": ("pissa", "svd_init", 32, 1, "done", 1.0, {"aime24": 0.01, "math500": 0.02}),
    "aaaaaaaaaa05": ("vera", "efficiency", 32, 1, "done", 0.01, {"aime24": 0.20, "math500": None}),
    "aaaaaaaaaa06": ("full", "baseline", None, 1, "failed", 100.0, None),
    "aaaaaaaaaa07": ("ia3", "other", None, 1, "running", 0.02, None),
}
STEPS = (8, 16)
BASE = {"aime24": 0.25, "math500": 0.60}  # every trial's step-0 evaluation (the base model)


def _label(method: str, seed: int) -> str:
    return f"{MODEL.rsplit('/', 1)[-1]}/paper/{method}/seed{seed}"


def _results_row(trial_id: str) -> dict:
    method, group, rank, seed, status, pct, acc = TRIALS[trial_id]
    row = {
        "trial_id": trial_id,
        "label": _label(method, seed),
        "model": MODEL,
        "method": method,
        "group": group,
        "preset": "paper",
        "rank": rank,
        "seed": seed,
        "trainable_params": int(pct * 1e7),
        "trainable_pct": pct,
        "status": status,
        "final_reward": 0.5 if acc else None,
        "steps_done": STEPS[-1] if acc else 3,
    }
    for b, k in BENCHES.items():
        value = (acc or {}).get(b)
        row[f"eval/{b}/avg_at_k"] = value if value is not None else math.nan
        row[f"eval/{b}/pass_at_k"] = min(1.0, 1.5 * value) if value is not None else math.nan
        row[f"eval/{b}/k"] = k
    done = [v for v in (acc or {}).values() if v is not None]
    row["eval/average/avg_at_k"] = sum(done) / len(done) if done else math.nan
    return row


def _spectral(principal: bool, seed: int) -> pa.Table:
    g = torch.Generator().manual_seed(seed)
    base = {f"model.layers.{i}.self_attn.q_proj.weight": torch.randn(32, 24, generator=g) for i in range(2)}
    rows = []
    for step in STEPS:
        current = {}
        for name, W in base.items():
            U, _, Vh = torch.linalg.svd(W, full_matrices=False)
            if principal:
                dW = U[:, :4] @ torch.randn(4, 4, generator=g) @ Vh[:4]
            else:
                dW = torch.randn(32, 24, generator=g)
            current[name] = W + 0.01 * step * dW
        rows += analyze_weights(base, current, step, k=4)
    return rows_to_table(rows)


PROBLEMS = 40  # per benchmark, each sampled k=4 times in the samples table


def _write_samples(trial: Path, acc: dict, seed: int) -> None:
    """Per-sample correctness of the last evaluation, drawn around the trial's accuracy per benchmark."""
    rng = np.random.default_rng(seed)
    rows = [
        {"benchmark": b, "problem_id": f"{b}-{p}", "sample_index": j, "correct": bool(rng.random() < acc[b])}
        for b in BENCHES
        if acc.get(b) is not None
        for p in range(PROBLEMS)
        for j in range(4)
    ]
    (trial / "eval" / f"step_{STEPS[-1]:06d}").mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows), trial / "eval" / f"step_{STEPS[-1]:06d}" / "samples.parquet")


def make_run(root: Path, with_spectral: bool = True) -> Path:
    run = root / "run"
    (run / "ledger").mkdir(parents=True)
    (run / "sweep.yaml").write_text("name: fake-sweep\n")
    for i, (trial_id, (method, _, rank, seed, status, pct, acc)) in enumerate(TRIALS.items()):
        trial = run / "trials" / trial_id
        (trial / "eval").mkdir(parents=True)
        cfg = TrialConfig(
            name=_label(method, seed),
            seed=seed,
            steps=STEPS[-1],
            checkpoint=CheckpointConfig(every_steps=STEPS[-1]),
            model=ModelConfig(name=MODEL),
            method=MethodConfig(name=method, preset="paper", rank=rank),
        )
        (trial / "config.yaml").write_text(dump(cfg))
        (trial / "record.json").write_text(
            json.dumps(
                {
                    "method": {"name": method},
                    "trainable_pct": pct,
                    "trainable_params": int(pct * 1e7),
                    "total_params": 10**9,
                }
            )
        )
        steps_logged = STEPS[-1] if status == "done" else 3
        with open(trial / "metrics.jsonl", "w") as f:
            for step in range(1, steps_logged + 1):
                f.write(
                    json.dumps(
                        {
                            "step": step,
                            "reward_mean": 0.1 + 0.01 * step * (i + seed),
                            "accuracy": 0.01 * step * (i + 1),
                            "response_len": 100 + i * step,
                            "entropy": 1.0 - 0.01 * i * step,
                            "kl": 0.0,
                            "response_len_max": 200 + i * step,
                            "truncated_frac": 0.1 / step,
                            "overlong_penalty_mean": -0.05 / step,
                        }
                    )
                    + "\n"
                )
            if status == "running":
                f.write('{"step": 4, "reward_me')  # a line being written right now
        evals = [
            {"benchmark": b, "avg_at_k": v, "pass_at_k": min(1.0, 1.5 * v), "k": BENCHES[b], "step": 0}
            for b, v in BASE.items()
        ]
        evals += [
            {"benchmark": b, "avg_at_k": v, "pass_at_k": min(1.0, 1.5 * v), "k": BENCHES[b], "step": STEPS[-1]}
            for b, v in (acc or {}).items()
            if v is not None and status == "done"
        ]
        pq.write_table(pa.Table.from_pylist(evals), trial / "eval" / "summary.parquet")
        entry = {
            "trial_id": trial_id,
            "label": _label(method, seed),
            "status": status,
            "attempts": 1,
            "step": steps_logged,
        }
        if status == "failed":
            entry.update(attempts=3, error="RuntimeError: learner died")
        (run / "ledger" / f"{trial_id}.json").write_text(json.dumps(entry))
        if status == "done":
            _write_samples(trial, acc, seed=i)
        if with_spectral and status == "done":
            (trial / "analysis").mkdir()
            pq.write_table(_spectral(method == "pissa", seed=i), trial / "analysis" / "spectral.parquet")
    # IA3 is still running: the sweep has not written its row yet.
    pq.write_table(
        pa.Table.from_pylist([_results_row(t) for t in TRIALS if t != "aaaaaaaaaa07"]), run / "results.parquet"
    )
    return run
