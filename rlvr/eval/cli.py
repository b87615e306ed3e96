"""``rlvr eval``: evaluate a model, optionally with a trained adapter, on benchmarks and write Parquet tables."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import pyarrow as pa

from rlvr.config.loader import build, config_root, load_raw
from rlvr.config.schema import ModelConfig, RewardConfig, RolloutConfig, TrialConfig
from rlvr.errors import UsageError
from rlvr.eval.request import Given, context_length, fit_context, option_checked, resolve
from rlvr.export.source import TrialPolicy, choose_step, read_trial_config
from rlvr.models.loading import load_tokenizer, resolve_model_path
from rlvr.rewards.pool import RewardPool
from rlvr.rollout.spec import EngineSpec


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


def read_trial(trial_dir: str, step: int | None) -> tuple[TrialConfig, int]:
    """A trial directory's config and the checkpoint step to evaluate (the newest when ``step`` is None)."""
    try:
        return read_trial_config(trial_dir), choose_step(trial_dir, step)
    except FileNotFoundError as e:
        raise FileNotFoundError(f"--trial {e}") from None


def trial_checkpoint_model(trial_dir: str, cfg: TrialConfig, step: int, out_dir: Path) -> str:
    """The policy of a trial checkpoint as a plain model directory (rlvr.export.source: residual-aware for
    PiSSA/MiLoRA, an incomplete or altered checkpoint refused)."""
    TrialPolicy.load(trial_dir, step, cfg).write_merged(out_dir)
    return str(out_dir)


def resolve_model(model: str) -> tuple[str, ModelConfig]:
    """A model config name (configs/models/NAME.yaml, tiny models built on first use), else a path or hub name."""
    path = config_root() / "models" / f"{model}.yaml"
    if path.is_file():
        cfg = build(ModelConfig, load_raw(path), str(path))
        return resolve_model_path(cfg), cfg
    return model, ModelConfig(name=model)


def eval_command(
    model: str,
    adapter: str | None,
    benchmarks: list[str] | None,
    k: int | None,
    limit: int | None,
    engine: str,
    out: str,
    temperature: float | None = None,
    top_p: float | None = None,
    max_new_tokens: int | None = None,
    prompt_template: str | None = None,
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
    checkpoint (the newest, or ``trial_step``). A trial is evaluated with its own evaluation settings, prompt
    template, data and answer extraction, anything else with the study's (``rlvr.eval.request``); an argument
    left None keeps that setting, and a benchmark named ``hub:<dataset>`` loads from the hub. Every setting, and
    whether the prompts fit the model's context, is checked before an engine starts."""
    if trial and adapter:
        raise UsageError("--adapter: a --trial's checkpoint is its own policy; pass one of --trial and --adapter")
    rollout = option_checked(RolloutConfig, {"engine": engine})
    trial_cfg, step = read_trial(trial, trial_step) if trial else (None, step)
    given = Given(benchmarks, k, limit, temperature, top_p, max_new_tokens, prompt_template, extraction)
    request = resolve(given, trial_cfg, data_dir)
    from rlvr.eval.runner import benchmark_prompts, evaluate, write_eval  # the heavy imports, after the cheap checks
    from rlvr.rollout.registry import make_engine  # loads torch

    if trial_cfg:
        model_cfg = trial_cfg.model
        path = resolve_model_path(model_cfg)
        tokenizer = load_tokenizer(model_cfg, path)
    else:
        path, model_cfg = resolve_model(model)
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(path)
    prompts = benchmark_prompts(tokenizer, request.specs, request.data_cfg)
    longest = max((len(ids) for rows in prompts.values() for _, ids in rows), default=0)
    request, notice = fit_context(
        request, longest, context_length(model_cfg, path), model_cfg.name, explicit=max_new_tokens is not None
    )
    if notice:
        print(notice, file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory(prefix="rlvr-eval-") as tmp:
        if trial_cfg:
            path = trial_checkpoint_model(trial, trial_cfg, step, Path(tmp))
        elif adapter:
            path = merged_model(path, adapter, Path(tmp))
        new_tokens = request.eval_cfg.max_new_tokens
        rollout = rollout.model_copy(update={"max_new_tokens": new_tokens})
        spec = EngineSpec(model_cfg, rollout, max_model_len=longest + new_tokens)
        gen = make_engine(engine, model_path=path, spec=spec, seed=seed)
        try:
            with RewardPool(RewardConfig(workers=reward_workers, extraction=request.extraction)) as reward:
                samples, summary = evaluate(
                    gen, tokenizer, request.specs, request.eval_cfg, request.data_cfg, reward, seed, prompts
                )
        finally:
            gen.close()
    write_eval(out, step, samples, summary)
    return summary
