"""Build and export time of every registry method on a tiny model (uniform presets: all seven modules, rank 16).

Run: .venv/bin/python benchmarks/bench_peft.py [--hidden 128] [--layers 4] [--repeats 5]
Build = build_policy on a fresh model (adapter + pristine copy + verification). Trainable tensors are then
perturbed so every export carries a real update. Export = the method's own route at version 1 (no base);
first = version 0 (with the residual base where there is one); merged = the merged route, which every method
can take. Medians over --repeats, one torch thread.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from rlvr.config.loader import build, config_root, load_raw
from rlvr.config.methods import method_names
from rlvr.config.schema import MethodConfig, TinyModelConfig
from rlvr.models.tiny import build_model
from rlvr.peft_methods.policy import build_policy


def _median_s(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _perturb(policy) -> None:
    with torch.no_grad():
        for p in policy.model.parameters():
            if p.requires_grad:
                p.add_(0.01 * torch.randn_like(p))


def _kib(update) -> float:
    return sum(len(b or b"") for b in (update.lora_tensors, update.base_weights)) / 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(1)
    tiny = TinyModelConfig(
        hidden_size=args.hidden, intermediate_size=3 * args.hidden, num_layers=args.layers, pretrain_steps=0
    )
    n_params = sum(p.numel() for p in build_model(tiny).parameters())
    print(
        f"tiny Qwen2: hidden {args.hidden}, {args.layers} layers, {n_params:,} params; uniform presets; median of "
        f"{args.repeats}"
    )
    print(
        "| method | route | trainable | build (ms) | export (ms) | update (KiB) | first update (KiB) | export merged "
        "(ms) |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for name in method_names():
        path = config_root() / "methods" / "uniform" / f"{name}.yaml"
        cfg = build(MethodConfig, load_raw(path), str(path))
        if name == "road":  # RoAd's default group of 64 does not divide the tiny k/v width
            cfg = cfg.model_copy(update={"options": {"group_size": 16}})
        models = [build_model(tiny) for _ in range(args.repeats)]
        build_s = _median_s(
            lambda models=models, cfg=cfg: build_policy(models.pop(), cfg, total_steps=100), args.repeats
        )
        policy = build_policy(build_model(tiny), cfg, total_steps=100)
        _perturb(policy)
        size, first = _kib(policy.export(1, include_base=False)), _kib(policy.export(0, include_base=True))
        own_s = _median_s(lambda p=policy: p.export(1, include_base=False), args.repeats)
        merged_s = _median_s(lambda p=policy: p.export(1, include_base=False, route="merged"), args.repeats)
        print(
            f"| {name} | {policy.info.route} | {policy.record()['trainable_params']:,} | {1e3 * build_s:.1f} | "
            f"{1e3 * own_s:.1f} | {size:.0f} | {first:.0f} | {1e3 * merged_s:.1f} |"
        )


if __name__ == "__main__":
    main()
