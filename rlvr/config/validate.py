"""The cross-field rules: checked by the configs' model validators (rlvr.config.schema) whenever a TrialConfig or
SweepConfig is built, so before any engine, learner or GPU is touched."""

from __future__ import annotations

from rlvr.config.grid import expand
from rlvr.config.loader import ConfigError, ConfigProblems
from rlvr.config.memory_plan import plan_problems
from rlvr.config.methods import check_method_config, method_info, method_names
from rlvr.config.schema import VLLM_LORA_RANKS, BenchmarkSpec, SweepConfig, TrialConfig
from rlvr.config.sharing import shares_batch

BENCHMARKS = ("aime24", "aime25", "amc23", "hmmt25", "math500", "minerva_math", "olympiadbench")
SYNTHETIC_TASKS = ("addition", "arithmetic", "repeated_addition")
"""The tasks of rlvr.data.synthetic (its ``TASKS``, which tests/data/test_synthetic.py holds to these names)."""


def unknown_benchmark(spec: BenchmarkSpec) -> str | None:
    """What is wrong with a benchmark's name ('NAME is not ...; allowed: ...'), or None for a known one."""
    if spec.hub_name is not None:
        return None
    if spec.name.startswith("synthetic:"):
        task = spec.name.split(":", 1)[1]
        known = task in SYNTHETIC_TASKS
        allowed = ", ".join(SYNTHETIC_TASKS)
        return None if known else f"{spec.name!r}: synthetic task {task!r} is unknown; allowed: {allowed}"
    if spec.name in BENCHMARKS:
        return None
    return (
        f"{spec.name!r} is not a shipped benchmark; allowed: {', '.join(BENCHMARKS)}, synthetic:<task> "
        f"({', '.join(SYNTHETIC_TASKS)}), or a hub dataset (hub:<name>)"
    )


def _colocation_problems(cfg: TrialConfig, prefix: str) -> list[str]:
    """Engine i and learner rank i take turns on one GPU: the engine sleeps while the learners train."""
    roll, learner, model, p = cfg.rollout, cfg.learner, cfg.model, []
    if roll.engine != "vllm":
        p.append(
            f"{prefix}rollout.colocate: needs rollout.engine vllm (its sleep mode frees the GPU), got {roll.engine}"
        )
    if cfg.algorithm.async_rollout:
        p.append(
            f"{prefix}rollout.colocate: the engine sleeps while the learners train, so algorithm.async_rollout "
            "(generating during the update) cannot be on; turn one off"
        )
    if roll.num_engines != learner.num_learners:
        p.append(
            f"{prefix}rollout.colocate: one engine per learner rank shares its GPU; rollout.num_engines "
            f"{roll.num_engines} must equal learner.num_learners {learner.num_learners}"
        )
    if (model.gpus_per_engine, model.gpus_per_learner) != (1, 1):
        p.append(
            f"{prefix}rollout.colocate: engine and learner share one GPU; model.gpus_per_engine and gpus_per_learner "
            f"must be 1, got {model.gpus_per_engine} and {model.gpus_per_learner}"
        )
    return p


def _method_problems(cfg: TrialConfig, prefix: str) -> list[str]:
    method, learner = cfg.method, cfg.learner
    where = f"{prefix}method"
    if method.name not in method_names():
        return [f"{where}.name: {method.name!r} is not a known method; allowed: {', '.join(method_names())}"]
    problems = [f"{where}.{p}" for p in check_method_config(method)]
    if cfg.rollout.engine == "vllm" and method.rank is not None and method.rank > max(VLLM_LORA_RANKS):
        problems.append(f"{where}.rank: {method.rank} exceeds vLLM's largest max_lora_rank {max(VLLM_LORA_RANKS)}")
    route = method_info(method.name).route
    # native is also open to every method whose policy is a plain LoRA on the original base (its shared export)
    shared = ("native",) if shares_batch(method) else ()
    if cfg.rollout.sync_route not in ("auto", "merged", route, *shared):
        problems.append(
            f"{prefix}rollout.sync_route: {cfg.rollout.sync_route!r} cannot serve {method.name} (its route is "
            f"{route!r}); use auto, {route} or merged"
        )
    info = method_info(method.name)
    stages = info.zero_stages
    if learner.backend == "deepspeed" and learner.zero_stage not in stages:
        allowed = f"zero_stage {', '.join(map(str, stages))} or backend torch" if stages else "backend torch"
        problems.append(
            f"{prefix}learner.zero_stage: {learner.zero_stage} does not train {method.name} under DeepSpeed; use "
            f"{allowed}"
        )
    elif learner.sharding_stage == 3 and cfg.algorithm.kl_coef > 0 and info.swapped_reference:
        # the KL reference swaps the original W into parameters ZeRO-3 holds sharded: its gathers overwrite it
        # and the reference silently becomes the current policy (measured: KL 0)
        problems.append(
            f"{prefix}algorithm.kl_coef: {cfg.algorithm.kl_coef} needs {method.name}'s original weights as the KL "
            "reference, which ZeRO-3 cannot swap in; use learner.zero_stage 2 or kl_coef 0"
        )
    return problems


