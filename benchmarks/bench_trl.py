"""rlvr's trial and TRL's GRPOTrainer side by side on the identical GRPO configuration: wall time per step,
completions/s and tokens/s.

    RLVR_DATA_DIR=/work/shared/data PYTHONPATH=. .venv/bin/python benchmarks/bench_trl.py [--trial demo-cpu] \
        [--steps 8] [--rlvr LABEL:override,override ...] [--trl LABEL:knob=v,knob=v ...] [--only rlvr|trl] \
        [override ...]

Several configurations of each side run in one invocation, so their ratio is measured under the same machine
load: every ``--rlvr`` variant adds its overrides to rlvr's trial (default: one plain variant), every ``--trl``
variant sets TRL's own knobs (default: ``threads=1``): ``threads`` (torch threads), ``micro`` (sequences per
forward/backward; gradient accumulation makes up the step), ``gen`` (generation_batch_size: completions per
generate call, a divisor of the step's), ``cb=1`` (transformers' continuous batching, ``generate_batch``), ``gc``
(gradient checkpointing; default: as the trial's learner, off in the demo, where TRL's GRPOConfig defaults to on).

Both sides get the trial (``--trial``, configs/trials/NAME.yaml, plus the trailing overrides): the same pretrained
tiny model directory, the same prompts in the same order (the trial's train set, "plain" chat template, which TRL
applies itself to conversational prompts), group size, prompts per step, max completion length, sampling
temperature and top-p, LoRA rank/alpha/dropout/modules, learning rate (constant), AdamW betas, gradient
clipping, gradient checkpointing, DAPO loss with the same clip range, no KL, and the same math-verify scorer
(rlvr.rewards.verify.score with reward.extraction) as the reward. TRL generates with transformers (use_vllm=False: its
vLLM modes need a GPU or a server). rlvr adds what TRL does not do: truncated importance sampling against the engine's
logprobs, the post-sync probe, and the process boundaries of its Ray actors. The first step of each is warm-up and left
out of the medians. TRL's generate time is its ``_generate_single_turn`` calls, its reward time the scorer's; everything
else in its step (log-probs, backward, optimizer) is learn.
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import tempfile
import time

from bench_trial import NO_EVAL, load_average, run_trials, step_summary

from rlvr.config.schema import TrialConfig


def trl_dataset(cfg: TrialConfig, tokenizer):
    """The trial's first ``steps x prompts_per_step`` prompts in its order, as conversational TRL rows."""
    from datasets import Dataset

    from rlvr.data.prompts import messages, render_prompt
    from rlvr.data.train_sets import load_train_set

    rows = load_train_set(cfg.data, cfg.seed).next_batch(cfg.steps * cfg.algorithm.prompts_per_step)
    prompts = [messages(r["problem"], cfg.data.prompt_template, cfg.data.system_prompt) for r in rows]
    for r, p in zip(rows[:8], prompts):  # TRL renders conversational prompts itself: prove the tokens agree
        trl_ids = tokenizer.apply_chat_template(p, add_generation_prompt=True, tokenize=True, return_dict=True)[
            "input_ids"
        ]
        assert list(trl_ids) == render_prompt(tokenizer, r["problem"], cfg.data.prompt_template, cfg.data.system_prompt)
    return Dataset.from_dict({"prompt": prompts, "answer": [r["answer"] for r in rows]})


class StepClock:
    """Per optimizer step: wall time, and the generate / reward / learn split (sums over the step's calls)."""

    def __init__(self):
        self.steps: list[dict] = []
        self._begin = 0.0
        self._t = {"t_generate": 0.0, "t_reward": 0.0}
        self._tokens = self._completions = 0

    def timed(self, phase: str, fn):
        """``fn`` with its wall time added to ``phase`` of the current step."""

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self._t[phase] += time.perf_counter() - start

        return wrapper

    def reward_fn(self, extraction: str):
        from rlvr.rewards.verify import quiet_math_verify, score

        quiet_math_verify()

        def math_verify_reward(prompts, completions, completion_ids, answer, **_):
            texts = [c[-1]["content"] if isinstance(c, list) else c for c in completions]
            self._tokens += sum(len(ids) for ids in completion_ids)
            self._completions += len(completion_ids)
            return [float(score(t, a, False, extraction)["correct"]) for t, a in zip(texts, answer)]

        return self.timed("t_reward", math_verify_reward)

    def callback(self):
        from transformers import TrainerCallback

        clock = self

        class _Callback(TrainerCallback):
            def on_step_begin(self, args, state, control, **kwargs):
                clock._begin, clock._tokens, clock._completions = time.perf_counter(), 0, 0
                clock._t = {"t_generate": 0.0, "t_reward": 0.0}

            def on_step_end(self, args, state, control, **kwargs):
                t_step = time.perf_counter() - clock._begin
                clock.steps.append(
                    {
                        "t_step": t_step,
                        **clock._t,
                        "t_learn": t_step - clock._t["t_generate"] - clock._t["t_reward"],
                        "tokens": clock._tokens,
                        "completions": clock._completions,
                    }
                )

        return _Callback()


