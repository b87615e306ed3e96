"""Reference computations with transformers + peft, and PolicyUpdates built the way the learner exports them."""

from __future__ import annotations

import itertools

from rlvr.sync.update import PolicyUpdate

LORA_RANK = 8


def hf_model(path):
    import torch
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()


def hf_greedy(model, prompts, max_new_tokens=12):
    """transformers' greedy continuation of each prompt, one at a time (no padding)."""
    import torch

    with torch.no_grad():
        return [
            model.generate(torch.tensor([p]), max_new_tokens=max_new_tokens, do_sample=False)[0, len(p) :].tolist()
            for p in prompts
        ]


def hf_logprobs(model, prompt, completion, temperature=1.0):
    """Log-probs of ``completion`` as the learner computes them: log_softmax(logits / temperature)."""
    import torch

    ids = torch.tensor([prompt + completion])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0, len(prompt) - 1 : -1] / temperature
    return logits.log_softmax(-1).gather(-1, ids[0, len(prompt) :, None])[:, 0].tolist()


def lora_policy(model, seed, rank=LORA_RANK, **config):
    """A peft LoRA on ``model`` with random non-zero weights (so it changes the output)."""
    import torch
    from peft import LoraConfig, get_peft_model

    config = {"r": rank, "lora_alpha": 2 * rank, "target_modules": ["q_proj", "v_proj", "gate_proj"], **config}
    torch.manual_seed(seed)
    return get_peft_model(model, LoraConfig(init_lora_weights=False, **config)).eval()


def lora_update(peft_model, version, route="native", base_weights=None) -> PolicyUpdate:
    from peft import get_peft_model_state_dict
    from safetensors.torch import save

    config = peft_model.peft_config["default"].to_dict()
    return PolicyUpdate(
        version=version,
        route=route,
        lora_tensors=save(get_peft_model_state_dict(peft_model)),
        lora_config=config,
        base_weights=base_weights,
    )


def merged_update(weights, version) -> PolicyUpdate:
    from safetensors.torch import save

    return PolicyUpdate(
        version=version, route="merged", base_weights=save({k: v.contiguous() for k, v in weights.items()})
    )


_versions = itertools.count(1)


def next_version() -> int:
    """Fresh version numbers across the session, as a learner would send them."""
    return next(_versions)


def pristine_update(path) -> PolicyUpdate:
    """A merged update that restores the whole pristine base and drops any adapter."""
    from pathlib import Path

    from safetensors.torch import load_file

    return merged_update(load_file(str(Path(path) / "model.safetensors")), next_version())