def trial_problems(cfg: TrialConfig, prefix: str = "") -> list[str]:
    """Every cross-field problem of a trial config, each as 'field.path: value and what is allowed'."""
    p: list[str] = []
    algo, roll, learner = cfg.algorithm, cfg.rollout, cfg.learner
    p += _method_problems(cfg, prefix)
    if learner.backend == "deepspeed" and learner.zero_stage == 0 and cfg.model.dtype != "float32":
        p.append(
            f"{prefix}learner.zero_stage: 0 with dtype {cfg.model.dtype} wraps the optimizer in DeepSpeed's fp16 "
            f"optimizer; use zero_stage 1 or 2"
        )
    if algo.loss == "dr_grpo" and algo.scale_rewards:
        p.append(
            f"{prefix}algorithm.scale_rewards: true is not allowed with loss dr_grpo (Dr.GRPO drops the std scaling); "
            f"set it to false"
        )
    if roll.colocate:
        p += _colocation_problems(cfg, prefix)
    if algo.async_rollout and algo.dynamic_sampling:
        p.append(
            f"{prefix}algorithm.async_rollout: true is not allowed with dynamic_sampling (refill rounds need the "
            f"batch before the update); turn one off"
        )
    if algo.async_rollout and algo.tis_cap is None:
        p.append(
            f"{prefix}algorithm.async_rollout: one-step-stale rollouts need truncated importance sampling; set "
            f"algorithm.tis_cap"
        )
    if roll.top_p < 1 and algo.tis_cap is not None:
        # engines report log-probs renormalised over the nucleus; the learner's logits / temperature cannot
        p.append(
            f"{prefix}rollout.top_p: {roll.top_p} makes the engines' log-probs differ from the learner's, which "
            "biases the TIS weight; use top_p 1.0 (the study's) or algorithm.tis_cap null"
        )
    if algo.clip_eps_high < algo.clip_eps_low:
        p.append(f"{prefix}algorithm.clip_eps_high: {algo.clip_eps_high} is below clip_eps_low {algo.clip_eps_low}")
    if algo.overlong == "soft" and algo.overlong_buffer >= roll.max_new_tokens:
        p.append(
            f"{prefix}algorithm.overlong_buffer: {algo.overlong_buffer} must be below rollout.max_new_tokens "
            f"{roll.max_new_tokens}"
        )
    batch = algo.prompts_per_step * algo.group_size
    if batch % algo.mini_batches:
        p.append(
            f"{prefix}algorithm.mini_batches: {algo.mini_batches} does not divide the rollout batch of {batch} "
            f"completions"
        )
    elif (batch // algo.mini_batches) % learner.num_learners:
        p.append(
            f"{prefix}learner.num_learners: {learner.num_learners} does not divide a mini-batch of "
            f"{batch // algo.mini_batches} completions"
        )
    if learner.backend == "torch" and learner.num_learners > 1:
        p.append(
            f"{prefix}learner.num_learners: {learner.num_learners} needs backend deepspeed (the torch backend runs "
            "one rank); set learner.backend: deepspeed or num_learners: 1"
        )
    tiny = cfg.model.tiny
    if tiny is not None:
        need = cfg.data.max_prompt_tokens + roll.max_new_tokens
        if need > tiny.max_position_embeddings:
            p.append(
                f"{prefix}rollout.max_new_tokens: {roll.max_new_tokens} plus data.max_prompt_tokens "
                f"{cfg.data.max_prompt_tokens} exceeds the tiny model's max_position_embeddings "
                f"{tiny.max_position_embeddings}"
            )
        if cfg.eval.benchmarks and cfg.eval.max_new_tokens + cfg.data.max_prompt_tokens > tiny.max_position_embeddings:
            p.append(f"{prefix}eval.max_new_tokens: {cfg.eval.max_new_tokens} is too long for the tiny model's context")
    for i, b in enumerate(cfg.eval.benchmarks):
        if (problem := unknown_benchmark(b)) is not None:
            p.append(f"{prefix}eval.benchmarks[{i}].name: {problem} (set hub_name)")
    if cfg.data.source.startswith("synthetic:"):
        task = cfg.data.source.split(":", 1)[1]
        if task not in SYNTHETIC_TASKS:
            allowed = ", ".join("synthetic:" + t for t in SYNTHETIC_TASKS)
            p.append(f"{prefix}data.source: synthetic task {task!r} is unknown; allowed: {allowed}")
    p += plan_problems(cfg, prefix)
    if cfg.checkpoint.every_steps > cfg.steps:
        p.append(
            f"{prefix}checkpoint.every_steps: {cfg.checkpoint.every_steps} is more than steps {cfg.steps}; no "
            f"checkpoint would be written"
        )
    return p


def check_trial(cfg: TrialConfig) -> None:
    """TrialConfig's model validator: raise every cross-field problem at once."""
    problems = trial_problems(cfg)
    if problems:
        raise ConfigProblems(problems)


def check_sweep(cfg: SweepConfig) -> None:
    """SweepConfig's model validator: check every trial the grid expands to, naming the trial at fault."""
    try:
        specs = expand(cfg)
    except ConfigError as e:  # a malformed grid: its message names the entry
        raise ConfigProblems([str(e)]) from None
    problems = [f"trial {spec.trial_id} ({spec.label}): {x}" for spec in specs for x in trial_problems(spec.config)]
    if problems:
        raise ConfigProblems(problems)