# gc None: gradient checkpointing as the trial's learner.gradient_checkpointing (TRL's own default is on)
TRL_KNOBS = {"threads": 1, "micro": None, "gen": None, "cb": 0, "gc": None}


def run_trl(cfg: TrialConfig, out_dir: str, knobs: dict) -> dict:
    """TRL GRPOTrainer on the trial's configuration with TRL's own ``knobs`` (TRL_KNOBS); per-step timings, wall
    time and TRL's own log."""
    import torch
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM
    from trl import GRPOConfig, GRPOTrainer

    from rlvr.models.loading import load_tokenizer, resolve_model_path

    knobs = {**TRL_KNOBS, **knobs}
    torch.set_num_threads(knobs["threads"])
    algo, m = cfg.algorithm, cfg.method
    per_step = algo.prompts_per_step * algo.group_size
    micro = min(knobs["micro"] or cfg.learner.micro_batch_size, per_step)
    gen = knobs["gen"] or per_step
    if per_step % micro or per_step % gen or gen % micro or gen % algo.group_size:
        raise ValueError(
            f"TRL: micro {micro} and gen {gen} must divide the {per_step} completions of a step, micro must "
            f"divide gen, and gen must hold whole groups of {algo.group_size}"
        )
    path = resolve_model_path(cfg.model)
    tokenizer = load_tokenizer(cfg.model, path)
    args = GRPOConfig(
        output_dir=out_dir,
        report_to=[],
        save_strategy="no",
        logging_steps=1,
        use_cpu=True,
        bf16=False,
        seed=cfg.seed,
        max_steps=cfg.steps,
        shuffle_dataset=False,
        per_device_train_batch_size=micro,
        gradient_accumulation_steps=per_step // micro,  # one update per step
        generation_batch_size=gen,
        use_transformers_continuous_batching=bool(knobs["cb"]),
        gradient_checkpointing=cfg.learner.gradient_checkpointing if knobs["gc"] is None else bool(knobs["gc"]),
        num_generations=algo.group_size,
        max_completion_length=cfg.rollout.max_new_tokens,
        temperature=cfg.rollout.temperature,
        top_p=cfg.rollout.top_p,
        top_k=0,
        learning_rate=m.lr or algo.lr,
        lr_scheduler_type="constant",
        warmup_steps=0,
        adam_beta1=algo.betas[0],
        adam_beta2=algo.betas[1],
        weight_decay=algo.weight_decay,
        max_grad_norm=algo.max_grad_norm,
        loss_type=algo.loss,
        epsilon=algo.clip_eps_low,
        epsilon_high=algo.clip_eps_high,
        beta=algo.kl_coef,
        num_iterations=algo.ppo_epochs,
        scale_rewards="group" if algo.scale_rewards else "none",
        use_vllm=False,
    )
    lora = LoraConfig(
        r=m.rank, lora_alpha=m.alpha, lora_dropout=m.dropout, target_modules=m.target_modules, task_type="CAUSAL_LM"
    )
    clock = StepClock()
    start = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=clock.reward_fn(cfg.reward.extraction),
        args=args,
        train_dataset=trl_dataset(cfg, tokenizer),
        processing_class=tokenizer,
        peft_config=lora,
        callbacks=[clock.callback()],
    )
    trainer._generate_single_turn = clock.timed("t_generate", trainer._generate_single_turn)
    built = time.perf_counter()
    trainer.train()
    return {
        "steps": clock.steps,
        "start_s": built - start,
        "wall_s": time.perf_counter() - start,
        "log": trainer.state.log_history,
    }


def trl_summary(steps: list[dict], skip: int = 1) -> dict:
    steady = steps[skip:] or steps
    out = {k: statistics.median(s[k] for s in steady) for k in ("t_step", "t_generate", "t_reward", "t_learn")}
    out["completions_per_s"] = statistics.median(s["completions"] / s["t_step"] for s in steady)
    out["tokens_per_s_step"] = statistics.median(s["tokens"] / s["t_step"] for s in steady)
    out["response_len"] = statistics.median(s["tokens"] / max(s["completions"], 1) for s in steady)
    out["steps_measured"] = len(steady)
    return out


