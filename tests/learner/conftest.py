import os

import pytest

from rlvr.config.schema import CheckpointConfig, TinyModelConfig, TrialConfig
from rlvr.models.tiny import build_model, build_tokenizer, save_tiny

os.environ.setdefault("RAY_AUTH_MODE", "disabled")

TINY = TinyModelConfig(
    hidden_size=64, intermediate_size=128, num_layers=2, num_heads=4, num_kv_heads=2, pretrain_steps=0
)


@pytest.fixture(scope="session")
def tiny_path(tmp_path_factory):
    return str(save_tiny(build_model(TINY), build_tokenizer(), tmp_path_factory.mktemp("tiny") / "model"))


def trial_cfg(**over) -> TrialConfig:
    """A small fp32 LoRA trial on CPU; ``over`` maps dotted fields to values."""
    cfg = TrialConfig(steps=8, checkpoint=CheckpointConfig(every_steps=8))
    cfg.method.rank, cfg.method.alpha, cfg.method.dropout = 8, 16, 0.0
    cfg.method.target_modules = ["q_proj", "v_proj", "up_proj"]
    cfg.algorithm.lr = 1e-2
    cfg.algorithm.group_size, cfg.algorithm.prompts_per_step = 4, 2
    cfg.rollout.max_new_tokens = 16
    cfg.learner.micro_batch_size = 4
    cfg.learner.device = "cpu"
    for path, value in over.items():
        *parents, leaf = path.split(".")
        section = cfg
        for p in parents:
            section = getattr(section, p)
        setattr(section, leaf, value)
    return cfg


def learner_of(cfg: TrialConfig, model_path: str):
    """A one-rank learner of trial ``cfg``, handed its spec as the trial's controller hands it."""
    from rlvr.learner.learner import Learner
    from rlvr.learner.spec import LearnerSpec

    return Learner(LearnerSpec.from_trial(cfg), model_path)
