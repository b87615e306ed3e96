"""Does a row's GEMM result depend on how many rows the batch has, on this CPU? (issue 24's exactness question)

    PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_gemm_rows.py [--threads 1 2] [--models tiny 1.5b]

A request's numbers in a mixed batch equal its solo run's only if every op gives a row the same bits whatever
rows share its batch. The ops that mix rows' shapes are the matrix products: the base model's linear layers as
vLLM-CPU runs them in fp32 (oneDNN through ``create_onednn_mm``: rlvr/rollout/vllm_engine.py's engines) and the
LoRA kernels' ``torch.mm`` per adapter segment (rlvr/rollout/vllm_cpu_lora.py), also at a rank padded with zeros
(an engine's max_lora_rank above the adapter's). For each shape, every slice x[start:start + rows] of a 256-row
batch is computed alone and compared bit for bit with the same rows of the whole batch. Prints one JSON line per
shape and thread count: how many slices differed and the largest difference.
"""

from __future__ import annotations

import argparse
import json

# (name, input width K, output width N) of each linear layer; lm_head cut to 4096 vocabulary rows (its per-row
# reduction runs over K, which it keeps).
SHAPES = {
    "tiny": [("qkv", 128, 256), ("o", 128, 128), ("gate_up", 128, 768), ("down", 384, 128), ("lm_head", 128, 64)],
    "1.5b": [
        ("qkv", 1536, 2048),
        ("o", 1536, 1536),
        ("gate_up", 1536, 17920),
        ("down", 8960, 1536),
        ("lm_head", 1536, 4096),
    ],
}
ROWS = [1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 128, 200, 255]
BATCH = 256


def _slices():
    """(start, rows): slices at the batch's start and at odd offsets (a row in a tail block vs a full one)."""
    return [(start, rows) for rows in ROWS for start in (0, 5, BATCH - rows) if start + rows <= BATCH]


def compare(fn, x) -> dict:
    whole = fn(x)
    differ, worst = 0, 0.0
    for start, rows in _slices():
        part = fn(x[start : start + rows].contiguous())
        gap = (part - whole[start : start + rows]).abs().max().item()
        differ += int(not part.equal(whole[start : start + rows]))
        worst = max(worst, gap)
    return {"slices": len(_slices()), "slices_differing": differ, "max_abs_gap": worst}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--models", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    args = ap.parse_args()

    import torch
    from vllm import _custom_ops as ops

    g = torch.Generator().manual_seed(0)
    for threads in args.threads:
        torch.set_num_threads(threads)
        for model in args.models:
            for name, k, n in SHAPES[model]:
                w = torch.randn(n, k, generator=g) / k**0.5
                x = torch.randn(BATCH, k, generator=g)
                handler = ops.create_onednn_mm(w.t(), 32)  # as vLLM's dispatch_cpu_unquantized_gemm builds it
                cases = {"onednn_base": lambda v, handler=handler: ops.onednn_mm(handler, v, None)}
                for rank in (8, 16):
                    a, b = torch.randn(rank, k, generator=g), torch.randn(n, rank, generator=g)
                    # the kernels' products: x @ A.T (shrink) and h @ B.T (expand), A and B views of vLLM's stack
                    cases[f"lora_shrink_r{rank}"] = lambda v, a=a: torch.mm(v, a.T)
                    h = torch.randn(BATCH, rank, generator=g)
                    cases[f"lora_expand_r{rank}"] = (lambda v, b=b: torch.mm(v, b.T), h)
                # rank 8 served at max_lora_rank 16: A and B padded with zeros, as vLLM stacks a smaller adapter
                a8, b8 = torch.randn(8, k, generator=g), torch.randn(n, 8, generator=g)
                a16, b16 = torch.cat([a8, torch.zeros(8, k)]), torch.cat([b8, torch.zeros(n, 8)], 1)
                h8 = torch.randn(BATCH, 8, generator=g)
                h16 = torch.cat([h8, torch.zeros(BATCH, 8)], 1)
                padded = {
                    "shrink": (torch.mm(x, a8.T), torch.mm(x, a16.T)[:, :8]),
                    "expand": (torch.mm(h8, b8.T), torch.mm(h16, b16.T)),
                }
                for case, fn in cases.items():
                    fn, inputs = fn if isinstance(fn, tuple) else (fn, x)
                    row = {"threads": threads, "model": model, "layer": name, "k": k, "n": n, "op": case}
                    print(json.dumps({**row, **compare(fn, inputs)}), flush=True)
                for case, (r8, r16) in padded.items():
                    row = {"threads": threads, "model": model, "layer": name, "k": k, "n": n}
                    gap = (r8 - r16).abs().max().item()
                    print(
                        json.dumps(
                            {**row, "op": f"lora_{case}_rank8_vs_padded16", "equal": r8.equal(r16), "max_abs_gap": gap}
                        ),
                        flush=True,
                    )


if __name__ == "__main__":
    main()
