"""Supervised pretraining of the tiny base on synthetic tasks: the starting policy for RL on CPU.

Deterministic from the config's seed and cached by a hash of the config, so every test and run on a machine
shares one pretrained base. The target is a base that solves the easy level only partly (30-50%), leaving
room for RL to improve it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import shutil
import time
from pathlib import Path

from rlvr.config.schema import TinyModelConfig
from rlvr.data.synthetic import Problem, boxed, generate
from rlvr.models.tiny import EOS, build_model, build_tokenizer, save_tiny

log = logging.getLogger(__name__)

CACHE_VERSION = 2  # bump when the tokenizer, the prompt format or the training loop changes
_BOXED = re.compile(r"\\boxed\{([^{}]*)\}")


def cache_dir() -> Path:
    """$RLVR_CACHE_DIR, else ~/.cache/rlvr."""
    return Path(os.environ.get("RLVR_CACHE_DIR", Path.home() / ".cache" / "rlvr"))


def tiny_key(cfg: TinyModelConfig) -> str:
    blob = json.dumps({"v": CACHE_VERSION, **cfg.model_dump(mode="json")}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def tiny_path(cfg: TinyModelConfig) -> Path:
    return cache_dir() / "models" / f"tiny-{tiny_key(cfg)}"


def prompt_text(tokenizer, problem: str) -> str:
    """The "plain" prompt: the problem alone as the user turn (rlvr.data.prompts renders the same)."""
    return tokenizer.apply_chat_template([{"role": "user", "content": problem}], tokenize=False, add_generation_prompt=True)


def _batch(tokenizer, problems: list[Problem]):
    import torch

    prompts = [tokenizer(prompt_text(tokenizer, p.problem))["input_ids"] for p in problems]
    answers = [tokenizer(boxed(p.answer) + EOS)["input_ids"] for p in problems]
    width = max(len(a) + len(b) for a, b in zip(prompts, answers))
    ids = torch.full((len(problems), width), tokenizer.pad_token_id)
    labels = torch.full((len(problems), width), -100)
    mask = torch.zeros((len(problems), width), dtype=torch.long)
    for i, (p, a) in enumerate(zip(prompts, answers)):
        seq = p + a
        ids[i, : len(seq)] = torch.tensor(seq)
        labels[i, len(p) : len(seq)] = torch.tensor(a)
        mask[i, : len(seq)] = 1
    return ids, labels, mask


def greedy_accuracy(model, tokenizer, problems: list[Problem], batch_size: int = 128) -> float:
    """Share of problems whose greedy completion boxes the gold answer (left-padded HF generate)."""
    import torch

    tokenizer.padding_side = "left"
    correct = 0
    model.eval()
    with torch.no_grad():
        for start in range(0, len(problems), batch_size):
            chunk = problems[start : start + batch_size]
            enc = tokenizer([prompt_text(tokenizer, p.problem) for p in chunk], return_tensors="pt", padding=True)
            out = model.generate(**enc, max_new_tokens=16, do_sample=False, pad_token_id=tokenizer.pad_token_id)
            texts = tokenizer.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
            for p, text in zip(chunk, texts):
                m = _BOXED.search(text)
                correct += bool(m and m.group(1).strip() == p.answer)
    model.train()
    return correct / max(len(problems), 1)


def pretrain(cfg: TinyModelConfig, out: Path, eval_problems: int = 256) -> dict:
    """Train a tiny model from scratch on the configured synthetic task; save it to ``out``."""
    import torch

    torch.manual_seed(cfg.seed)
    tokenizer = build_tokenizer()
    model = build_model(cfg)
    train = generate(cfg.pretrain_task, cfg.pretrain_levels, cfg.pretrain_steps * cfg.pretrain_batch_size, cfg.seed)
    test = generate(cfg.pretrain_task, cfg.pretrain_levels[:1], eval_problems, cfg.seed, split="test")
    # The stopping check uses other held-out problems than the reported accuracy.
    check = generate(cfg.pretrain_task, cfg.pretrain_levels[:1], 128, cfg.seed + 1, split="test")
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.pretrain_lr, weight_decay=0.01)
    warmup = max(1, cfg.pretrain_steps // 20)

    def lr_at(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, cfg.pretrain_steps - warmup)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    model.train()
    start, loss_value, steps_done = time.time(), float("nan"), 0
    for step in range(cfg.pretrain_steps):
        if cfg.pretrain_target_accuracy and step and step % cfg.pretrain_eval_every == 0:
            reached = greedy_accuracy(model, tokenizer, check)
            log.info("pretrain step %d check accuracy %.3f", step, reached)
            if reached >= cfg.pretrain_target_accuracy:
                break
        chunk = train[step * cfg.pretrain_batch_size : (step + 1) * cfg.pretrain_batch_size]
        ids, labels, mask = _batch(tokenizer, chunk)
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        loss_value = loss.item()
        steps_done = step + 1
        if step % 200 == 0:
            log.info("pretrain step %d loss %.4f", step, loss_value)
    train_s = time.time() - start
    accuracy = greedy_accuracy(model, tokenizer, test)
    stats = {
        "steps": steps_done,
        "train_seconds": round(train_s, 1),
        "final_loss": round(loss_value, 4),
        "heldout_accuracy": accuracy,
        "heldout_problems": len(test),
        "config": cfg.model_dump(mode="json"),
    }
    save_tiny(model, tokenizer, out)
    (out / "pretrain.json").write_text(json.dumps(stats, indent=2))
    return stats


def ensure_tiny(cfg: TinyModelConfig) -> Path:
    """The cached pretrained tiny model for ``cfg``, trained now if absent (atomic: train aside, then rename)."""
    path = tiny_path(cfg)
    if (path / "pretrain.json").is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    import torch

    # One thread: the model is too small to gain from more, and on a busy machine OpenMP threads thrash.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        stats = pretrain(cfg, tmp)
    finally:
        torch.set_num_threads(threads)
    try:
        tmp.rename(path)
    except OSError:  # another process finished the same model first: theirs is identical
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("tiny model ready at %s: %s", path, stats)
    return path
