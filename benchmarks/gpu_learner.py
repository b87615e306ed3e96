"""The learner's step time and peak GPU memory at the study's shape, on one GPU with torch, transformers and peft.

What it runs is what a study trial's learner runs, minus Ray: a randomly initialised model with
configs/models/r1-distill-qwen-1.5b.yaml's architecture and vocabulary in bf16, gradient checkpointing, SDPA
attention (transformers' default; the image has no flash-attn), the paper presets of LoRA, DoRA, PiSSA
(configs/methods/paper/*.yaml, built with peft) and full fine-tuning, rlvr's TorchBackend (fp32 master weights
of every bf16 weight it trains, AdamW, clipping), rlvr's micro-batch collate and chunked completion-only
log-probabilities. The timed micro-batch is the study's largest (65,536 padded tokens) after a 512-token
prompt at 4k and 16k-token completions, right-padded as training pads it: the longest row at full length,
the others shorter, so transformers builds the 4-D boolean mask SDPA then takes (training's slow path, not
the all-ones fast path). Each row's peak memory stands beside `rlvr plan`'s learner estimate for the same
settings, computed live where rlvr's config stack imports and read from benchmarks/gpu_learner_plan.json
(written here by --write-plan, checked by the tests) where it does not.

    python benchmarks/gpu_learner.py --out "$OUT"         # one H200, torch+transformers+peft only: ~4-6 min
    python benchmarks/gpu_learner.py --tiny --out /tmp/x   # CPU, toy shapes, a minute (the tests run this)
    python benchmarks/gpu_learner.py --write-plan          # refresh gpu_learner_plan.json after a plan change
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# torch-only modules of rlvr: what the learner runs, importable without pydantic, vLLM, Ray or DeepSpeed
from rlvr.learner.backends import TorchBackend  # noqa: E402
from rlvr.learner.batch import RolloutBatch, collate  # noqa: E402
from rlvr.learner.logprobs import token_logprobs  # noqa: E402

PLAN_FILE = ROOT / "benchmarks/gpu_learner_plan.json"
METHODS = ("lora", "dora", "pissa", "full")
REAL = dict(prompt=512, lengths=[4096, 16384], budget=65536)
TINY = dict(prompt=16, lengths=[32, 96], budget=512)
TINY_ARCH = dict(
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    vocab_size=1000,
    max_position_embeddings=4096,
    tie_word_embeddings=False,
)


def real_arch() -> dict:
    return yaml.safe_load((ROOT / "configs/models/r1-distill-qwen-1.5b.yaml").read_text())["architecture"]


def preset(method: str) -> dict:
    return yaml.safe_load((ROOT / f"configs/methods/paper/{method}.yaml").read_text())


def build(arch: dict, method: str, device: torch.device):
    """The bf16 model with the method's paper preset, and the backend that trains it."""
    from transformers import AutoConfig, AutoModelForCausalLM

    arch = dict(arch)
    config = AutoConfig.for_model(arch.pop("model_type", "qwen2"), **arch)
    config.use_cache = False
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config).to(torch.bfloat16)
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    p = preset(method)
    if method != "full":
        from peft import LoraConfig, get_peft_model

        init = {"pissa": "pissa_niter_4"}.get(method, True)
        model = get_peft_model(
            model,
            LoraConfig(
                r=p["rank"],
                lora_alpha=p["alpha"],
                lora_dropout=p["dropout"],
                target_modules=p["target_modules"],
                use_dora=method == "dora",
                init_lora_weights=init,
            ),
        )
    trainable = [q for q in model.parameters() if q.requires_grad]
    backend = TorchBackend(model, torch.optim.AdamW(trainable, lr=p.get("lr", 1e-5), weight_decay=0.0), 1.0, 1)
    model.train()
    return model, backend


