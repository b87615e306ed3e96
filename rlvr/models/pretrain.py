"""Supervised pretraining of the tiny base on synthetic tasks: the starting policy for RL on CPU.

Cached by a hash of the config, so every test and run on a machine shares one base. The base of
configs/models/tiny.yaml is shipped in the package (rlvr/models/assets) and verified by digest, since
pretraining is reproducible on one machine only; other configs are pretrained on first use. The target is a
base that solves the easy level only partly (pretrain_band, 35-55% greedy), leaving room for RL to improve it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import shutil
import threading
import time
from pathlib import Path

from rlvr.config.schema import TinyModelConfig
from rlvr.data.synthetic import SOLUTIONS, Problem, generate
from rlvr.models.tiny import EOS, build_model, build_tokenizer, save_tiny

log = logging.getLogger(__name__)

CACHE_VERSION = 3  # bump when the tokenizer, the prompt format or the training loop changes
_BOXED = re.compile(r"\\boxed\{([^{}]*)\}")


def cache_dir() -> Path:
    """$RLVR_CACHE_DIR, else ~/.cache/rlvr."""
    return Path(os.environ.get("RLVR_CACHE_DIR", Path.home() / ".cache" / "rlvr"))


# Fields added after CACHE_VERSION 3 enter the key only when set, so the shipped bases keep their keys.
_KEYED_WHEN_SET = ("pretrain_eval_tokens", "pretrain_eval_temperature")


def tiny_key(cfg: TinyModelConfig) -> str:
    fields = cfg.model_dump(mode="json")
    for name in _KEYED_WHEN_SET:
        if fields[name] == TinyModelConfig.model_fields[name].default:
            del fields[name]
    blob = json.dumps({"v": CACHE_VERSION, **fields}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def tiny_path(cfg: TinyModelConfig) -> Path:
    return cache_dir() / "models" / f"tiny-{tiny_key(cfg)}"


def prompt_text(tokenizer, problem: str) -> str:
    """The "plain" prompt: the problem alone as the user turn (rlvr.data.prompts renders the same)."""
    return tokenizer.apply_chat_template(
        [{"role": "user", "content": problem}], tokenize=False, add_generation_prompt=True
    )


def _batch(tokenizer, problems: list[Problem]):
    import torch

    prompts = [tokenizer(prompt_text(tokenizer, p.problem))["input_ids"] for p in problems]
    answers = [tokenizer(p.target() + EOS)["input_ids"] for p in problems]
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


def accuracy(model, tokenizer, problems: list[Problem], cfg: TinyModelConfig, batch_size: int = 128) -> float:
    """Share of problems whose completion boxes the gold answer (left-padded HF generate): greedy, or sampled at
    ``cfg.pretrain_eval_temperature`` from a fixed seed, with ``cfg.pretrain_eval_tokens`` new tokens."""
    import torch

    tokenizer.padding_side = "left"
    correct = 0
    model.eval()
    sampled = cfg.pretrain_eval_temperature > 0
    sampling = (
        {"do_sample": True, "temperature": cfg.pretrain_eval_temperature, "top_k": 0}
        if sampled
        else {"do_sample": False}
    )
    with torch.no_grad(), torch.random.fork_rng():
        torch.manual_seed(cfg.seed)
        for start in range(0, len(problems), batch_size):
            chunk = problems[start : start + batch_size]
            enc = tokenizer([prompt_text(tokenizer, p.problem) for p in chunk], return_tensors="pt", padding=True)
            out = model.generate(
                **enc, max_new_tokens=cfg.pretrain_eval_tokens, pad_token_id=tokenizer.pad_token_id, **sampling
            )
            texts = tokenizer.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
            for p, text in zip(chunk, texts):
                m = _BOXED.search(text)
                correct += bool(m and m.group(1).strip() == p.answer)
    model.train()
    return correct / max(len(problems), 1)


def pretrain(cfg: TinyModelConfig, out: Path, eval_problems: int = 256) -> dict:
    """Train a tiny model from scratch on the configured synthetic task; save it to ``out``.

    Stops at the first check (every ``pretrain_eval_every`` steps) that reaches the target; a check that lands
    above the band restores whichever of it and the previous check lies nearer the band, so the base cannot
    run past the band between two checks.
    """
    import torch

    torch.manual_seed(cfg.seed)
    tokenizer = build_tokenizer()
    model = build_model(cfg)
    train = generate(cfg.pretrain_task, cfg.pretrain_levels, cfg.pretrain_steps * cfg.pretrain_batch_size, cfg.seed)
    if cfg.pretrain_task in SOLUTIONS:
        train = _batched_by_length(train, cfg.pretrain_batch_size, cfg.seed)
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
    previous: tuple[float, int, dict] | None = None  # (check accuracy, step, weights) of the last check
    for step in range(cfg.pretrain_steps):
        if cfg.pretrain_target_accuracy and step and step % cfg.pretrain_eval_every == 0:
            reached = accuracy(model, tokenizer, check, cfg)
            log.info("pretrain step %d check accuracy %.3f", step, reached)
            if reached >= cfg.pretrain_target_accuracy:
                if previous is not None and _band_distance(previous[0], cfg) < _band_distance(reached, cfg):
                    log.info("check at step %d overshot the band; keeping step %d", step, previous[1])
                    model.load_state_dict(previous[2])
                    steps_done = previous[1]
                break
            previous = (reached, step, {k: v.clone() for k, v in model.state_dict().items()})
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
    save_tiny(model, tokenizer, out)
    stats = {
        "steps": steps_done,
        "train_seconds": round(train_s, 1),
        "final_loss": round(loss_value, 4),
        **_measure(model, tokenizer, cfg, eval_problems),
        "weights_sha256": weights_digest(out),
        "source": "pretrained here",
        "config": cfg.model_dump(mode="json"),
    }
    (out / "pretrain.json").write_text(json.dumps(stats, indent=2))
    return stats


def _batched_by_length(problems: list[Problem], batch_size: int, seed: int, window: int = 64) -> list[Problem]:
    """The problems reordered so that each batch holds targets of similar length: written-out solutions run from
    40 to 500 tokens, and a batch padded to its longest would cost about twice its tokens. Sorted within windows
    of ``window`` batches, whose batches are then shuffled, so training still walks the data in order."""
    import random

    rng = random.Random(seed)
    out: list[Problem] = []
    for start in range(0, len(problems), window * batch_size):
        part = sorted(problems[start : start + window * batch_size], key=lambda p: len(p.target()))
        batches = [part[i : i + batch_size] for i in range(0, len(part), batch_size)]
        rng.shuffle(batches)
        out += [p for b in batches for p in b]
    return out


def _band_distance(accuracy: float, cfg: TinyModelConfig) -> float:
    if cfg.pretrain_band is None:
        return abs(accuracy - (cfg.pretrain_target_accuracy or accuracy))
    low, high = cfg.pretrain_band
    return max(low - accuracy, accuracy - high, 0.0)


def _measure(model, tokenizer, cfg: TinyModelConfig, eval_problems: int = 256) -> dict:
    """Held-out accuracy (greedy, or sampled as configured) on test problems no check or training step saw."""
    test = generate(cfg.pretrain_task, cfg.pretrain_levels[:1], eval_problems, cfg.seed, split="test")
    return {"heldout_accuracy": accuracy(model, tokenizer, test, cfg), "heldout_problems": len(test)}


def weights_digest(model_dir: Path) -> str:
    """sha256 over every tensor's name, dtype, shape and bytes: the same model gives the same digest whatever
    metadata or tensor order the file was written with."""
    import torch
    from safetensors import safe_open

    h = hashlib.sha256()
    with safe_open(str(model_dir / "model.safetensors"), framework="pt") as f:
        for name in sorted(f.keys()):
            t = f.get_tensor(name).contiguous()
            h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
            h.update(t.view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


# ---- the shipped base -------------------------------------------------------------------------------------
# Pretraining is deterministic on one machine but not across machines (kernels and thread counts change the
# float rounding, and 450 steps amplify it: one fresh machine's base came out at 66% instead of 46%). The
# base of configs/models/tiny.yaml is therefore built once and shipped in the package, verified by digest.

ASSETS = Path(__file__).parent / "assets"


def shipped_base(cfg: TinyModelConfig) -> Path | None:
    """The shipped weights for exactly this config (and CACHE_VERSION), if the package has them."""
    path = ASSETS / f"tiny-{tiny_key(cfg)}.safetensors"
    return path if path.is_file() else None


def install_shipped(cfg: TinyModelConfig, asset: Path, out: Path) -> dict:
    """Write the shipped base as a model directory, check its digest and measure it."""
    from safetensors.torch import load_file

    record = json.loads(asset.with_suffix(".json").read_text())
    model = build_model(cfg)
    model.load_state_dict(load_file(str(asset)))
    tokenizer = build_tokenizer()
    save_tiny(model, tokenizer, out)
    digest = weights_digest(out)
    if digest != record["weights_sha256"]:
        raise RuntimeError(
            f"{asset}: weights digest {digest[:12]} differs from the shipped {record['weights_sha256'][:12]}: "
            "the file is damaged; restore it from the repository (git checkout -- rlvr/models/assets)"
        )
    stats = {
        **{k: record[k] for k in ("steps", "train_seconds", "final_loss")},
        **_measure(model, tokenizer, cfg),
        "shipped_heldout_accuracy": record["heldout_accuracy"],
        "weights_sha256": digest,
        "source": f"shipped {asset.name}",
        "config": cfg.model_dump(mode="json"),
    }
    (out / "pretrain.json").write_text(json.dumps(stats, indent=2))
    return stats


def ship(cfg: TinyModelConfig) -> Path:
    """Pretrain from scratch (ignoring any shipped base) and write the weights and their record into the package."""
    import tempfile

    from safetensors.torch import load_file, save_file

    with tempfile.TemporaryDirectory() as tmp:
        stats = _single_thread(pretrain, cfg, Path(tmp) / "model")
        check_band(stats, cfg, Path(tmp))
        ASSETS.mkdir(exist_ok=True)
        asset = ASSETS / f"tiny-{tiny_key(cfg)}.safetensors"
        save_file(load_file(str(Path(tmp) / "model" / "model.safetensors")), str(asset))
    asset.with_suffix(".json").write_text(
        json.dumps({k: v for k, v in stats.items() if k != "source"}, indent=2) + "\n"
    )
    return asset


class BaseOutOfBand(ValueError):
    """The tiny base's held-out accuracy lies outside model.tiny.pretrain_band."""


