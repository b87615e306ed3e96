"""The learner's peak memory against `rlvr plan`'s estimate, on a scale model with Qwen2's real vocabulary.

A Qwen2 with the 151,936-token vocabulary and a small body (hidden 256, 2 layers), fp32 on CPU, LoRA r16 with
dropout on all seven modules (logits chunks of 256 tokens), trains one step per point in a fresh subprocess; the point's
peak is VmHWM after the step less VmRSS before the model was loaded (Python, torch and transformers themselves are not
the learner's). Series: the token budget from 1k to 16k (one sequence per micro-batch); the same budget split into 1, 2
and 4 micro-batches (the peak must stay flat); the same budget at micro-batches of 1 to 8 sequences; gradient
checkpointing on. Each sequence is a long prompt and a 512-token completion, so every point scores the same number of
logits chunks and the body's activations carry the token dependence.

    nice -n 10 python benchmarks/bench_learner_memory.py            # table on stdout, JSON in /tmp
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ARCH = dict(
    model_type="qwen2",
    hidden_size=256,
    intermediate_size=1024,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    vocab_size=151936,
    max_position_embeddings=32768,
    tie_word_embeddings=False,
)
COMPLETION = 512
CHUNK = 256


def _status(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(key)


def _trial_cfg(model_path: str, seq_len: int, budget: int, max_sequences: int, checkpointing: bool):
    from rlvr.config.schema import ArchitectureConfig, TrialConfig

    cfg = TrialConfig()
    cfg.model.name, cfg.model.dtype = model_path, "float32"
    cfg.model.architecture = ArchitectureConfig(**ARCH)
    cfg.method.name, cfg.method.rank, cfg.method.alpha, cfg.method.dropout = "lora", 16, 32, 0.05
    cfg.method.target_modules = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    cfg.data.max_prompt_tokens, cfg.rollout.max_new_tokens = seq_len - COMPLETION, COMPLETION
    cfg.learner.backend, cfg.learner.device, cfg.learner.threads = "torch", "cpu", 1
    cfg.learner.micro_batch_size, cfg.learner.max_tokens_per_micro_batch = max_sequences, budget
    cfg.learner.gradient_checkpointing, cfg.learner.logits_chunk_tokens = checkpointing, CHUNK
    return cfg


def measure_point(
    model_path: str, seq_len: int, sequences: int, budget: int, max_sequences: int, checkpointing: bool
) -> dict:
    """One training step in this process; returns measured and planned GiB."""
    import ctypes
    import random

    import torch  # noqa: F401  (imported before the baseline: the runtime is not the learner's memory)
    import transformers  # noqa: F401

    from rlvr.config.memory_plan import GIB, learner_plan
    from rlvr.learner.batch import RolloutBatch, micro_batches
    from rlvr.learner.learner import Learner
    from rlvr.learner.spec import LearnerSpec

    cfg = _trial_cfg(model_path, seq_len, budget, max_sequences, checkpointing)
    baseline = _status("VmRSS")
    learner = Learner(LearnerSpec.from_trial(cfg), model_path)
    ctypes.CDLL("libc.so.6").malloc_trim(0)  # loading's transient copies are not the step's
    Path("/proc/self/clear_refs").write_text("5")  # restart the high-water mark from here
    rng = random.Random(0)
    prompt = seq_len - COMPLETION
    batch = RolloutBatch(
        prompt_ids=[[rng.randrange(3, 151000) for _ in range(prompt)] for _ in range(sequences)],
        completion_ids=[[rng.randrange(3, 151000) for _ in range(COMPLETION)] for _ in range(sequences)],
        engine_logprobs=[[-12.0] * COMPLETION for _ in range(sequences)],
        advantages=[1.0 if i % 2 else -1.0 for i in range(sequences)],
        in_loss=[True] * sequences,
    )
    micro = len(micro_batches(batch, max_sequences, budget))
    learner.train_step(batch)
    plan = learner_plan(cfg)
    return {
        "seq_len": seq_len,
        "sequences": sequences,
        "budget": budget,
        "per_micro": max_sequences,
        "micro_batches": micro,
        "checkpointing": checkpointing,
        "measured_gib": (_status("VmHWM") - baseline) / GIB,
        "planned_gib": plan.total,
        "items": {k: round(v, 3) for k, v in plan.items.items()},
    }


# (sequence length, sequences, token budget, sequences per micro-batch, checkpointing)
POINTS = [
    *[(t, 1, t, 1, False) for t in (1024, 2048, 4096, 8192, 16384)],  # linear in the token budget
    *[(2048, n, 4096, 2, False) for n in (2, 4, 8)],  # 1, 2, 4 micro-batches of the same budget: flat
    *[(8192 // k, k, 8192, k, False) for k in (2, 4, 8)],  # 8k budget as 2, 4, 8 sequences per micro-batch
    *[(t, 1, t, 1, True) for t in (4096, 16384)],  # gradient checkpointing
]


def build_model(path: Path) -> None:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    torch.manual_seed(0)
    arch = dict(ARCH)
    model = AutoModelForCausalLM.from_config(AutoConfig.for_model(arch.pop("model_type"), **arch))
    model.save_pretrained(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--point", help=argparse.SUPPRESS)  # internal: one point as JSON, run in a subprocess
    ap.add_argument("--model", help=argparse.SUPPRESS)
    ap.add_argument("--out", default=str(Path(tempfile.gettempdir()) / "bench_learner_memory.json"))
    args = ap.parse_args()
    if args.point:
        print(json.dumps(measure_point(args.model, *json.loads(args.point))))
        return
    # A fixed mmap threshold returns every freed tensor of 128 KiB or more to the OS: without it glibc raises the
    # threshold after the first frees and keeps later tensors in a heap that fragments, so RSS creeps up with
    # each micro-batch (measured: +0.4 GiB over 4 micro-batches) although the live tensors do not grow.
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072"}
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "scale-model"
        build_model(model)
        rows = []
        for point in POINTS:
            out = subprocess.run(
                [sys.executable, __file__, "--model", str(model), "--point", json.dumps(point)],
                capture_output=True,
                text=True,
                check=True,
                env=env,
            )
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
            r = rows[-1]
            print(
                f"| {r['seq_len']:>6,} x {r['sequences']:<2} | {r['budget']:>6,} | {r['per_micro']} | "
                f"{r['micro_batches']} | "
                f"{'on' if r['checkpointing'] else 'off'} | {r['measured_gib']:.2f} | {r['planned_gib']:.2f} | "
                f"{(r['planned_gib'] / r['measured_gib'] - 1) * 100:+.0f}% |",
                flush=True,
            )
    Path(args.out).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
