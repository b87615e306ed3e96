"""How large the SVD-initialised adapters start on the demo's tiny base: PiSSA (top-r triplets) and MiLoRA
(bottom-r), as the demo sweep builds them (uniform presets, rank 8, alpha 16, all seven linear modules).

Run: .venv/bin/python benchmarks/bench_svd_init.py [--rank 8] [--alpha 16]
Per adapted module: sigma_r / sigma_1 of the pretrained W (how flat its spectrum is), the share of ||W||^2 the
initial adapter s B0 A0 takes out of W, and the norms of A0 and B0 against LoRA's (B0 = 0). Means over modules.
Then greedy held-out accuracy of the step-0 policy served as trained (residual base + adapter = W) and as the
study's public code evaluated these methods: the adapter merged onto the ORIGINAL base (W + s B0 A0).
"""

from __future__ import annotations

import argparse
import statistics

import torch

from rlvr.config.loader import load_trial
from rlvr.config.schema import MethodConfig
from rlvr.data.synthetic import generate
from rlvr.models.loading import load_model, load_tokenizer, resolve_model_path
from rlvr.models.pretrain import accuracy
from rlvr.peft_methods.policy import build_policy
from rlvr.peft_methods.weights import lora_factors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--alpha", type=float, default=16.0)
    args = parser.parse_args()
    torch.manual_seed(0)
    cfg = load_trial("demo-cpu", [])
    path = resolve_model_path(cfg.model)
    tokenizer = load_tokenizer(cfg.model, path)
    problems = generate("addition", [1], 256, 0, split="test")
    print(
        f"| method | sigma_{args.rank}/sigma_1 of W | ||s B0 A0||^2 / ||W||^2 | ||A0||_F | ||B0||_F | "
        "greedy acc. as trained | merged onto the original base |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name in ("lora", "pissa", "milora"):
        method = MethodConfig(
            name=name, rank=args.rank, alpha=args.alpha, dropout=0.0, target_modules=cfg.method.target_modules
        )
        policy = build_policy(load_model(cfg.model, path), method, total_steps=cfg.steps)
        ratio, share, a_norm, b_norm, doubled = [], [], [], [], {}
        for module, layer in policy.layers.items():
            w = policy.pristine.get(f"{module}.weight", layer.get_base_layer().weight.detach().float())
            s = torch.linalg.svdvals(w)
            a, b = lora_factors(layer)
            delta = layer.scaling["default"] * (b @ a)
            doubled[f"{module}.weight"] = w + delta
            ratio.append(float(s[args.rank - 1] / s[0]))
            share.append(float(delta.square().sum() / w.square().sum()))
            a_norm.append(float(a.norm()))
            b_norm.append(float(b.norm()))
        served, wrong = load_model(cfg.model, path), load_model(cfg.model, path)
        served.load_state_dict(policy.effective_weights(), strict=False)
        wrong.load_state_dict(doubled, strict=False)
        print(
            f"| {name} | {statistics.fmean(ratio):.3f} | {statistics.fmean(share):.4f} | "
            f"{statistics.fmean(a_norm):.2f} | {statistics.fmean(b_norm):.2f} | "
            f"{accuracy(served, tokenizer, problems, cfg.model.tiny):.3f} | "
            f"{accuracy(wrong, tokenizer, problems, cfg.model.tiny):.3f} |"
        )


if __name__ == "__main__":
    main()
