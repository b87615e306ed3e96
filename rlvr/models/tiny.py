"""Tiny Qwen2 models with a character-level tokenizer, for CPU runs and tests.

The tokenizer is Qwen2's byte-level BPE with no merges (one token per character, ChatML special tokens, a
chat template), saved next to the weights, so transformers, peft and vLLM load the directory like any hub model.
"""

from __future__ import annotations

import string
from pathlib import Path

from rlvr.config.schema import TinyModelConfig

PAD, BOS, EOS = "<|endoftext|>", "<|im_start|>", "<|im_end|>"
SPECIAL_TOKENS = [PAD, BOS, EOS]
CHARS = list(string.printable[:95]) + ["\n"]  # printable ASCII without \t\r\x0b\x0c, plus newline
VOCAB_SIZE = 128  # specials + chars, padded with unused tokens to a round embedding size

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _byte_level(ch: str) -> str:
    """GPT-2's printable stand-in for a byte, as Qwen2's byte-level BPE stores its vocabulary."""
    b = ord(ch)
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    if b in printable:
        return ch
    return chr(256 + sum(1 for x in range(b) if x not in printable))


def build_tokenizer():
    """A character-level Qwen2 tokenizer: byte-level BPE with no merges, so each character is one token.

    Built as Qwen2's own tokenizer class because transformers and vLLM pick the tokenizer class from the
    model type; the vocabulary size equals the tiny model's embedding size.
    """
    from tokenizers import AddedToken
    from transformers import Qwen2Tokenizer

    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS)}
    for ch in CHARS:
        vocab[_byte_level(ch)] = len(vocab)
    for i in range(len(vocab), VOCAB_SIZE):
        vocab[f"<|unused{i}|>"] = i
    tok = Qwen2Tokenizer(vocab=vocab, merges=[], eos_token=EOS, pad_token=PAD, unk_token=PAD, model_max_length=4096)
    tok.add_tokens([AddedToken(t, special=True) for t in SPECIAL_TOKENS])
    tok.chat_template = CHAT_TEMPLATE
    return tok


def build_model(cfg: TinyModelConfig):
    """A randomly initialised Qwen2ForCausalLM of the configured size (fp32), seeded from the config."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    tok_ids = {t: i for i, t in enumerate(SPECIAL_TOKENS)}
    config = Qwen2Config(
        vocab_size=VOCAB_SIZE,
        hidden_size=cfg.hidden_size,
        intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_layers,
        num_attention_heads=cfg.num_heads,
        num_key_value_heads=cfg.num_kv_heads,
        max_position_embeddings=cfg.max_position_embeddings,
        tie_word_embeddings=False,
        pad_token_id=tok_ids[PAD],
        bos_token_id=tok_ids[BOS],
        eos_token_id=tok_ids[EOS],
        rope_theta=10000.0,
    )
    with torch.random.fork_rng():
        torch.manual_seed(cfg.seed)
        model = Qwen2ForCausalLM(config)
    model.generation_config.eos_token_id = tok_ids[EOS]
    model.generation_config.pad_token_id = tok_ids[PAD]
    return model


def save_tiny(model, tokenizer, path: Path) -> Path:
    """Write model and tokenizer as a loadable directory (safetensors, fp32)."""
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
    return path
