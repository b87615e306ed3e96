"""The tenant learner's memory and time against solo learners: K LoRA tenants on one base in one process.

A random tiny Qwen2 (hidden 512, 8 layers, ~25M parameters, fp32 on CPU), LoRA r16 with dropout on all seven
linear modules, one thread. Each point runs in a fresh subprocess: ``solo`` builds one Learner and trains one step;
``tenants`` builds a TenantLearners with K tenants (seeds 1..K) and trains one step of each. Memory is VmRSS after
the steps less VmRSS before the base was loaded (the runtime is not the learner's), and the tensors each tenant
owns beyond the base's storage (exact, from the storages' sizes; optimizer state comes on top). Each tenant's step
metrics must equal a solo learner's of the same seed (checked here too: the ``solo`` points run seeds 1..K).

    nice -n 10 python benchmarks/bench_tenant_learner.py --tenants 4
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MB = 2**20


def _rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise KeyError("VmRSS")


def _spec(model_path: str, seed: int):
    from rlvr.config.schema import ALL_LINEAR, TrialConfig
    from rlvr.learner.spec import LearnerSpec

    cfg = TrialConfig(seed=seed, steps=64)
    cfg.model.name, cfg.model.dtype = model_path, "float32"
    cfg.method.name, cfg.method.rank, cfg.method.alpha, cfg.method.dropout = "lora", 16, 32, 0.05
    cfg.method.target_modules = list(ALL_LINEAR)
    cfg.algorithm.group_size, cfg.algorithm.prompts_per_step = 4, 2
    cfg.learner.backend, cfg.learner.device, cfg.learner.threads = "torch", "cpu", 1
    cfg.learner.micro_batch_size = 8
    return LearnerSpec.from_trial(cfg)


def _batch():
    from rlvr.learner.batch import RolloutBatch

    rng = random.Random(0)
    prompts = [[rng.randrange(3, 100) for _ in range(48)] for _ in range(8)]
    completions = [[rng.randrange(3, 100) for _ in range(64)] for _ in range(8)]
    return RolloutBatch(
        prompts, completions, [[-4.8] * 64 for _ in range(8)], [1.0 - 2 * (i % 2) for i in range(8)], [True] * 8
    )


def run_point(model_path: str, mode: str, tenants: int) -> dict:
    import torch  # noqa: F401  (imported before the baseline: the runtime is not the learner's memory)
    import transformers  # noqa: F401

    from rlvr.learner.learner import Learner
    from rlvr.learner.tenants import TenantLearners

    batch, baseline, out = _batch(), _rss(), {"mode": mode, "tenants": tenants}
    if mode == "solo":
        t0 = time.perf_counter()
        learners, out["metrics"] = [], []
        for seed in range(1, tenants + 1):  # each steps right after its build, which seeded the global RNG
            learners.append(Learner(_spec(model_path, seed), model_path))
            out["metrics"].append(learners[-1].train_step(batch))
    else:
        t0 = time.perf_counter()
        pool = TenantLearners(_spec(model_path, 1), model_path)
        base_rss = _rss() - baseline
        for t in range(tenants):
            pool.add(t, _spec(model_path, t + 1))
        out["metrics"] = [pool.call(t, "train_step", batch) for t in range(tenants)]
        out["base_rss_mb"] = base_rss / MB
        shared = {p.untyped_storage().data_ptr() for p in pool.base.parameters()}
        owns = []
        for t in range(tenants):
            model = pool.learner(t).policy.model
            storages = {p.untyped_storage().data_ptr(): p.untyped_storage().nbytes() for p in model.parameters()}
            owns.append(sum(n for ptr, n in storages.items() if ptr not in shared) / MB)
        out["own_mb"] = owns
        out["base_mb"] = sum(p.numel() * p.element_size() for p in pool.base.parameters()) / MB
    out["seconds"] = time.perf_counter() - t0
    out["rss_mb"] = (_rss() - baseline) / MB
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tenants", type=int, default=4)
    ap.add_argument("--point", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.point:
        print(json.dumps(run_point(args.point[0], args.point[1], int(args.point[2]))))
        return
    from rlvr.config.schema import TinyModelConfig
    from rlvr.models.tiny import build_model, build_tokenizer, save_tiny

    arch = TinyModelConfig(
        hidden_size=512, intermediate_size=1536, num_layers=8, num_heads=8, num_kv_heads=4, pretrain_steps=0
    )
    points = []
    with tempfile.TemporaryDirectory() as tmp:
        path = str(save_tiny(build_model(arch), build_tokenizer(), Path(tmp) / "model"))
        for mode, k in (("solo", 1), ("solo", args.tenants), ("tenants", 1), ("tenants", args.tenants)):
            cmd = [sys.executable, __file__, "--point", path, mode, str(k)]
            points.append(json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout))
    solo_k, tenants_k = points[1], points[3]
    assert solo_k["metrics"] == tenants_k["metrics"], "a tenant's step differs from its solo learner's"
    for p in points:
        extra = {k: p[k] for k in ("base_mb", "base_rss_mb", "own_mb") if k in p}
        print(f"{p['mode']:>8} K={p['tenants']}: RSS +{p['rss_mb']:.0f} MiB, {p['seconds']:.1f} s {extra}")
    per_solo = (points[1]["rss_mb"] - points[0]["rss_mb"]) / (args.tenants - 1)
    per_tenant = (points[3]["rss_mb"] - points[2]["rss_mb"]) / (args.tenants - 1)
    print(f"each further learner: solo +{per_solo:.0f} MiB, tenant +{per_tenant:.0f} MiB; metrics equal: True")


if __name__ == "__main__":
    main()
