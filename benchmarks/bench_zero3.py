"""ZeRO-3 against the plain torch learner, method by method: how far apart two updates, the export, the
checkpoint tensors and the logprobs land, and the address space one ZeRO-3 engine keeps.

    RLVR_DATA_DIR=/work/shared/data .venv/bin/python benchmarks/bench_zero3.py [--methods lora,delora] \
        [--kl 0.1] [--lr 2e-3] [override ...]

One process, one rank, every weight sharded (persistence threshold 0), dropout off, on the pretrained tiny base
of the demo-cpu trial with each method's uniform preset. Validation is bypassed for the ZeRO-3 side (it refuses
the methods this script exists to measure), so this reports what the registry's ``zero3`` flags and the KL
refusal in rlvr/config/validate.py are based on. Gaps are max |torch - ZeRO-3| over all tensors.
"""

from __future__ import annotations

import argparse
import json

from bench_trial import load_average

from rlvr.config.loader import load_trial


def vm_data_kb() -> int:
    """Private writable address space of this process (what a fork must be able to commit)."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmData:"))


def run(name: str, backend: str, overrides: list[str]) -> dict:
    import random

    from rlvr.learner.batch import RolloutBatch
    from rlvr.learner.learner import Learner
    from rlvr.learner.spec import LearnerSpec
    from rlvr.models.loading import resolve_model_path
    from rlvr.peft_methods.weights import from_bytes

    # torch side validated normally; the ZeRO-3 side built from the same config with only the backend changed
    cfg = load_trial(
        "demo-cpu",
        [
            f"method=uniform/{name}",
            "method.dropout=0.0",
            "learner.device=cpu",
            "learner.micro_batch_size=4",
            "learner.backend=torch",
            *overrides,
        ],
    )
    if backend == "deepspeed":
        cfg.learner.backend, cfg.learner.zero_stage, cfg.learner.zero3_persistence_threshold = "deepspeed", 3, 0
    rng = random.Random(0)
    batches = []
    for _ in range(2):
        prompts = [[rng.randrange(3, 120) for _ in range(6)] for _ in range(8)]
        completions = [[rng.randrange(3, 120) for _ in range(rng.randint(2, 8))] for _ in range(8)]
        batches.append(
            RolloutBatch(
                prompts,
                completions,
                [[-4.8] * len(c) for c in completions],
                [1.0 if i % 2 == 0 else -1.0 for i in range(8)],
                [True] * 8,
            )
        )
    before = vm_data_kb()
    learner = Learner(LearnerSpec.from_trial(cfg), resolve_model_path(cfg.model))
    metrics = [learner.train_step(b) for b in batches]
    update = learner.export(2, include_base=True)
    tensors = {f"lora:{k}": v for k, v in from_bytes(update.lora_tensors).items()} if update.lora_tensors else {}
    tensors.update({f"base:{k}": v for k, v in from_bytes(update.base_weights).items()} if update.base_weights else {})
    tensors.update({f"state:{k}": v for k, v in learner.state()["trainable"].items()})
    return {
        "metrics": metrics,
        "tensors": tensors,
        "logprobs": learner.logprobs([5, 6, 7], [8, 9]),
        "vm_data_mb": (vm_data_kb() - before) / 1024,
    }


def main() -> None:
    from rlvr.config.methods import method_names

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default=",".join(n for n in method_names() if n not in ("adalora", "lora_fa")))
    parser.add_argument("--kl", type=float, default=0.0, help="algorithm.kl_coef for both sides")
    parser.add_argument("--lr", type=float, default=None, help="method.lr for every method (default: each preset's)")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    overrides = [f"algorithm.kl_coef={args.kl}", *([f"method.lr={args.lr}"] if args.lr else []), *args.overrides]
    print(f"load {load_average()}")
    print(
        "| method | grad norm rel. gap (max of 2 steps) | tensor gap | logprob gap | KL step 2 torch / ZeRO-3 | "
        "ZeRO-3 VmData (MB) |"
    )
    print("|---|---:|---:|---:|---|---:|")
    for name in args.methods.split(","):
        t, z = run(name, "torch", overrides), run(name, "deepspeed", overrides)
        norm_gap = max(
            abs(a["grad_norm"] - b["grad_norm"]) / max(abs(a["grad_norm"]), 1e-12)
            for a, b in zip(t["metrics"], z["metrics"])
        )
        assert t["tensors"].keys() == z["tensors"].keys(), name
        tensor_gap = max(float((t["tensors"][k].double() - z["tensors"][k].double()).abs().max()) for k in t["tensors"])
        lp_gap = max(abs(a - b) for a, b in zip(t["logprobs"], z["logprobs"]))
        kl = f"{t['metrics'][1].get('kl', 0.0):.3g} / {z['metrics'][1].get('kl', 0.0):.3g}"
        print(
            f"| {name} | {norm_gap:.1e} | {tensor_gap:.1e} | {lp_gap:.1e} | {kl} | {z['vm_data_mb']:.0f} |", flush=True
        )
        print(json.dumps({"method": name, "grad_norm_gap": norm_gap, "tensor_gap": tensor_gap, "logprob_gap": lp_gap}))


if __name__ == "__main__":
    main()
