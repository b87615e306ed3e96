"""``rlvr eval``: evaluate a model, optionally with a trained adapter, on benchmarks and write Parquet tables."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pyarrow as pa

from rlvr.config.schema import (
    BenchmarkSpec, DataConfig, EvalConfig, ModelConfig, RewardConfig, RolloutConfig,
)
from rlvr.export.source import trial_checkpoint_model


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


def extraction_rule(requested: str | None, trial_rule: str | None) -> str:
    """The one answer-extraction rule of an evaluation: a trial's checkpoint is scored with the rule its own
    evaluation used (``reward.extraction``), anything else with the rule trials default to (study)."""
    if trial_rule is None:
        return requested or RewardConfig().extraction
    if requested is not None and requested != trial_rule:
        raise ValueError(f"--extraction {requested}: the trial scored its own evaluation with reward.extraction "
                         f"{trial_rule!r}; leave --extraction out (or pass {trial_rule}) so the scores compare")
    return trial_rule


def resolve_model(model: str) -> tuple[str, ModelConfig]:
    """A model config name (configs/models/NAME.yaml, tiny models built on first use), else a path or hub name."""
    from rlvr.config.loader import build, config_root, load_raw
    from rlvr.models.loading import resolve_model_path

    path = config_root() / "models" / f"{model}.yaml"
    if path.is_file():
        cfg = build(ModelConfig, load_raw(path), str(path))
        return resolve_model_path(cfg), cfg
    return model, ModelConfig(name=model)


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
    extraction: str | None = None,
    seed: int = 42,
    step: int = 0,
    trial: str | None = None,
    trial_step: int | None = None,
) -> pa.Table:
    """Evaluate and write ``<out>/eval/step_<step>/``; returns the summary. The policy is ``model`` (a models
    config name, a path or a hub name), ``model`` + a peft ``adapter`` directory, or a ``trial`` directory's
    checkpoint (the newest, or ``trial_step``), whose prompt template, system prompt and data directory are
    then used, with its answer extraction (see ``extraction_rule``). ``k`` None keeps each benchmark's default; a benchmark named ``hub:<dataset>`` loads from the hub."""
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
        if trial:
            path, trial_cfg, step = trial_checkpoint_model(trial, trial_step, Path(tmp))
            model_cfg, data_cfg = trial_cfg.model, trial_cfg.data
            extraction = extraction_rule(extraction, trial_cfg.reward.extraction)
        else:
            path, model_cfg = resolve_model(model)
            extraction = extraction_rule(extraction, None)
            if adapter:
                path = merged_model(path, adapter, Path(tmp))
        tokenizer = AutoTokenizer.from_pretrained(path)
        rollout = RolloutConfig(engine=engine, max_new_tokens=max_new_tokens, max_model_len=data_cfg.max_prompt_tokens + max_new_tokens)
        gen = make_engine(engine, model_path=path, model_cfg=model_cfg, rollout_cfg=rollout, max_lora_rank=None, seed=seed)
        try:
            with RewardPool(RewardConfig(workers=reward_workers, extraction=extraction)) as reward:
                samples, summary = evaluate(gen, tokenizer, specs, eval_cfg, data_cfg, reward, seed)
        finally:
            gen.close()
    write_eval(out, step, samples, summary)
    return summary
