"""A trial's policy rebuilt from one of its checkpoints: the one reader of checkpoints for export and evaluation.

The policy is rebuilt exactly as the learner built it (the trial's base, method and config), then given the
checkpoint's trainable state, so every view of it (a merged model, a LoRA adapter on the original base) is
computed by the method's own export code and never re-derived here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rlvr.config.layout import TrialLayout
from rlvr.config.schema import UNCHECKED, TrialConfig
from rlvr.models.loading import load_model, load_tokenizer, resolve_model_path
from rlvr.peft_methods.policy import build_policy
from rlvr.storage import RunStorage
from rlvr.trial.checkpoint import read_trainable

if TYPE_CHECKING:
    from rlvr.peft_methods.policy import AdapterPolicy


def read_trial_config(trial_dir: str) -> TrialConfig:
    """The config a trial ran with (checked when it ran, so read back unchecked)."""
    import yaml

    text = RunStorage(trial_dir).read_bytes(TrialLayout.CONFIG)
    if text is None:
        raise FileNotFoundError(f"{trial_dir}: no {TrialLayout.CONFIG}; pass a trial directory (<run>/trials/<id>)")
    return TrialConfig.model_validate(yaml.safe_load(text), context=UNCHECKED)


def choose_step(trial_dir: str, step: int | None) -> int:
    """``step``, or the newest complete checkpoint; an incomplete one is refused (CorruptCheckpoint), a missing
    one lists the ones there."""
    storage = RunStorage(trial_dir)
    steps = TrialLayout.checkpoint_steps(storage)
    if step is not None and step not in steps and storage.exists(TrialLayout.checkpoint(step)):
        read_trainable(storage, step)  # raises: the folder has no meta.json
    if not steps or (step is not None and step not in steps):
        raise FileNotFoundError(f"{trial_dir}: no checkpoint at step {step}; checkpoints: {steps or 'none'}")
    return steps[-1] if step is None else step


@dataclass
class TrialPolicy:
    """The policy of one checkpoint of a trial, on the trial's base model."""

    trial_dir: str
    cfg: TrialConfig
    step: int
    base_path: str  # where the base weights load from: the hub name or local path (the tiny base's cache)
    policy: AdapterPolicy

    @classmethod
    def load(cls, trial_dir: str, step: int | None = None, cfg: TrialConfig | None = None) -> TrialPolicy:
        """Step ``step`` (default the newest complete checkpoint) of the trial (``cfg``: its config, if the caller
        read it already); an incomplete or altered checkpoint is refused."""
        import safetensors.torch

        cfg = cfg or read_trial_config(trial_dir)
        step = choose_step(trial_dir, step)
        trainable = read_trainable(RunStorage(trial_dir), step)
        base_path = resolve_model_path(cfg.model)
        policy = build_policy(load_model(cfg.model, base_path), cfg.method, total_steps=cfg.steps)
        policy.load_trainable_state_dict(safetensors.torch.load(trainable))
        policy.model.eval()
        return cls(trial_dir, cfg, step, base_path, policy)

    def changed_tensors(self) -> dict[str, Any]:
        """Every tensor the method changed, at its effective value in the training dtype (residual-aware for
        PiSSA/MiLoRA, so never the study's bug of merging their adapters onto the original base)."""
        import safetensors.torch

        return safetensors.torch.load(self.policy.export(self.step, include_base=True, route="merged").base_weights)

    def write_merged(self, out_dir: Path) -> None:
        """A full model directory in the training dtype: the base with the changed tensors, the tokenizer and the
        generation config."""
        changed = self.changed_tensors()
        model = load_model(self.cfg.model, self.base_path)
        missing = set(changed) - set(model.state_dict())
        if missing:
            raise ValueError(f"{self.trial_dir}: exported tensors not in the base model: {sorted(missing)[:3]}")
        model.load_state_dict(changed, strict=False)
        model.save_pretrained(out_dir)  # writes generation_config.json beside the weights
        load_tokenizer(self.cfg.model, self.base_path).save_pretrained(out_dir)
