"""Turn a MethodSpec + MethodConfig into an adapted model, then check the model is what was asked for.

The study's public code silently trained plain LoRA when another method was asked for; ``verify_adapted``
inspects the built model itself (config type, wrapped modules, ranks, DoRA/rsLoRA flags, trainable names)
so that can never happen unnoticed here.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from rlvr.config.methods import MethodSpec
from rlvr.config.schema import MethodConfig
from rlvr.peft_methods.milora import milora_init

if TYPE_CHECKING:
    import torch

ADAPTER = "default"
_HF_PREFIX = "base_model.model."
_DATA_DEPENDENT_INITS = ("pissa_niter_4", "olora")


class AdapterMismatch(RuntimeError):
    """The built model differs from the MethodConfig that asked for it."""


def peft_kwargs(spec: MethodSpec, cfg: MethodConfig) -> dict[str, Any]:
    """The peft config kwargs this MethodConfig resolves to (what verification holds the model to)."""
    kw: dict[str, Any] = dict(spec.fixed)
    rank = cfg.rank if cfg.rank is not None else spec.default_rank
    if spec.rank_key:
        kw[spec.rank_key] = rank
    if spec.alpha_key:
        alpha = cfg.alpha if cfg.alpha is not None else (spec.alpha_per_rank * rank if spec.alpha_per_rank else None)
        if alpha is not None:
            kw[spec.alpha_key] = alpha
    if spec.dropout_key:
        kw[spec.dropout_key] = cfg.dropout
    if cfg.target_modules is not None:
        kw["target_modules"] = list(cfg.target_modules)
    kw.update({k: v for k, v in cfg.options.items() if k in spec.options})
    return kw


def build_adapted(
    model: torch.nn.Module, spec: MethodSpec, cfg: MethodConfig, total_steps: int, initialize: bool = True
) -> torch.nn.Module:
    """Wrap ``model`` with the method's adapter (or unfreeze it for full FT).

    ``initialize=False`` skips data-dependent inits (SVD, QR), which cannot run on the meta device; the
    parameter layout is the same, so counts made that way are exact.
    """
    if spec.is_full_finetuning:
        for p in model.parameters():
            p.requires_grad_(True)
        return model
    import peft

    kw = peft_kwargs(spec, cfg)
    if spec.config_class == "AdaLoraConfig":
        kw["total_step"] = total_steps
    if not initialize and kw.get("init_lora_weights") in _DATA_DEPENDENT_INITS:
        kw["init_lora_weights"] = True
    config = getattr(peft, spec.config_class)(task_type="CAUSAL_LM", **kw)
    adapted = peft.get_peft_model(model, config)
    for name, p in adapted.named_parameters():
        if ".ranknum." in name:
            # AdaLoRA's rank count is a constant stored as a Parameter; peft's move to the meta device re-wraps
            # it as a trainable one, which would count it and hand it to the optimizer.
            p.requires_grad_(False)
        elif spec.optimizer == "lorafa" and ".lora_A." in name:
            # LoRA-FA's optimizer freezes A; frozen here already, so counts and records show what trains.
            p.requires_grad_(False)
    if spec.init == "milora" and initialize:
        milora_init(adapted)
    return adapted


def tuner_layers(model: torch.nn.Module) -> dict[str, torch.nn.Module]:
    """Adapted modules by HF module name (``model.layers.0.self_attn.q_proj``)."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    return {n.removeprefix(_HF_PREFIX): m for n, m in model.named_modules() if isinstance(m, BaseTunerLayer)}


def jsonable(config_dict: dict[str, Any]) -> dict[str, Any]:
    """A peft config dict with sets as sorted lists and enums as strings, as saved adapters hold it."""
    return json.loads(
        json.dumps(config_dict, default=lambda o: sorted(o) if isinstance(o, (set, frozenset)) else str(o))
    )


def _same(want: Any, got: Any) -> bool:
    if isinstance(want, (list, set, tuple)) and isinstance(got, (list, set, tuple)):
        return set(want) == set(got)
    return want == got