def variants(specs: list[str] | None, default: str) -> dict[str, list[str]]:
    """``LABEL:a=1,b=2`` -> {LABEL: ["a=1", "b=2"]}, in order (a bare LABEL has no settings)."""
    out = {}
    for spec in specs or [default]:
        label, _, settings = spec.partition(":")
        out[label] = [x for x in settings.split(",") if x]
    return out


def trl_knobs(settings: list[str]) -> dict:
    knobs = dict(kv.split("=", 1) for kv in settings)
    unknown = sorted(set(knobs) - set(TRL_KNOBS))
    if unknown:
        raise SystemExit(f"--trl: unknown knob(s) {unknown}; allowed: {', '.join(TRL_KNOBS)}")
    return {k: int(v) for k, v in knobs.items()}


def print_row(name: str, row: dict) -> None:
    print(
        json.dumps({"side": name, **{k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}}),
        flush=True,
    )


def main() -> None:
    from rlvr.config.loader import load_trial

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trial", default="demo-cpu", help="configs/trials/NAME.yaml, both sides")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--rlvr", action="append", help="LABEL:override,override (repeatable): an rlvr variant")
    parser.add_argument(
        "--trl", action="append", help="LABEL:knob=v,knob=v (repeatable): a TRL variant; knobs " + ", ".join(TRL_KNOBS)
    )
    parser.add_argument("--only", choices=("rlvr", "trl"), default=None)
    parser.add_argument("--out", default=None)
    parser.add_argument("overrides", nargs="*", help="key=value overrides for both sides")
    args = parser.parse_args()

    out_dir = args.out or tempfile.mkdtemp(prefix="bench-trl-")
    base = [f"steps={args.steps}", f"checkpoint.every_steps={args.steps}", *NO_EVAL, *args.overrides]
    cfg = load_trial(args.trial, base)
    per_step = cfg.algorithm.prompts_per_step * cfg.algorithm.group_size
    rows = {}
    if args.only in (None, "rlvr"):
        trials = {
            label: load_trial(args.trial, [*base, *extra]) for label, extra in variants(args.rlvr, "rlvr").items()
        }
        for label, r in run_trials(trials, out_dir).items():
            rows[f"rlvr {label}"] = {
                **step_summary(r["metrics"], per_step),
                "start_s": r["start_s"],
                "wall_s": r["wall_s"],
                "load": r["load"],
                "reward_mean": [round(m["reward_mean"], 3) for m in r["metrics"]],
            }
            print_row(f"rlvr {label}", rows[f"rlvr {label}"])
    if args.only in (None, "trl"):
        for label, settings in variants(args.trl, "trl:threads=1").items():
            load = load_average()
            r = run_trl(cfg, f"{out_dir}/trl-{label}", trl_knobs(settings))
            rewards = [round(entry["reward"], 3) for entry in r["log"] if "reward" in entry]
            rows[f"trl {label}"] = {
                **trl_summary(r["steps"]),
                "start_s": r["start_s"],
                "wall_s": r["wall_s"],
                "load": f"{load}->{load_average()}",
                "reward_mean": rewards,
            }
            print_row(f"trl {label}", rows[f"trl {label}"])  # as soon as it is done: a long run may be cut short
    print(
        "\n| side | step (s) | generate | reward | learn | sync | completions/s | tokens/s | length | start (s) | "
        "load |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for name, r in rows.items():
        sync = f"{r['t_sync']:.3f}" if "t_sync" in r else "-"
        print(
            f"| {name} | {r['t_step']:.2f} | {r['t_generate']:.2f} | {r['t_reward']:.3f} | {r['t_learn']:.2f} | "
            f"{sync} | "
            f"{r['completions_per_s']:.1f} | {r['tokens_per_s_step']:.0f} | {r['response_len']:.0f} | "
            f"{r['start_s']:.1f} | "
            f"{r['load']} |"
        )
    best = {
        side: max((r["completions_per_s"], name) for name, r in rows.items() if name.startswith(side))
        for side in ("rlvr", "trl")
        if any(name.startswith(side) for name in rows)
    }
    if len(best) == 2:
        print(
            f"\nbest rlvr ({best['rlvr'][1]}) / best TRL ({best['trl'][1]}), completions/s: "
            f"{best['rlvr'][0] / best['trl'][0]:.2f}x"
        )


if __name__ == "__main__":
    main()
