"""A minimal peft-LoRA object with the Policy interface, standing in until rlvr.peft_methods.policy lands."""

import peft
import torch
from peft import get_peft_model_state_dict, set_peft_model_state_dict

from rlvr.config.schema import MethodConfig


class LoraPolicy:
    def __init__(self, model, cfg: MethodConfig, total_steps: int):
        config = peft.LoraConfig(r=cfg.rank, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout,
                                 target_modules=cfg.target_modules, task_type="CAUSAL_LM")
        self.model = peft.get_peft_model(model, config)

    def make_optimizer(self, lr, weight_decay, betas):
        params = [p for p in self.model.parameters() if p.requires_grad]
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, betas=betas)

    def extra_loss(self):
        return None

    def after_optimizer_step(self, step):
        pass

    def disable_adapter(self):
        return self.model.disable_adapter()

    def trainable_state_dict(self):
        return get_peft_model_state_dict(self.model)

    def load_trainable_state_dict(self, state):
        set_peft_model_state_dict(self.model, state)


def build_policy(model, cfg, total_steps):
    return LoraPolicy(model, cfg, total_steps)
