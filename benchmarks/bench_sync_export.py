"""The merged route's per-step export (what ``BucketedSync`` has the learner run each sync) timed on a tiny Qwen2,
with each export written out so two versions of the code can be compared tensor for tensor.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_sync_export.py OUT_DIR [--methods full dora ia3] \
        [--dtype float32] [--hidden 128 --layers 4] [--repeats 5]
    PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_sync_export.py --compare BEFORE_DIR AFTER_DIR

Each method is built on the same seeded model, takes one real AdamW step (next-token loss on seeded random ids),
then ``export(version=1, route="merged")`` is timed (median of --repeats; one thread). OUT_DIR gets
``base.safetensors`` (the untrained model) and ``METHOD.safetensors`` (the export's tensors); one JSON line per
method. --compare reports, per method, whether the engine's weights after loading each export (the base with the
export's tensors written over it) are bit-identical, and which tensors only one side sent.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

# The tiny model's shape (configs/models/tiny.yaml: hidden 128, intermediate 3 x 128, 4 layers) by default.
HIDDEN, LAYERS = 128, 4
OPTIONS = {"ia3": {"feedforward_modules": ["down_proj"]}}


def trained_policy(name: str, dtype: str, hidden: int, layers: int):
    import torch

    from rlvr.config.methods import method_spec
    from rlvr.config.schema import ALL_LINEAR, MethodConfig, TinyModelConfig
    from rlvr.models.tiny import VOCAB_SIZE, build_model
    from rlvr.peft_methods.policy import build_policy

    shape = TinyModelConfig(
        hidden_size=hidden, intermediate_size=3 * hidden, num_layers=layers, num_heads=4, num_kv_heads=2
    )
    model = build_model(shape).to(getattr(torch, dtype))
    base = {n: t.detach().clone() for n, t in model.state_dict().items()}
    torch.manual_seed(0)  # peft initialises adapters from the global generator
    spec = method_spec(name)
    cfg = MethodConfig(
        name=name,
        rank=8 if spec.has_rank else None,
        alpha=16 if spec.has_rank else None,
        dropout=0.0,
        target_modules=None if spec.is_full_finetuning else ALL_LINEAR,
        options=OPTIONS.get(name, {}),
    )
    policy = build_policy(model, cfg, total_steps=10)
    opt = policy.make_optimizer(lr=1e-3, weight_decay=0.0, betas=(0.9, 0.999))
    ids = torch.randint(0, VOCAB_SIZE, (4, 32), generator=torch.Generator().manual_seed(1))
    policy.model.train()
    policy.model(input_ids=ids, labels=ids).loss.backward()
    opt.step()
    return policy, base


def run(args) -> None:
    import torch
    from safetensors.torch import save_file

    from rlvr.peft_methods.weights import from_bytes

    torch.set_num_threads(1)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name in args.methods:
        policy, base = trained_policy(name, args.dtype, args.hidden, args.layers)
        save_file(base, str(out / "base.safetensors"))
        seconds = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            update = policy.export(1, include_base=False, route="merged")
            seconds.append(time.perf_counter() - start)
        sent = from_bytes(update.base_weights)
        save_file(sent, str(out / f"{name}.safetensors"))
        row = {
            "method": name,
            "dtype": args.dtype,
            "params": sum(t.numel() for t in base.values()),
            "tensors_sent": len(sent),
            "mb_sent": round(len(update.base_weights) / 2**20, 2),
            "export_ms": round(1000 * statistics.median(seconds), 2),
        }
        print(json.dumps(row), flush=True)


def compare(before_dir: str, after_dir: str) -> None:
    import torch
    from safetensors.torch import load_file

    base = load_file(str(Path(before_dir) / "base.safetensors"))
    assert all(torch.equal(base[k], v) for k, v in load_file(str(Path(after_dir) / "base.safetensors")).items())
    for path in sorted(Path(before_dir).glob("*.safetensors")):
        if path.name == "base.safetensors":
            continue
        a, b = load_file(str(path)), load_file(str(Path(after_dir) / path.name))
        served_a, served_b = {**base, **a}, {**base, **b}
        row = {
            "method": path.stem,
            "engine_weights_identical": served_a.keys() == served_b.keys()
            and all(served_a[k].dtype == served_b[k].dtype and torch.equal(served_a[k], served_b[k]) for k in served_a),
            "sent_by_both_identical": all(torch.equal(a[k], b[k]) for k in a.keys() & b.keys()),
            "only_before": sorted(a.keys() - b.keys()),
            "only_after": sorted(b.keys() - a.keys()),
        }
        print(json.dumps(row), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out_dir", nargs="?")
    ap.add_argument("--methods", nargs="+", default=["full", "dora", "ia3"])
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    ap.add_argument("--hidden", type=int, default=HIDDEN)
    ap.add_argument("--layers", type=int, default=LAYERS)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--compare", nargs=2, metavar=("BEFORE_DIR", "AFTER_DIR"))
    args = ap.parse_args()
    if args.compare:
        compare(*args.compare)
    elif args.out_dir:
        run(args)
    else:
        ap.error("give OUT_DIR, or --compare BEFORE_DIR AFTER_DIR")


if __name__ == "__main__":
    main()
