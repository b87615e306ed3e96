"""Model and tokenizer loading: hub name or local path through transformers, or the project's tiny model."""

from __future__ import annotations

from rlvr.config.schema import ModelConfig
from rlvr.models.pretrain import ensure_tiny

# transformers resolves its top-level names lazily, and two threads resolving one at once can fail ("cannot import
# name 'Qwen2Config' from 'transformers'": seen when two tenants of a pool started on an empty cache).
TRANSFORMERS_NAMES = (
    "AutoConfig",
    "AutoModelForCausalLM",
    "AutoTokenizer",
    "Qwen2Config",
    "Qwen2ForCausalLM",
    "Qwen2Tokenizer",
)


def resolve_transformers() -> None:
    """Resolve the transformers names rlvr imports, before threads of one process (a tenant pool's) import them."""
    import transformers

    for name in TRANSFORMERS_NAMES:
        getattr(transformers, name)


def resolve_model_path(cfg: ModelConfig) -> str:
    """Where the weights live: the cached pretrained tiny model (built on first use), else the name as given."""
    if cfg.tiny is not None:
        return str(ensure_tiny(cfg.tiny))
    return cfg.name


def torch_dtype(cfg: ModelConfig):
    import torch

    return getattr(torch, cfg.dtype)


def load_tokenizer(cfg: ModelConfig, path: str):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path, revision=cfg.revision, trust_remote_code=cfg.trust_remote_code)
    if cfg.chat_template is not None:
        tok.chat_template = cfg.chat_template
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return tok


def load_model(cfg: ModelConfig, path: str, device: str = "cpu"):
    """A causal LM in the configured dtype on ``device``, in train mode."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(
        path, dtype=torch_dtype(cfg), revision=cfg.revision, trust_remote_code=cfg.trust_remote_code
    )
    return model.to(device)


def meta_model(cfg: ModelConfig):
    """The architecture on the meta device (no weights): parameter counts for hub models on any machine."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    if cfg.architecture is None:
        raise ValueError(
            f"model {cfg.name!r}: set model.tiny or model.architecture to count parameters without weights"
        )
    arch = cfg.architecture.model_dump()
    config = AutoConfig.for_model(arch.pop("model_type"), **arch)
    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(config)
