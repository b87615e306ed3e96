"""Trial directories for the export tests, made cheaply: the demo trial's config on the pretrained tiny base,
with checkpoints written by the trial's own Checkpointer from a policy moved off its init (no training run)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from rlvr.config.layout import TrialLayout
from rlvr.config.loader import dump, load_trial
from rlvr.config.schema import TrialConfig
from rlvr.storage import RunStorage
from rlvr.trial.checkpoint import Checkpointer


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def small_demo(method: str, *overrides: str) -> TrialConfig:
    """The demo trial with a uniform method preset at rank 8 (the demo sweep's settings), dropout on as in training."""
    rank = [] if method in ("ia3", "ln_tuning", "full", "lora_rank1") else ["method.rank=8"]
    alpha = ["method.alpha=16"] if method not in ("miss", "vera", "ia3", "ln_tuning", "full", "lora_rank1") else []
    options = ["method.options={target_r: 4}"] if method == "adalora" else []
    short = ["steps=4", "checkpoint.every_steps=2"]
    return load_trial("demo-cpu", [f"method=uniform/{method}", *rank, *alpha, *options, *short, *overrides])


def fake_trial(root: Path, method: str | TrialConfig, steps: tuple[int, ...] = (2, 4), scale: float = 0.02) -> Path:
    """A trial directory (of ``small_demo(method)`` or the given config) whose checkpoints hold the method's policy
    moved off its init by seeded noise."""
    from rlvr.models.loading import load_model, resolve_model_path
    from rlvr.peft_methods.policy import build_policy

    cfg = small_demo(method) if isinstance(method, str) else method
    storage = RunStorage(str(root))
    storage.write_bytes(TrialLayout.CONFIG, dump(cfg).encode())
    torch.manual_seed(cfg.seed)
    policy = build_policy(load_model(cfg.model, resolve_model_path(cfg.model)), cfg.method, total_steps=cfg.steps)
    checkpoints = Checkpointer(storage, cfg.checkpoint.model_copy(update={"keep_last": 10}))
    g = torch.Generator().manual_seed(1)
    for step in steps:
        with torch.no_grad():
            for p in policy.model.parameters():
                if p.requires_grad:
                    p.add_(scale * torch.randn(p.shape, generator=g).to(p.dtype))
        learner = {"world_size": 1, "ranks": [{"trainable": policy.trainable_state_dict()}]}
        checkpoints.save(step, learner, {"step": step})
    return root
