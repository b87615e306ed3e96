"""rlvr's trial and TRL's GRPOTrainer side by side on the identical GRPO configuration: wall time per step,
completions/s and tokens/s.

    RLVR_DATA_DIR=/work/shared/data .venv/bin/python benchmarks/bench_trl.py [--steps 8] [--trl-threads 1] \
        [--only rlvr|trl] [override ...]

Both sides get the demo-cpu trial (configs/trials/demo-cpu.yaml plus the overrides): the same pretrained tiny
model directory, the same prompts in the same order (the trial's train set, "plain" chat template, which TRL
applies itself to conversational prompts), group size, prompts per step, max completion length, sampling
temperature and top-p, LoRA rank/alpha/dropout/modules, learning rate (constant), AdamW betas, gradient
clipping, DAPO loss with the same clip range, no KL, and the same math-verify scorer (rlvr.rewards.verify.score
with reward.extraction) as the reward. TRL generates with transformers (use_vllm=False: its vLLM modes need a
GPU or a server). rlvr adds what TRL does not do: truncated importance sampling against the engine's
logprobs, the post-sync probe, and the process boundaries of its Ray actors. The first step of each is
warm-up and left out of the medians.
"""

from __future__ import annotations

import argparse
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
        trl_ids = tokenizer.apply_chat_template(p, add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"]
        assert list(trl_ids) == render_prompt(tokenizer, r["problem"], cfg.data.prompt_template, cfg.data.system_prompt)
    return Dataset.from_dict({"prompt": prompts, "answer": [r["answer"] for r in rows]})


class StepClock:
    """Per optimizer step: wall time, and the generate / reward / learn split around the reward call."""

    def __init__(self):
        self.steps: list[dict] = []
        self._begin = 0.0
        self._reward: tuple[float, float] | None = None
        self._tokens = self._completions = 0

    def reward_fn(self, extraction: str):
        from rlvr.rewards.verify import quiet_math_verify, score

        quiet_math_verify()

        def math_verify_reward(prompts, completions, completion_ids, answer, **_):
            start = time.perf_counter()
            texts = [c[-1]["content"] if isinstance(c, list) else c for c in completions]
            rewards = [float(score(t, a, False, extraction)["correct"]) for t, a in zip(texts, answer)]
            self._reward = (start, time.perf_counter())
            self._tokens += sum(len(ids) for ids in completion_ids)
            self._completions += len(completion_ids)
            return rewards

        return math_verify_reward

    def callback(self):
        from transformers import TrainerCallback

        clock = self

        class _Callback(TrainerCallback):
            def on_step_begin(self, args, state, control, **kwargs):
                clock._begin, clock._reward, clock._tokens, clock._completions = time.perf_counter(), None, 0, 0

            def on_step_end(self, args, state, control, **kwargs):
                end = time.perf_counter()
                r0, r1 = clock._reward or (clock._begin, clock._begin)
                clock.steps.append({
                    "t_step": end - clock._begin, "t_generate": r0 - clock._begin, "t_reward": r1 - r0,
                    "t_learn": end - r1, "tokens": clock._tokens, "completions": clock._completions,
                })

        return _Callback()


def run_trl(cfg: TrialConfig, out_dir: str, threads: int) -> dict:
    """TRL GRPOTrainer on the trial's configuration; per-step timings, wall time and TRL's own log."""
    import torch
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM
    from trl import GRPOConfig, GRPOTrainer

    from rlvr.models.loading import load_tokenizer, resolve_model_path

    torch.set_num_threads(threads)
    algo, m = cfg.algorithm, cfg.method
    per_step = algo.prompts_per_step * algo.group_size
    micro = min(cfg.learner.micro_batch_size, per_step)
    if per_step % micro:
        raise ValueError(f"learner.micro_batch_size {micro} must divide the {per_step} completions of a step for TRL")
    path = resolve_model_path(cfg.model)
    tokenizer = load_tokenizer(cfg.model, path)
    args = GRPOConfig(
        output_dir=out_dir, report_to=[], save_strategy="no", logging_steps=1, use_cpu=True, bf16=False,
        seed=cfg.seed, max_steps=cfg.steps, shuffle_dataset=False,
        per_device_train_batch_size=micro, gradient_accumulation_steps=per_step // micro,  # one update per step
        num_generations=algo.group_size, max_completion_length=cfg.rollout.max_new_tokens,
        temperature=cfg.rollout.temperature, top_p=cfg.rollout.top_p, top_k=0,
        learning_rate=m.lr or algo.lr, lr_scheduler_type="constant", warmup_steps=0,
        adam_beta1=algo.betas[0], adam_beta2=algo.betas[1], weight_decay=algo.weight_decay,
        max_grad_norm=algo.max_grad_norm, loss_type=algo.loss, epsilon=algo.clip_eps_low,
        epsilon_high=algo.clip_eps_high, beta=algo.kl_coef, num_iterations=algo.ppo_epochs,
        scale_rewards="group" if algo.scale_rewards else "none", use_vllm=False,
    )
    lora = LoraConfig(r=m.rank, lora_alpha=m.alpha, lora_dropout=m.dropout, target_modules=m.target_modules,
                      task_type="CAUSAL_LM")
    clock = StepClock()
    start = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    trainer = GRPOTrainer(
        model=model, reward_funcs=clock.reward_fn(cfg.reward.extraction), args=args,
        train_dataset=trl_dataset(cfg, tokenizer), processing_class=tokenizer, peft_config=lora,
        callbacks=[clock.callback()],
    )
    built = time.perf_counter()
    trainer.train()
    return {"steps": clock.steps, "start_s": built - start, "wall_s": time.perf_counter() - start,
            "log": trainer.state.log_history}


def trl_summary(steps: list[dict], skip: int = 1) -> dict:
    steady = steps[skip:] or steps
    out = {k: statistics.median(s[k] for s in steady) for k in ("t_step", "t_generate", "t_reward", "t_learn")}
    out["completions_per_s"] = statistics.median(s["completions"] / s["t_step"] for s in steady)
    out["tokens_per_s_step"] = statistics.median(s["tokens"] / s["t_step"] for s in steady)
    out["response_len"] = statistics.median(s["tokens"] / max(s["completions"], 1) for s in steady)
    out["steps_measured"] = len(steady)
    return out


def main() -> None:
    from rlvr.config.loader import load_trial

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--trl-threads", type=int, default=1, help="torch threads of TRL (rlvr's actors use learner.threads)")
    parser.add_argument("--only", choices=("rlvr", "trl"), default=None)
    parser.add_argument("--out", default=None)
    parser.add_argument("overrides", nargs="*", help="key=value overrides for both sides")
    args = parser.parse_args()

    out_dir = args.out or tempfile.mkdtemp(prefix="bench-trl-")
    cfg = load_trial("demo-cpu", [f"steps={args.steps}", f"checkpoint.every_steps={args.steps}", *NO_EVAL, *args.overrides])
    per_step = cfg.algorithm.prompts_per_step * cfg.algorithm.group_size
    rows = {}
    if args.only in (None, "rlvr"):
        load = load_average()
        r = run_trials({"rlvr": cfg}, out_dir)["rlvr"]
        rows["rlvr"] = {**step_summary(r["metrics"], per_step), "start_s": r["start_s"], "wall_s": r["wall_s"],
                        "load": f"{load}->{load_average()}",
                        "reward_mean": [round(m["reward_mean"], 3) for m in r["metrics"]]}
    if args.only in (None, "trl"):
        load = load_average()
        r = run_trl(cfg, f"{out_dir}/trl", args.trl_threads)
        rewards = [round(entry["reward"], 3) for entry in r["log"] if "reward" in entry]
        rows["trl"] = {**trl_summary(r["steps"]), "start_s": r["start_s"], "wall_s": r["wall_s"],
                       "load": f"{load}->{load_average()}", "reward_mean": rewards, "threads": args.trl_threads}
    for name, row in rows.items():
        print(json.dumps({"side": name, **{k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}}))
    print("\n| side | step (s) | generate | reward | learn | sync | completions/s | tokens/s | start (s) | load |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for name, r in rows.items():
        sync = f"{r['t_sync']:.3f}" if "t_sync" in r else "-"
        print(f"| {name} | {r['t_step']:.2f} | {r['t_generate']:.2f} | {r['t_reward']:.3f} | {r['t_learn']:.2f} | {sync} | "
              f"{r['completions_per_s']:.1f} | {r['tokens_per_s_step']:.0f} | {r['start_s']:.1f} | {r['load']} |")
    if len(rows) == 2:
        print(f"\nrlvr / TRL throughput (completions/s): {rows['rlvr']['completions_per_s'] / rows['trl']['completions_per_s']:.2f}x")


if __name__ == "__main__":
    main()
