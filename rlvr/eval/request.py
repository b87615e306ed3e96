"""What one ``rlvr eval`` runs, settled before any engine starts: benchmarks, sampling, prompts and answer
extraction (a trial's own evaluation settings, else the study's, with the command line's on top), checked, and
fitted to the model's context."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import get_args

from pydantic import BaseModel, ValidationError

from rlvr.config.schema import BenchmarkSpec, DataConfig, EvalConfig, ModelConfig, RewardConfig, TrialConfig
from rlvr.config.validate import unknown_benchmark
from rlvr.data.prompts import TEMPLATES
from rlvr.errors import UsageError

DEFAULT_BENCHMARKS = ["math500"]
DEFAULT_PROMPT_TEMPLATE = "study"


@dataclass(frozen=True)
class Given:
    """The evaluation settings given on the command line; None keeps the trial's (or the default)."""

    benchmarks: list[str] | None = None
    k: int | None = None
    limit: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_new_tokens: int | None = None
    prompt_template: str | None = None
    extraction: str | None = None


@dataclass(frozen=True)
class EvalRequest:
    specs: list[BenchmarkSpec]
    eval_cfg: EvalConfig
    data_cfg: DataConfig
    extraction: str


def option_checked(model: type[BaseModel], data: dict):
    """``model`` built from command-line values; a bad one is a UsageError naming its option (field k -> --k)."""
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise UsageError(
            "; ".join(
                f"--{str(err['loc'][-1]).replace('_', '-')}: {err['input']!r} is not allowed: {err['msg']}"
                for err in e.errors()
            )
        ) from None


def extraction_rule(requested: str | None, trial_rule: str | None) -> str:
    """The one answer-extraction rule of an evaluation: a trial's checkpoint is scored with the rule its own
    evaluation used (``reward.extraction``), anything else with the rule trials default to (study)."""
    if trial_rule is None:
        return requested or RewardConfig().extraction
    if requested is not None and requested != trial_rule:
        raise UsageError(
            f"--extraction {requested}: the trial scored its own evaluation with reward.extraction "
            f"{trial_rule!r}; leave --extraction out (or pass {trial_rule}) so the scores compare"
        )
    return trial_rule


def _specs(given: Given, trial: TrialConfig | None) -> list[BenchmarkSpec]:
    """The trial's benchmarks (each with its k and limit) or the named ones, with --k and --limit on top."""
    if given.benchmarks:
        raw = [
            {"name": b.removeprefix("hub:"), "hub_name": b.removeprefix("hub:") if b.startswith("hub:") else None}
            for b in given.benchmarks
        ]
    elif trial is not None and trial.eval.benchmarks:
        raw = [b.model_dump() for b in trial.eval.benchmarks]
    elif trial is not None:
        raise UsageError("--benchmarks: the trial evaluated on no benchmark (eval.benchmarks is empty); name some")
    else:
        raw = [{"name": b} for b in DEFAULT_BENCHMARKS]
    top = {"k": given.k, "limit": given.limit}
    specs = [option_checked(BenchmarkSpec, {**r, **{f: v for f, v in top.items() if v is not None}}) for r in raw]
    problems = [p for s in specs if (p := unknown_benchmark(s)) is not None]
    if problems:
        raise UsageError("--benchmarks: " + "; ".join(problems))
    return specs


def resolve(given: Given, trial: TrialConfig | None, data_dir: str) -> EvalRequest:
    """The evaluation a command asks for, every setting checked: with a trial, its own evaluation settings, prompt
    template and answer extraction unless given; without, the study's. Raises UsageError naming the option."""
    base_eval = trial.eval if trial is not None else EvalConfig()
    sampling = {f: v for f in ("temperature", "top_p", "max_new_tokens") if (v := getattr(given, f)) is not None}
    eval_cfg = option_checked(EvalConfig, {**base_eval.model_dump(), **sampling, "benchmarks": []})
    if trial is not None:
        template = given.prompt_template or trial.data.prompt_template
        data_cfg = trial.data.model_copy(update={"prompt_template": template})
    else:
        data_cfg = DataConfig(prompt_template=given.prompt_template or DEFAULT_PROMPT_TEMPLATE, data_dir=data_dir)
    if data_cfg.prompt_template not in TEMPLATES:
        raise UsageError(
            f"--prompt-template: {data_cfg.prompt_template!r} is not a template; allowed: {', '.join(TEMPLATES)}"
        )
    rules = get_args(RewardConfig.model_fields["extraction"].annotation)
    if given.extraction is not None and given.extraction not in rules:
        raise UsageError(f"--extraction: {given.extraction!r} is not a rule; allowed: {', '.join(rules)}")
    extraction = extraction_rule(given.extraction, trial.reward.extraction if trial is not None else None)
    return EvalRequest(_specs(given, trial), eval_cfg, data_cfg, extraction)


def context_length(model_cfg: ModelConfig, path: str) -> int | None:
    """Positions the model accepts: a tiny model's config, else the weights' config.json (what vLLM derives its
    limit from), else the config's architecture section; None when none says."""
    if model_cfg.tiny is not None:
        return model_cfg.tiny.max_position_embeddings
    try:
        from transformers import AutoConfig

        found = getattr(
            AutoConfig.from_pretrained(path, trust_remote_code=model_cfg.trust_remote_code),
            "max_position_embeddings",
            None,
        )
    except OSError:  # not a local directory and not in the hub cache: vLLM will say what it finds
        found = None
    if found is None and model_cfg.architecture is not None:
        found = model_cfg.architecture.max_position_embeddings
    return found


def fit_context(
    request: EvalRequest, longest_prompt: int, context: int | None, model: str, explicit: bool
) -> tuple[EvalRequest, str | None]:
    """The request with max_new_tokens capped to what the context leaves after the longest prompt, and a
    one-line notice saying so (None when nothing was capped); refused when the prompts leave no room, or when
    ``explicit`` (--max-new-tokens given) asks for more than there is."""
    wanted = request.eval_cfg.max_new_tokens
    if context is None or longest_prompt + wanted <= context:
        return request, None
    room = context - longest_prompt
    if room < 1 or explicit:
        fix = (
            f"pass --max-new-tokens {room} or less"
            if room >= 1
            else "use a shorter --prompt-template (plain has "
            "no instructions), other --benchmarks, or a model with a longer context"
        )
        raise UsageError(
            f"{model}: its context is {context} positions and the longest prompt takes {longest_prompt}, "
            f"which leaves {max(room, 0)} for the {wanted} new tokens asked; {fix}"
        )
    notice = (
        f"notice: max_new_tokens {wanted} capped to {room}: {model}'s context is {context} positions and the "
        f"longest prompt takes {longest_prompt}"
    )
    return replace(request, eval_cfg=request.eval_cfg.model_copy(update={"max_new_tokens": room})), notice
