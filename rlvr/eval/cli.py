"""``rlvr eval``: evaluate a model, optionally with a trained adapter, on benchmarks and write Parquet tables."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pyarrow as pa

from rlvr.config.schema import BenchmarkSpec, DataConfig, EvalConfig, ModelConfig, RewardConfig, RolloutConfig


def merged_model(model: str, adapter: str, out_dir: Path) -> str:
    """Base + adapter merged in fp32 with peft and saved, so every method (DoRA, VeRA, IA3...) and both
    engines are served the same way. The adapter must have been saved against this base."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32)
    PeftModel.from_pretrained(base, adapter).merge_and_unload().save_pretrained(out_dir)
    AutoTokenizer.from_pretrained(model).save_pretrained(out_dir)
    return str(out_dir)


def eval_command(
    model: str,
    adapter: str | None,
    benchmarks: list[str],
    k: int | None,
    limit: int | None,
    engine: str,
    out: str,
    temperature: float = 0.7,
    top_p: float = 0.9,
    max_new_tokens: int = 31744,
    prompt_template: str = "study",
    data_dir: str = "../shared/data",
    reward_workers: int = 2,
    extraction: str = "lenient",
    seed: int = 42,
    step: int = 0,
) -> pa.Table:
    """Evaluate and write ``<out>/eval/step_<step>/``; returns the summary. ``k`` None keeps each benchmark's
    default (BenchmarkSpec.k); a benchmark named ``hub:<dataset>`` loads from the hub."""
    from transformers import AutoTokenizer

    from rlvr.eval.runner import evaluate, write_eval
    from rlvr.rewards.pool import RewardPool
    from rlvr.rollout.registry import make_engine

    specs = [
        BenchmarkSpec(name=b.removeprefix("hub:"), hub_name=b.removeprefix("hub:") if b.startswith("hub:") else None,
                      limit=limit, **({"k": k} if k else {}))
        for b in benchmarks
    ]
    eval_cfg = EvalConfig(benchmarks=specs, temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens)
    data_cfg = DataConfig(prompt_template=prompt_template, data_dir=data_dir)
    with tempfile.TemporaryDirectory(prefix="rlvr-eval-") as tmp:
        path = merged_model(model, adapter, Path(tmp)) if adapter else model
        tokenizer = AutoTokenizer.from_pretrained(path)
        rollout = RolloutConfig(engine=engine, max_new_tokens=max_new_tokens)
        gen = make_engine(engine, model_path=path, model_cfg=ModelConfig(name=model), rollout_cfg=rollout, max_lora_rank=None, seed=seed)
        try:
            with RewardPool(RewardConfig(workers=reward_workers, extraction=extraction)) as reward:
                samples, summary = evaluate(gen, tokenizer, specs, eval_cfg, data_cfg, reward, seed)
        finally:
            gen.close()
    write_eval(out, step, samples, summary)
    return summary