def verify_adapted(
    model: torch.nn.Module, spec: MethodSpec, cfg: MethodConfig, base_params: int, initialized: bool = True
) -> dict[str, Any]:
    """Raise AdapterMismatch unless the model is what ``cfg`` asked for; return the verified record.

    ``initialized=False`` matches a build_adapted(initialize=False) model, whose data-dependent init was skipped.
    """
    problems: list[str] = []
    params = dict(model.named_parameters())
    trainable = [n for n, p in params.items() if p.requires_grad]
    n_trainable = sum(params[n].numel() for n in trainable)
    record: dict[str, Any] = {
        "method": spec.name,
        "preset": cfg.preset,
        "route": spec.route,
        "trainable_params": n_trainable,
        "model_params": base_params,
        "trainable_pct": 100.0 * n_trainable / base_params,
    }
    if spec.is_full_finetuning:
        if hasattr(model, "peft_config"):
            problems.append("full fine-tuning asked for, but the model carries a peft adapter")
        if len(trainable) != len(params):
            problems.append(f"full fine-tuning asked for, but {len(params) - len(trainable)} tensors are frozen")
        record.update(rank=None, modules=["*"], peft_config=None)
    else:
        want = peft_kwargs(spec, cfg)
        if not initialized and want.get("init_lora_weights") in _DATA_DEPENDENT_INITS:
            want["init_lora_weights"] = True
        pc = getattr(model, "peft_config", {}).get(ADAPTER)
        if type(pc).__name__ != spec.config_class:
            raise AdapterMismatch(f"{spec.name}: asked for a {spec.config_class}, the model has {type(pc).__name__}")
        for key, value in want.items():
            if not _same(value, getattr(pc, key, None)):
                problems.append(f"{key}: asked {value!r}, built {getattr(pc, key, None)!r}")
        layers = tuner_layers(model)
        wrapped = sorted({n.rsplit(".", 1)[-1] for n in layers})
        targets = pc.target_modules
        if not isinstance(targets, str) and set(wrapped) != set(targets or ()):
            problems.append(f"target_modules: asked {sorted(targets or ())}, wrapped {wrapped}")
        problems += _layer_problems(layers, spec, want)
        prefix = model.base_model.prefix
        stray = [n for n in trainable if prefix not in n]
        if stray:
            problems.append(f"trainable tensors outside the adapter: {stray[:5]}")
        if not trainable:
            problems.append("no trainable tensors")
        record.update(
            rank=want.get(spec.rank_key) if spec.rank_key else None, modules=wrapped, peft_config=jsonable(pc.to_dict())
        )
    if problems:
        raise AdapterMismatch(f"{spec.name}: the built model is not what the config asked for: " + "; ".join(problems))
    record["verified"] = True
    return record


def _layer_problems(layers: dict[str, Any], spec: MethodSpec, want: dict[str, Any]) -> list[str]:
    """Per-module facts peft could get wrong silently: rank, DoRA magnitude, rsLoRA scaling."""
    problems = []
    rank = want.get(spec.rank_key) if spec.rank_key else None
    for name, layer in layers.items():
        r = getattr(layer, "r", None)
        if rank is not None and isinstance(r, dict) and r.get(ADAPTER) != rank:
            problems.append(f"{name}: rank {r.get(ADAPTER)}, asked {rank}")
        if isinstance(getattr(layer, "use_dora", None), dict):
            has_dora = bool(layer.use_dora.get(ADAPTER)) and ADAPTER in layer.lora_magnitude_vector
            if has_dora != bool(want.get("use_dora", False)):
                problems.append(f"{name}: use_dora is {has_dora}, asked {want.get('use_dora', False)}")
        if spec.config_class == "LoraConfig" and "lora_alpha" in want:
            alpha = want["lora_alpha"]
            expect = alpha / rank**0.5 if want.get("use_rslora") else alpha / rank
            if abs(layer.scaling[ADAPTER] - expect) > 1e-9 * max(1.0, expect):
                problems.append(f"{name}: scaling {layer.scaling[ADAPTER]}, asked {expect}")
        if len(problems) > 8:
            break
    return problems
