"""The learner's step time and peak GPU memory at the study's lengths, on one GPU with torch, transformers and peft.

A randomly initialised model with configs/models/r1-distill-qwen-1.5b.yaml's architecture, bf16, gradient
checkpointing, the study's token budget (configs/trials/study.yaml: 65,536 padded tokens per micro-batch),
rlvr's chunked completion-only log-probabilities (rlvr/learner/logprobs.py, which imports only torch) and a
DAPO-style token-mean policy-gradient loss. LoRA r32 on all seven linear modules (AdamW over the adapter) and
full fine-tuning (bf16 weights, fp32 master weights and AdamW state, as the study's DeepSpeed bf16 runs keep),
each at 4k, 8k and 16k-token completions after 512-token prompts: one micro-batch of as many sequences as
the budget holds, a warm-up step, then timed steps. No vLLM, Ray, DeepSpeed or pydantic needed; when rlvr's
config stack imports, each row also shows `rlvr plan`'s learner estimate for the same settings.

    python benchmarks/gpu_learner.py --out "$OUT"        # one H200: ~3-5 minutes
    python benchmarks/gpu_learner.py --tiny --out /tmp/x  # CPU, a toy model, seconds (tests run this)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from rlvr.learner.logprobs import token_logprobs  # noqa: E402  (torch only)

PROMPT = 512
BUDGET = 65536
TINY_ARCH = dict(model_type="qwen2", hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, vocab_size=1000, max_position_embeddings=4096, tie_word_embeddings=False)
MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def build(arch: dict, method: str, device: torch.device, dtype: torch.dtype):
    """The model, the parameters the optimizer sees (fp32 masters for full FT), and the optimizer."""
    from transformers import AutoConfig, AutoModelForCausalLM

    arch = dict(arch)
    config = AutoConfig.for_model(arch.pop("model_type"), **arch)
    config.use_cache = False
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config).to(dtype)
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if method == "lora":
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(model, LoraConfig(r=32, lora_alpha=64, lora_dropout=0.05, target_modules=MODULES))
        params = [p for p in model.parameters() if p.requires_grad]
        masters = None
    else:
        params = list(model.parameters())
        masters = [p.detach().float().clone().requires_grad_(True) for p in params] if dtype != torch.float32 else None
    optimizer = torch.optim.AdamW(masters or params, lr=1e-6, weight_decay=0.0)
    model.train()
    return model, params, masters, optimizer


def step(model, params, masters, optimizer, batch: dict, temperature: float = 1.0) -> None:
    head = model.get_output_embeddings()
    logp, _ = token_logprobs(model, head, batch, temperature, 1024)
    mask = batch["loss_mask"]
    ratio = torch.exp(logp - logp.detach())  # on-policy: the study's one optimizer step per batch
    loss = -(ratio * batch["advantage"][:, None] * mask).sum() / mask.sum()
    loss.backward()
    if masters is not None:
        for p, m in zip(params, masters):
            m.grad = p.grad.float()
            p.grad = None
    torch.nn.utils.clip_grad_norm_(masters or params, 1.0)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    if masters is not None:
        with torch.no_grad():
            for p, m in zip(params, masters):
                p.copy_(m)


def make_batch(n: int, prompt: int, completion: int, vocab: int, device: torch.device) -> dict:
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(3, vocab, (n, prompt + completion), generator=g)
    mask = torch.zeros(n, prompt + completion - 1)
    mask[:, prompt - 1 :] = 1
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "targets": ids[:, 1:].clone(),
             "loss_mask": mask, "advantage": torch.tensor([1.0 if i % 2 else -1.0 for i in range(n)])}
    return {k: v.to(device) for k, v in batch.items()}


def planned_gib(arch: dict, method: str, prompt: int, completion: int, budget: int) -> float | None:
    """rlvr plan's learner estimate for the same settings, or None where rlvr's config stack is not installed."""
    try:
        from rlvr.config.schema import ArchitectureConfig, TrialConfig
        from rlvr.plan.memory import learner_plan
    except ImportError:
        return None
    cfg = TrialConfig()
    cfg.model.architecture, cfg.model.dtype = ArchitectureConfig(**arch), "bfloat16"
    if method == "lora":
        cfg.method.name, cfg.method.rank, cfg.method.alpha, cfg.method.target_modules = "lora", 32, 64, MODULES
    else:
        cfg.method.name, cfg.method.rank, cfg.method.alpha = "full", None, None
    cfg.data.max_prompt_tokens, cfg.rollout.max_new_tokens = prompt, completion
    cfg.learner.backend, cfg.learner.gradient_checkpointing, cfg.learner.max_tokens_per_micro_batch = "torch", True, budget
    return learner_plan(cfg).total


def run(arch: dict, prompt: int, lengths: list[int], budget: int, steps: int, device: torch.device, dtype: torch.dtype) -> list[dict]:
    rows = []
    for method in ("lora", "full"):
        model, params, masters, optimizer = build(arch, method, device, dtype)
        for completion in lengths:
            n = max(budget // (prompt + completion), 1)
            batch = make_batch(n, prompt, completion, arch["vocab_size"], device)
            step(model, params, masters, optimizer, batch)  # warm-up: kernels, optimizer state
            if device.type == "cuda":
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
            start = time.perf_counter()
            for _ in range(steps):
                step(model, params, masters, optimizer, batch)
            if device.type == "cuda":
                torch.cuda.synchronize()
            seconds = (time.perf_counter() - start) / steps
            peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else None
            tokens = n * (prompt + completion)
            rows.append({"method": "lora r32" if method == "lora" else "full FT", "completion": completion, "sequences": n,
                         "tokens": tokens, "step_s": round(seconds, 3), "tokens_per_s": round(tokens / seconds),
                         "peak_gib": None if peak is None else round(peak, 2),
                         "planned_gib": (lambda x: None if x is None else round(x, 2))(planned_gib(arch, method, prompt, completion, budget))})
            print(json.dumps(rows[-1]), flush=True)
            del batch
        del model, params, masters, optimizer
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return rows


def markdown(rows: list[dict], title: str) -> str:
    lines = [f"### {title}", "", "| method | completion | sequences x tokens | step s | tokens/s | peak GiB | plan GiB |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['method']} | {r['completion']:,} | {r['sequences']} x {r['tokens'] // r['sequences']:,} | "
                     f"{r['step_s']} | {r['tokens_per_s']:,} | {r['peak_gib']} | {r['planned_gib']} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tiny", action="store_true", help="CPU, a toy bf16 model and lengths: checks the script (master weights included), measures nothing.")
    ap.add_argument("--out", default="gpu_learner_out", help="Directory for gpu_learner.json and gpu_learner.md.")
    ap.add_argument("--steps", type=int, default=2, help="Timed steps per row (after one warm-up).")
    args = ap.parse_args()
    if args.tiny:
        arch, prompt, lengths, budget, device, dtype = TINY_ARCH, 32, [64, 128, 256], 2048, torch.device("cpu"), torch.bfloat16
    else:
        if not torch.cuda.is_available():
            sys.exit("no CUDA device: run with --tiny on CPU")
        arch = yaml.safe_load((ROOT / "configs/models/r1-distill-qwen-1.5b.yaml").read_text())["architecture"]
        prompt, lengths, budget, device, dtype = PROMPT, [4096, 8192, 16384], BUDGET, torch.device("cuda", 0), torch.bfloat16
    torch.manual_seed(0)
    rows = run(arch, prompt, lengths, budget, args.steps, device, dtype)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu (--tiny)"
    (out / "gpu_learner.json").write_text(json.dumps({"device": name, "budget": budget, "rows": rows}, indent=1))
    (out / "gpu_learner.md").write_text(markdown(rows, f"{name}, torch {torch.__version__}, token budget {budget:,}"))
    print((out / "gpu_learner.md").read_text())


if __name__ == "__main__":
    main()