def micro_batch(n: int, prompt: int, completion: int, vocab: int, device: torch.device) -> dict:
    """The study's largest micro-batch, collated as training collates it: the first row at full length, the
    others down to 3/4 of it (micro-batches hold the longest sequences first), so the rows are right-padded."""
    g = torch.Generator().manual_seed(0)
    lengths = [completion - (completion // 4) * i // max(n - 1, 1) for i in range(n)]
    batch = RolloutBatch(
        prompt_ids=[torch.randint(3, vocab, (prompt,), generator=g).tolist() for _ in range(n)],
        completion_ids=[torch.randint(3, vocab, (c,), generator=g).tolist() for c in lengths],
        engine_logprobs=[[0.0] * c for c in lengths],
        advantages=[1.0 if i % 2 else -1.0 for i in range(n)],
        in_loss=[True] * n,
    )
    return collate(batch, device)


def step(model, backend: TorchBackend, t: dict) -> None:
    logp, _ = token_logprobs(model, model.get_output_embeddings(), t, 1.0, 1024)
    mask = t["loss_mask"]
    ratio = torch.exp(logp - logp.detach())  # on-policy: the study's one optimizer step per batch
    backend.backward(-(ratio * t["advantages"][:, None] * mask).sum() / mask.sum())
    backend.step(lambda: None)


def plan_gib(arch: dict, method: str, prompt: int, completion: int, budget: int) -> float:
    """`rlvr plan`'s learner GiB for these settings (needs rlvr's config stack: pydantic)."""
    from rlvr.config.memory_plan import learner_plan
    from rlvr.config.schema import ArchitectureConfig, TrialConfig

    cfg = TrialConfig()
    cfg.model.architecture, cfg.model.dtype = ArchitectureConfig(**arch), "bfloat16"
    p = preset(method)
    cfg.method.name, cfg.method.dropout = p["name"], p["dropout"]
    if method != "full":
        cfg.method.rank, cfg.method.alpha, cfg.method.target_modules = p["rank"], p["alpha"], p["target_modules"]
    cfg.data.max_prompt_tokens, cfg.rollout.max_new_tokens = prompt, completion
    cfg.learner.backend, cfg.learner.gradient_checkpointing, cfg.learner.max_tokens_per_micro_batch = (
        "torch",
        True,
        budget,
    )
    return round(learner_plan(cfg).total, 2)


def plans(arch: dict, shape: dict) -> dict[str, float]:
    keys = [(m, c) for m in METHODS for c in shape["lengths"]]
    try:
        return {f"{m}@{c}": plan_gib(arch, m, shape["prompt"], c, shape["budget"]) for m, c in keys}
    except ImportError:  # the GPU machine: no pydantic, so the numbers this repository ships
        return json.loads(PLAN_FILE.read_text())["plans"]


def run(arch: dict, shape: dict, steps: int, device: torch.device) -> list[dict]:
    planned, rows = plans(arch, shape), []
    for method in METHODS:
        start = time.perf_counter()
        model, backend = build(arch, method, device)
        built_s = time.perf_counter() - start
        for completion in shape["lengths"]:
            n = max(shape["budget"] // (shape["prompt"] + completion), 1)
            t = micro_batch(n, shape["prompt"], completion, arch["vocab_size"], device)
            step(model, backend, t)  # warm-up: kernels, optimizer state
            if device.type == "cuda":
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
            start = time.perf_counter()
            for _ in range(steps):
                step(model, backend, t)
            if device.type == "cuda":
                torch.cuda.synchronize()
            seconds = (time.perf_counter() - start) / steps
            peak = round(torch.cuda.max_memory_allocated() / 2**30, 2) if device.type == "cuda" else None
            tokens, padded = int(t["attention_mask"].sum()), t["attention_mask"].numel()
            plan = planned[f"{method}@{completion}"]
            rows.append(
                {
                    "method": method,
                    "completion": completion,
                    "sequences": n,
                    "tokens": tokens,
                    "padded_tokens": padded,
                    "step_s": round(seconds, 3),
                    "tokens_per_s": round(tokens / seconds),
                    "peak_gib": peak,
                    "plan_gib": plan,
                    "peak_over_plan": None if peak is None else round(peak / plan, 3),
                    "build_s": round(built_s, 1),
                }
            )
            print(json.dumps(rows[-1]), flush=True)
            del t
        del model, backend
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return rows


def markdown(rows: list[dict], title: str) -> str:
    lines = [
        f"### {title}",
        "",
        "| method | completion | sequences, tokens (padded) | step s | tokens/s | peak GiB | plan GiB |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['method']} | {r['completion']:,} | {r['sequences']}, {r['tokens']:,} ({r['padded_tokens']:,}) | "
            f"{r['step_s']} | {r['tokens_per_s']:,} | {r['peak_gib']} | {r['plan_gib']} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--tiny", action="store_true", help="CPU, a toy bf16 model and lengths: checks the script, measures nothing."
    )
    ap.add_argument("--out", default="gpu_learner_out", help="Directory for gpu_learner.json and gpu_learner.md.")
    ap.add_argument("--steps", type=int, default=2, help="Timed steps per row (after one warm-up).")
    ap.add_argument("--write-plan", action="store_true", help=f"Write {PLAN_FILE.name} (rlvr plan's numbers) and exit.")
    args = ap.parse_args()
    if args.write_plan:
        PLAN_FILE.write_text(json.dumps({"shape": REAL, "plans": plans(real_arch(), REAL)}, indent=1) + "\n")
        return
    if args.tiny:
        arch, shape, device = TINY_ARCH, TINY, torch.device("cpu")
    else:
        if not torch.cuda.is_available():
            sys.exit("no CUDA device: run with --tiny on CPU")
        arch, shape, device = real_arch(), REAL, torch.device("cuda", 0)
    torch.manual_seed(0)
    start = time.perf_counter()
    rows = run(arch, shape, args.steps, device)
    import peft
    import transformers

    name = torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu (--tiny)"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    meta = {
        "device": name,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "peft": peft.__version__,
        "attention": "sdpa, right padding, 4-D boolean mask",
        "dtype": "bfloat16, fp32 master weights",
        **shape,
        "seconds": round(time.perf_counter() - start, 1),
        "rows": rows,
    }
    (out / "gpu_learner.json").write_text(json.dumps(meta, indent=1))
    (out / "gpu_learner.md").write_text(
        markdown(rows, f"{name}, torch {torch.__version__}, token budget {shape['budget']:,}")
    )
    print((out / "gpu_learner.md").read_text())


if __name__ == "__main__":
    main()