def check_band(stats: dict, cfg: TinyModelConfig, path: Path) -> None:
    band, accuracy = cfg.pretrain_band, stats["heldout_accuracy"]
    if band is None or band[0] <= accuracy <= band[1]:
        return
    how = f"temperature-{cfg.pretrain_eval_temperature:g}" if cfg.pretrain_eval_temperature else "greedy"
    raise BaseOutOfBand(
        f"model.tiny: the base at {path} ({stats['source']}, {stats['steps']} steps) has held-out {how} accuracy "
        f"{accuracy:.3f}, outside pretrain_band {list(band)}; RL figures from it would not compare with the published "
        "ones. Change model.tiny.pretrain_target_accuracy / pretrain_eval_every / pretrain_steps (or the band), "
        f"or delete {path} to rebuild it"
    )


def _single_thread(fn, *args):
    import torch

    # One thread: the model is too small to gain from more, and on a busy machine OpenMP threads thrash.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return fn(*args)
    finally:
        torch.set_num_threads(threads)


def ensure_tiny(cfg: TinyModelConfig) -> Path:
    """The cached tiny base for ``cfg``: installed from the shipped weights when the package has them for this
    config, else pretrained now (atomic: built aside, then renamed). Every call checks the cached weights'
    digest (a damaged cache is rebuilt) and refuses a base whose measured accuracy is outside the band."""
    path = tiny_path(cfg)
    record = path / "pretrain.json"
    if record.is_file():
        stats = json.loads(record.read_text())
        if stats.get("weights_sha256") == weights_digest(path):
            check_band(stats, cfg, path)
            return path
        log.warning("tiny base at %s does not match its recorded digest: rebuilding it", path)
        shutil.rmtree(path, ignore_errors=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    # per thread too: a tenant pool's trials start in threads of one process and may install the same base at once
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}-{threading.get_ident()}")
    shutil.rmtree(tmp, ignore_errors=True)
    asset = shipped_base(cfg)
    stats = _single_thread(install_shipped, cfg, asset, tmp) if asset else _single_thread(pretrain, cfg, tmp)
    try:
        tmp.rename(path)
    except OSError:  # another process finished the same model first: theirs is identical
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("tiny base ready at %s: %s", path, {k: v for k, v in stats.items() if k != "config"})
    check_band(stats, cfg, path)
    return path
