"""AdapterPolicy: one built, verified method with its optimizer, hooks, checkpoint state and engine export.

Pristine weights: for the merged and converted routes the original weights of adapted modules are copied to
CPU in fp32 before anything can change them; every export is computed from that copy, and the learner's own
weights are never merged or unmerged in place (repeated bf16 merge/unmerge drifts the base, TRL issue 6688).
The native route ships adapter tensors only, so it reads the frozen base directly.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import TYPE_CHECKING, Any

from rlvr.config.methods import MethodSpec, Route, adapter_refusal, check_method_config, method_info, method_spec
from rlvr.config.schema import MethodConfig
from rlvr.peft_methods.base import Gather, Policy
from rlvr.peft_methods.build import ADAPTER, build_adapted, jsonable, tuner_layers, verify_adapted
from rlvr.peft_methods.weights import (
    adalora_as_lora,
    effective_linear,
    effective_norm,
    lora_factors,
    to_bytes,
    vera_as_lora,
)
from rlvr.sync.update import PolicyUpdate

if TYPE_CHECKING:
    import torch

_PEFT_PREFIX = "base_model.model."
_INIT = "residual_init."  # checkpoint keys of the initial factors a residual base is derived from


class AdapterPolicy:
    """The Policy protocol of rlvr.peft_methods.base for any registry method."""

    def __init__(self, model: torch.nn.Module, spec: MethodSpec, cfg: MethodConfig, total_steps: int):

        self.spec, self.cfg, self.info = spec, cfg, method_info(spec.name)
        base_params = sum(p.numel() for p in model.parameters())
        self.dtype = next(model.parameters()).dtype
        full = spec.is_full_finetuning
        # Residual inits rewrite W during get_peft_model, so their copy must be taken before building.
        early = (
            {n: p.detach().float().cpu().clone() for n, p in model.named_parameters()}
            if spec.residual_init or full
            else {}
        )
        self.model = build_adapted(model, spec, cfg, total_steps)
        self.layers = tuner_layers(self.model)
        self.pristine: dict[str, torch.Tensor] = {}
        """Original fp32 weights by HF name (the adapted modules'; every tensor's for full FT)."""
        if full:
            self.pristine = early
        elif spec.route != "native":
            self.pristine = {
                f"{m}.weight": early.get(f"{m}.weight", self._base_weight(m).detach().float().cpu().clone())
                for m in self.layers
            }
        self._init: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        if spec.residual_init:
            self._init = {m: tuple(t.cpu().clone() for t in lora_factors(layer)) for m, layer in self.layers.items()}
            self._write_residual_base()
        self._record = verify_adapted(self.model, spec, cfg, base_params)

    # ---- training -------------------------------------------------------------------------------------
    def make_optimizer(self, lr: float, weight_decay: float, betas: tuple[float, float]) -> torch.optim.Optimizer:
        """AdamW (or the method's own optimizer) at ``lr``, the trial's resolved rate (TrialPlan.lr);
        parameter groups with their own rate (LoRA+'s B matrices) take their multiple of it."""
        import torch

        if self.spec.optimizer == "loraplus":
            from peft.optimizers import create_loraplus_optimizer

            ratio = self.cfg.options.get("loraplus_lr_ratio", self.spec.policy_options["loraplus_lr_ratio"])
            return create_loraplus_optimizer(
                self.model, torch.optim.AdamW, lr=lr, loraplus_lr_ratio=ratio, weight_decay=weight_decay, betas=betas
            )
        if self.spec.optimizer == "lorafa":
            from peft.optimizers import create_lorafa_optimizer

            pc = self.model.peft_config[ADAPTER]
            opt = create_lorafa_optimizer(
                self.model, r=pc.r, lora_alpha=pc.lora_alpha, lr=lr, weight_decay=weight_decay
            )
            for group in opt.param_groups:
                group["betas"] = betas
            return opt
        params = [p for p in self.model.parameters() if p.requires_grad]
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, betas=betas)

    def extra_loss(self) -> torch.Tensor | None:
        """AdaLoRA's orthogonality penalty, as peft adds it when labels are passed (an RL loss passes none)."""
        if self.spec.lora_form != "adalora":
            return None
        import torch

        terms = []
        for layer in self.layers.values():
            a, b = layer.lora_A[ADAPTER], layer.lora_B[ADAPTER]
            for cov in (a @ a.T, b.T @ b):
                terms.append(torch.norm(cov - torch.eye(*cov.shape, device=cov.device, dtype=cov.dtype), p="fro"))
        return self.model.peft_config[ADAPTER].orth_reg_weight * torch.stack(terms).mean()

    def after_optimizer_step(self, step: int) -> None:
        """Call after optimizer.step() and before zero_grad(): AdaLoRA's budget reads the gradients."""
        if self.spec.lora_form == "adalora":
            self.model.base_model.update_and_allocate(step)

    def disable_adapter(self):
        """The reference policy: the ORIGINAL model (pristine W even where the adapter sits on a residual)."""
        if self.spec.is_full_finetuning:
            return self._swapped({n: w for n, w in self.pristine.items()})
        if self.spec.residual_init:
            return _both(self.model.disable_adapter(), self._swapped(self.pristine, layered=True))
        return self.model.disable_adapter()

    # ---- checkpoint state -----------------------------------------------------------------------------
    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        if self.spec.is_full_finetuning:
            return {n: t.detach().clone() for n, t in self.model.state_dict().items()}
        state = {}
        for m, layer in self.layers.items():
            for k, t in layer.state_dict().items():
                if not k.startswith("base_layer."):
                    state[f"{m}.{k}"] = t.detach().clone()
        for m, (a, b) in self._init.items():
            state[f"{_INIT}{m}.A"], state[f"{_INIT}{m}.B"] = a.clone(), b.clone()
        return state

    def load_trainable_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        if self.spec.is_full_finetuning:
            self.model.load_state_dict(state)
            return
        per_layer: dict[str, dict[str, Any]] = {m: {} for m in self.layers}
        for key, t in state.items():
            if key.startswith(_INIT):
                m, which = key[len(_INIT) :].rsplit(".", 1)
                a, b = self._init[m]
                # Kept on the CPU beside the pristine weights they are subtracted from.
                self._init[m] = (t.float().cpu(), b) if which == "A" else (a, t.float().cpu())
                continue
            m = next((m for m in per_layer if key.startswith(m + ".")), None)
            if m is None:
                raise KeyError(f"{key}: not a tensor of any adapted module of {self.spec.name}")
            per_layer[m][key[len(m) + 1 :]] = t
        for m, sub in per_layer.items():
            unexpected = self.layers[m].load_state_dict(sub, strict=False).unexpected_keys
            if unexpected:
                raise KeyError(f"{m}: unexpected tensors {unexpected} for {self.spec.name}")
        if self._init:
            self._write_residual_base()

    # ---- engine views ---------------------------------------------------------------------------------
    def effective_weights(self) -> dict[str, torch.Tensor]:
        if self.spec.is_full_finetuning:
            return {n: p.detach().float().cpu() for n, p in self.model.named_parameters()}
        out = {}
        for m, layer in self.layers.items():
            if hasattr(layer, "ln_tuning_layers"):
                out[f"{m}.weight"] = effective_norm(layer).cpu()
            else:
                out[f"{m}.weight"] = effective_linear(layer, self._adapter_base(m))[0].cpu()
        return out

    def export(
        self, version: int, include_base: bool, route: Route | None = None, gather: Gather | None = None
    ) -> PolicyUpdate:
        """The policy along ``route`` (default: the method's); any method can go merged, and "native" is open to
        every method with a plain LoRA on the original base (``original_base_adapter``, what shares a batch)."""
        gather = gather or _whole
        own = self.info.route
        route = route or own
        meta = {"method": self.spec.name, "route": route}
        if route == "native" and own != "native":
            why = adapter_refusal(self.cfg)
            if why is not None:
                raise ValueError(
                    f"{self.spec.name}: cannot export as native; its route is {own} "
                    f"(merged is always possible) and {why}"
                )
            tensors, config = self.original_base_adapter(gather)
            return PolicyUpdate(version, "native", lora_tensors=to_bytes(tensors), lora_config=config, meta=meta)
        if route != own and route != "merged":
            raise ValueError(
                f"{self.spec.name}: cannot export as {route}; its route is {own} (merged is always possible)"
            )
        if route == "merged":
            weights = self._merged_weights(gather, trained=version > 0)
            return PolicyUpdate(version, "merged", base_weights=to_bytes(weights), meta=meta)
        tensors, config = self._lora_form(gather)
        base = None
        if self.spec.residual_init and (include_base or version == 0):
            base = to_bytes({f"{m}.weight": self._adapter_base(m).to(self.dtype) for m in self.layers})
        return PolicyUpdate(
            version, route, lora_tensors=to_bytes(tensors), lora_config=config, base_weights=base, meta=meta
        )

    def original_base_adapter(self, gather: Gather | None = None) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """The policy as one plain LoRA on the ORIGINAL base (peft key names, fp32) and its LoraConfig dict: a
        LoRA as trained; AdaLoRA as P diag(E) Q; a residual init (PiSSA, MiLoRA, OLoRA) as the rank-2r LoRA
        [s B, -s B0][A; A0], since W_res + s B A = W0 + s (B A - B0 A0); VeRA as (diag(l_b) B, diag(l_d) A);
        MiSS through peft's convert_to_lora at its rank. Other methods raise ValueError with the reason
        (``rlvr.config.methods.adapter_refusal``). ``gather`` as in ``export``."""
        import torch

        gather = gather or _whole
        why = adapter_refusal(self.cfg)
        if why is not None:
            raise ValueError(f"{self.spec.name} cannot be exported as a LoRA adapter: {why}")
        if self.spec.lora_fold == "peft":
            from peft import convert_to_lora

            # MiSS's factors are its blocks and a fixed summation matrix: only the adapter's tensors are read.
            with gather(p for p in self.model.parameters() if p.requires_grad):
                config, tensors = convert_to_lora(self.model, rank=self.model.peft_config[ADAPTER].r)
                tensors = {k: t.detach().float().clone().contiguous() for k, t in tensors.items()}
            return tensors, jsonable(config.to_dict())
        tensors, config = self._lora_form(gather)
        if not self.spec.residual_init:
            return tensors, config
        for m, (a0, b0) in self._init.items():
            s, key = self.layers[m].scaling[ADAPTER], f"{_PEFT_PREFIX}{m}"
            a, b = tensors[f"{key}.lora_A.weight"], tensors[f"{key}.lora_B.weight"]
            tensors[f"{key}.lora_A.weight"] = torch.cat([a, a0.to(a)])
            tensors[f"{key}.lora_B.weight"] = torch.cat([s * b, -s * b0.to(b)], dim=1)
        rank = 2 * config["r"]  # scaling folded into B: alpha = r gives LoRA's scaling 1
        return tensors, {**config, "r": rank, "lora_alpha": rank, "use_rslora": False}

    def record(self) -> dict[str, Any]:
        return dict(self._record)

    # ---- internals ------------------------------------------------------------------------------------
    def _base_weight(self, module: str) -> torch.Tensor:
        return self.layers[module].get_base_layer().weight

    def _adapter_base(self, module: str) -> torch.Tensor:
        """fp32 weight the adapter sits on: pristine W, or the residual W - s B0 A0."""
        w = self.pristine.get(f"{module}.weight")
        if w is None:
            return self._base_weight(module).detach().float()
        if module in self._init:
            a, b = self._init[module]
            return w - self.layers[module].scaling[ADAPTER] * (b @ a)
        return w

    def _write_residual_base(self) -> None:
        import torch

        with torch.no_grad():
            for m in self.layers:
                self._base_weight(m).copy_(self._adapter_base(m))

    def _merged_weights(self, gather: Gather, trained: bool) -> dict[str, torch.Tensor]:
        """The base tensors the policy changes, HF names, model dtype (copies: gathered tensors are freed after the
        block).

        Full fine-tuning changes every trainable tensor, so once ``trained`` (a version after 0; version 0 is the
        checkpoint the engines loaded) it sends them all, with no per-step comparison against the pristine copy,
        which cost an fp32 host copy of the whole model each sync. A tensor an update happened to leave bit-equal
        (a bf16 weight below its rounding step) is then sent at its unchanged value: the engine's weights agree."""
        out = {}
        if self.spec.is_full_finetuning:
            if not trained:
                return out
            for n, p in self.model.named_parameters():
                if p.requires_grad:
                    with gather([p]):
                        out[n] = p.detach().to(self.dtype, copy=True)
            return out
        for m, layer in self.layers.items():
            with gather(layer.parameters()):
                if hasattr(layer, "ln_tuning_layers"):
                    out[f"{m}.weight"] = effective_norm(layer).to(self.dtype, copy=True)
                    continue
                w, b = effective_linear(layer, self._adapter_base(m))
                out[f"{m}.weight"] = w.to(self.dtype)
                base_bias = layer.get_base_layer().bias
                if b is not None and not torch_equal(b, base_bias.detach().float()):
                    out[f"{m}.bias"] = b.to(self.dtype)
        return out

    def _lora_form(self, gather: Gather) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """Plain LoRA tensors (peft key names, fp32) and the LoraConfig dict a saved adapter would carry."""
        from peft import LoraConfig

        pc = self.model.peft_config[ADAPTER]
        fold = {"adalora": adalora_as_lora, "vera": vera_as_lora}.get(self.spec.lora_form or self.spec.lora_fold)
        tensors = {}
        for m, layer in self.layers.items():
            with gather(p for p in layer.parameters() if p.requires_grad):
                a, b = (fold or lora_factors)(layer)
                a, b = a.clone(), b.clone()  # fp32 factors are views of tensors freed after the block
            tensors[f"{_PEFT_PREFIX}{m}.lora_A.weight"], tensors[f"{_PEFT_PREFIX}{m}.lora_B.weight"] = a, b
        targets = sorted({m.rsplit(".", 1)[-1] for m in self.layers})
        if fold is not None:
            # Scaling is folded into the factors, so alpha = r gives the plain LoRA scaling 1.
            rank = pc.init_r if self.spec.lora_form == "adalora" else pc.r
            config = LoraConfig(r=rank, lora_alpha=rank, target_modules=targets, task_type="CAUSAL_LM")
        else:
            config = LoraConfig(
                r=pc.r,
                lora_alpha=pc.lora_alpha,
                use_rslora=pc.use_rslora,
                target_modules=targets,
                task_type="CAUSAL_LM",
            )
        return tensors, jsonable(config.to_dict())

    @contextmanager
    def _swapped(self, weights: dict[str, torch.Tensor], layered: bool = False) -> Iterator[None]:
        """Temporarily point parameters at other tensors (the originals are kept, not copied back)."""
        targets = {
            n: self._base_weight(n.removesuffix(".weight")) if layered else self.model.get_parameter(n) for n in weights
        }
        saved = {n: p.data for n, p in targets.items()}
        try:
            for n, p in targets.items():
                p.data = weights[n].to(device=p.device, dtype=p.dtype)
            yield
        finally:
            for n, p in targets.items():
                p.data = saved[n]


def _whole(params: Any) -> AbstractContextManager:
    return nullcontext()  # unsharded parameters are whole already


def torch_equal(a: torch.Tensor, b: torch.Tensor) -> bool:
    import torch

    return a.shape == b.shape and bool(torch.equal(a.to(b.device), b))


@contextmanager
def _both(first, second) -> Iterator[None]:
    with first, second:
        yield


def build_policy(model: torch.nn.Module, cfg: MethodConfig, total_steps: int) -> Policy:
    """Adapt ``model`` as ``cfg`` asks, verify the result, and wrap it with optimizer, hooks and export."""
    problems = check_method_config(cfg)
    if problems:
        raise ValueError(f"method {cfg.name}: " + "; ".join(problems))
    return AdapterPolicy(model, method_spec(cfg.name), cfg, total_steps)
