"""The post-sync probe inside a real trial, against the exact (fp32) policy: whose rounding moves the slope.

    RAY_AUTH_MODE=disabled PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_probe_trial.py \\
        --trial rehearsal-cpu --set method=uniform/lora method.rank=8 --steps 2 --out trial-lora.jsonl

Runs the trial (private local Ray, the slope limits lifted so that it runs to the end), records every sync's probe
scores (learner and engine, one JSON line per sync, the format ``bench_probe.py --report`` replays) and the
adapter each sync sent; then scores the probe with HF transformers + peft from those adapters in fp32, and prints
per sync how far each side's change since v0 moved, its noise against fp32 and the slope of the engine's change on
the learner's and on fp32's (untrimmed, as least squares sees them). Native (adapter on the pristine base) only.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile


def _rms(xs):
    return math.sqrt(sum(x * x for x in xs) / len(xs))


def _ols(y, x):
    return sum(a * b for a, b in zip(y, x)) / sum(b * b for b in x)


def fp32_scores(cfg, updates) -> list[list[float]]:
    import torch
    from peft import LoraConfig, get_peft_model, set_peft_model_state_dict
    from safetensors.torch import load
    from transformers import AutoModelForCausalLM

    from rlvr.models.loading import load_tokenizer, resolve_model_path
    from rlvr.sync.probe import model_logprobs, probe_sequence

    path = resolve_model_path(cfg.model)
    prompt, completion = probe_sequence(load_tokenizer(cfg.model, path), cfg.rollout.probe_tokens)
    out = []
    for u in updates:
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
        if u.has_adapter:
            keys = ("r", "lora_alpha", "use_rslora", "use_dora", "target_modules", "lora_dropout", "bias")
            model = get_peft_model(model, LoraConfig(**{k: v for k, v in u.lora_config.items() if k in keys}))
            set_peft_model_state_dict(model, {k: v.float() for k, v in load(u.lora_tensors).items()})
        out.append(model_logprobs(model.eval(), prompt, completion))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trial", default="rehearsal-cpu")
    ap.add_argument("--set", nargs="*", default=[])
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    from rlvr.config.loader import load_trial
    from rlvr.config.trial_plan import TrialPlan
    from rlvr.sync import probe
    from rlvr.trial import actors
    from rlvr.trial.local_ray import init_local_ray
    from rlvr.trial.runner import run_trial

    cfg = load_trial(args.trial, [*args.set, f"steps={args.steps}", "rollout.probe_slope_tolerance=100"])
    plan = TrialPlan.from_config(cfg)
    rows, updates = [], []
    check, load_policy = probe.SyncProbe.check, actors.EngineSet.load_policy

    def recording_check(self, engine_scores, learner, version):
        rows.append(
            {
                "dtype": cfg.model.dtype,
                "method": f"{cfg.method.name} (trial)",
                "lr": plan.lr,
                "route": plan.route,
                "version": version,
                "learner": learner,
                "right": engine_scores[0],
                "bugs": {},
            }
        )
        return check(self, engine_scores, learner, version)

    def recording_load(self, update):
        updates.append(update)
        return load_policy(self, update)

    probe.SyncProbe.check, actors.EngineSet.load_policy = recording_check, recording_load
    init_local_ray(num_cpus=8)
    run_trial(cfg, tempfile.mkdtemp())
    exact = fp32_scores(cfg, updates)
    with open(args.out, "w") as f:
        for row, fp32 in zip(rows, exact):
            f.write(json.dumps({**row, "fp32": fp32}) + "\n")
    first = rows[0]
    for row, fp32 in list(zip(rows, exact))[1:]:
        change = {
            k: [a - b for a, b in zip(v, v0)]
            for k, v, v0 in (
                ("learner", row["learner"], first["learner"]),
                ("engine", row["right"], first["right"]),
                ("fp32", fp32, exact[0]),
            )
        }
        noise = {k: _rms([a - b for a, b in zip(change[k], change["fp32"])]) for k in ("learner", "engine")}
        worst = max(range(len(fp32)), key=lambda i: abs(change["learner"][i] - change["fp32"][i]))
        print(
            f"v{row['version']}: moved rms learner {_rms(change['learner']):.3f} engine {_rms(change['engine']):.3f}"
            f" fp32 {_rms(change['fp32']):.3f}; noise vs fp32 learner {noise['learner']:.3f} engine "
            f"{noise['engine']:.3f}; engine slope on learner {_ols(change['engine'], change['learner']):.3f}, on "
            f"fp32 {_ols(change['engine'], change['fp32']):.3f}; learner's worst token {worst}: "
            f"{first['learner'][worst]:.2f} -> {row['learner'][worst]:.2f} (fp32 {exact[0][worst]:.2f} -> "
            f"{fp32[worst]:.2f})"
        )


if __name__ == "__main__":
    main()
