"""The model card (README.md) of an export: what the artifact is, how it was trained and scored, how it was
checked, and how to use it."""

from __future__ import annotations

import importlib.metadata
from typing import Any

from rlvr.config.methods import method_spec
from rlvr.config.schema import TrialConfig
from rlvr.config.trial_plan import TrialPlan
from rlvr.sync.servable import served_lora_rank


def rlvr_version() -> str:
    try:
        return importlib.metadata.version("rlvr")
    except importlib.metadata.PackageNotFoundError:
        return "unknown (not installed as a package)"


def adapter_form(method: str, rank: int) -> str:
    """How the method's trained policy became the exported rank-``rank`` LoRA."""
    spec = method_spec(method)
    if spec.residual_init:
        return (
            f"a rank-{rank} LoRA on the original base, [s B, -s B0][A; A0]: the trained adapter sat on the "
            "residual W - s B0 A0, so the initial factors are subtracted back out"
        )
    if spec.lora_form == "adalora":
        return f"AdaLoRA's P diag(E) Q as a plain rank-{rank} LoRA (pruned ranks are zeros, the scaling folded into B)"
    if spec.lora_fold == "vera":
        return (
            f"VeRA's diag(l_b) B diag(l_d) A as a plain rank-{rank} LoRA (the trained vectors folded into the factors)"
        )
    if spec.lora_fold == "peft":
        return f"converted by peft's convert_to_lora at rank {rank}, exact since the update has rank <= {rank}"
    return "the trained LoRA as is"


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(str(c) for c in r) + " |" for r in rows])


def _evaluation(evals: list[dict[str, Any]], step: int) -> str:
    rows = [e for e in evals if e.get("step") == step]
    if not rows:
        steps = sorted({e["step"] for e in evals if "step" in e})
        return f"The trial did not evaluate step {step} (evaluated steps: {steps or 'none'})."
    return _table(
        ["benchmark", "k", "problems", "avg@k", "pass@k"],
        [
            [
                r["benchmark"],
                r["k"] if r["k"] is not None else "",
                r["n_problems"],
                f"{r['avg_at_k']:.4f}",
                f"{r['pass_at_k']:.4f}",
            ]
            for r in rows
        ],
    )


def model_card(
    cfg: TrialConfig,
    config_text: str,
    step: int,
    fmt: str,
    base: str,
    evals: list[dict[str, Any]],
    checks: list[Any],
    probe_tokens: int,
    tolerance: float,
    adapter_rank: int | None,
) -> str:
    m, a, d = cfg.method, cfg.algorithm, cfg.data
    spec = method_spec(m.name)
    settings = ", ".join(
        f"{k} {v}"
        for k, v in (("rank", m.rank), ("alpha", m.alpha), ("dropout", m.dropout), ("target modules", m.target_modules))
        if v is not None
    )
    settings += "".join(f", {k} {v}" for k, v in sorted(m.options.items()))
    if fmt == "adapter":
        what = (
            f"A peft LoRA adapter (adapter_config.json + adapter_model.safetensors, fp32) for the ORIGINAL base "
            f"model: {adapter_form(m.name, adapter_rank or 0)}."
        )
        use = (
            f"    vllm serve {base} --enable-lora --max-lora-rank {served_lora_rank(adapter_rank or 1)} "
            "--lora-modules policy=<this dir>\n"
            f'    PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained("{base}"), "<this dir>")\n'
            f"    rlvr eval --model {base} --adapter <this dir>"
        )
    else:
        what = f"A full model directory in the training dtype ({cfg.model.dtype}), with tokenizer and generation config"
        what += "."
        use = "    vllm serve <this dir>\n    rlvr eval --model <this dir>"
    checked = _table(
        ["loader", f"mean abs log-prob gap over {probe_tokens} probe tokens", "tolerance"],
        [[c.loader, f"{c.gap:.3g}", f"{tolerance:g}"] for c in checks],
    )
    return f"""# {cfg.name}: {m.name} policy at step {step}

{what}

- Base model: `{cfg.model.name}` (loaded from `{base}`), revision {cfg.model.revision or "not pinned"}, \
dtype {cfg.model.dtype}
- Method: {m.name} ({spec.description}); {settings or "no settings"}
- Training: {a.loss} on verifiable rewards, learning rate {TrialPlan.from_config(cfg).lr:g}, step {step} of \
{cfg.steps}, {a.prompts_per_step} prompts x {a.group_size} samples per step, seed {cfg.seed}
- Data: {d.source} (levels {d.levels}), prompt template {d.prompt_template}, prompts up to {d.max_prompt_tokens} tokens
- Made by rlvr {rlvr_version()} (`rlvr export`); the trial's config is below.

## Evaluation (the trial's own, at step {step})

{_evaluation(evals, step)}

## Checked by loading it back

Log-probabilities of the post-sync probe under the export, against the trial's policy rebuilt from its checkpoint:

{checked}

## Use

{use}

Prompts were rendered with the `{d.prompt_template}` template; score the policy with the same one.

## The trial's config

```yaml
{config_text.rstrip()}
```
"""
