"""K LoRA tenants' updates in ONE forward/backward against K updates one after another (issue 24's learner lever).

The demo trial's real shapes: configs/trials/demo-cpu.yaml (the tiny pretrained Qwen2 from ~/.cache/rlvr, 16
prompts x 8 samples of synthetic addition with the plain template, completions up to max_new_tokens = 16, the
learner's micro-batch size 64, one torch thread, fp32), with the demo sweep's rank-8 alpha-16 presets of four
LoRA-family methods: lora, rslora, lora_plus, lora_fa (plain peft LoraLayers on the unmodified shared base).
Each tenant has its own seed (42 + k) and its own rollout batch (random completions, seeded per tenant and step).

``sequential`` is what a tenant pool does today: ``TenantLearners.call(t, "train_step", batch)`` for each tenant.
``joint`` is the lever, written here (peft's mixed-batch ``adapter_names`` path refuses training): each
micro-batch index i of every tenant is collated exactly as the tenant's solo learner collates it, the K tensors
are right-padded to the widest and concatenated, and ONE forward runs the shared frozen base (a view of
``TenantLearners.base``) with a forward hook on every adapted Linear that adds, per tenant's row segment, that
tenant's own LoraLayer delta ``lora_B(lora_A(lora_dropout(x))) * scaling`` on the segment's own width (so its
dropout mask has its solo shape) with the tenant's RNG state swapped in (its own dropout stream). Each tenant's
log-probs, loss and metrics come from its rows alone, exactly as ``Learner._update`` computes them; the K losses
are summed for ONE backward (their parameters are disjoint, so each gets its own gradient) and every tenant then
steps its own optimizer and schedule.

Reported: the learn phase's time (median of --repeats rounds, the two paths alternated) and the gap against the
sequential path after each of --steps steps (max |diff| of metrics, clipped gradients, updated weights).
Found (benchmarks/RESULTS.md): bitwise equal, and not faster on this CPU (the demo's learner is compute-bound), so
the lever is not wired; ``joint_train_step`` is a prototype of ``Learner._update``'s on-policy case, for measuring.

    PYTHONPATH=$PWD nice -n 10 python benchmarks/bench_tenant_forward.py --repeats 8 --steps 5 --profile
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import time
from contextlib import contextmanager

import torch
import torch.nn.functional as F

from rlvr.algorithms.losses import loss_normaliser, policy_loss
from rlvr.learner.batch import RolloutBatch, collate, micro_batches
from rlvr.learner.logprobs import selected_logprobs
from rlvr.learner.tenants import TenantLearners, aliased_copy
from rlvr.peft_methods.build import ADAPTER

METHODS = ("lora", "rslora", "lora_plus", "lora_fa")


def demo_specs(methods=METHODS):
    from rlvr.config.loader import load_trial
    from rlvr.learner.spec import LearnerSpec
    from rlvr.models.loading import resolve_model_path

    cfgs = [
        load_trial("demo-cpu", [f"method=uniform/{m}", "method.rank=8", "method.alpha=16", f"seed={42 + k}"])
        for k, m in enumerate(methods)
    ]
    return [LearnerSpec.from_trial(c) for c in cfgs], resolve_model_path(cfgs[0].model), cfgs[0]


def demo_batch(prompts: list[list[int]], cfg, seed: int) -> RolloutBatch:
    """A rollout batch of the demo's shape: each prompt ``group_size`` times, completions of 3..max_new_tokens."""
    rng = random.Random(seed)
    p, c = [], []
    for prompt in prompts:
        for _ in range(cfg.algorithm.group_size):
            p.append(list(prompt))
            c.append([rng.randrange(3, 40) for _ in range(rng.randint(3, cfg.rollout.max_new_tokens))])
    adv = [rng.gauss(0.0, 1.0) for _ in p]
    return RolloutBatch(p, c, [[-rng.uniform(0.1, 3.0) for _ in x] for x in c], adv, [True] * len(p))


def demo_prompts(cfg, path: str, seed: int) -> list[list[int]]:
    from rlvr.data.prompts import render_prompt
    from rlvr.data.synthetic import generate
    from rlvr.models.loading import load_tokenizer

    tok = load_tokenizer(cfg.model, path)
    problems = generate("addition", cfg.data.levels, cfg.algorithm.prompts_per_step, seed)
    return [render_prompt(tok, q.problem, cfg.data.prompt_template) for q in problems]


class SegmentedLoRA:
    """Forward hooks on a shared frozen base that add each row segment's own tenant's LoRA delta."""

    def __init__(self, shared: torch.nn.Module, tenants: dict[int, object], rng: dict[int, torch.Tensor]):
        self.shared, self.rng = shared, rng
        self.layers = {t: learner.policy.layers for t, learner in tenants.items()}
        names = {frozenset(layers) for layers in self.layers.values()}
        if len(names) != 1:
            raise ValueError("joint forward: the tenants adapt different modules")
        self.segments: list[tuple[int, int, int]] = []  # (tenant, rows, width) in row order
        self.handles = [
            shared.get_submodule(name).register_forward_hook(self._hook(name)) for name in next(iter(names))
        ]

    def _hook(self, name: str):
        def add_deltas(module, args, out):
            x, deltas = args[0], []
            width = x.shape[1]
            # split (its backward is one cat), not slices (each slice's backward is a zero tensor of x's size)
            for (tenant, _, w), xk in zip(self.segments, x.split([rows for _, rows, _ in self.segments])):
                layer = self.layers[tenant][name]
                torch.set_rng_state(self.rng[tenant])
                dropped = layer.lora_dropout[ADAPTER](xk if w == width else xk[:, :w].contiguous())
                self.rng[tenant] = torch.get_rng_state()
                d = layer.lora_B[ADAPTER](layer.lora_A[ADAPTER](dropped)) * layer.scaling[ADAPTER]
                deltas.append(d if w == width else F.pad(d, (0, 0, 0, width - w)))
            return out + torch.cat(deltas)

        return add_deltas

    def close(self) -> None:
        for h in self.handles:
            h.remove()


@contextmanager
def _outside_rng():
    state = torch.get_rng_state()
    try:
        yield
    finally:
        torch.set_rng_state(state)


def _plan(learner, batch: RolloutBatch) -> list[tuple[list[dict], float]]:
    """Per mini-batch: the tenant's collated micro-batches and loss normaliser, exactly as ``Learner._update``."""
    algo, budget = learner.spec.algorithm, learner.spec.micro_batching
    plan = []
    for mini in batch.chunks(algo.mini_batches):
        micros = [collate(m, learner.device) for m in micro_batches(mini, budget.sequences, budget.tokens)]
        plan.append(
            (micros, sum(loss_normaliser(algo.loss, m["loss_mask"], learner.spec.dr_grpo_norm) for m in micros))
        )
    return plan


def _padded_cat(ts: list[dict], key: str, width: int) -> torch.Tensor:
    return torch.cat([F.pad(x[key], (0, width - x[key].shape[1])) for x in ts])


class _Tally:
    """One tenant's step metrics, summed as ``Learner._update`` sums them."""

    def __init__(self):
        self.sums, self.tokens, self.losses, self.norms = {}, 0, [], []
        self.ratio_max, self.ratio_min = -math.inf, math.inf

    def add(self, out) -> None:
        self.tokens += out.tokens
        for k, v in out.metrics.items():
            self.sums[k] = self.sums.get(k, 0.0) + v * out.tokens
        self.ratio_max = max(self.ratio_max, out.metrics["ratio_max"])
        self.ratio_min = min(self.ratio_min, out.metrics["ratio_min"])

    def metrics(self, learner, lr: float) -> dict[str, float]:
        m = {k: v / max(self.tokens, 1) for k, v in self.sums.items()}
        m.update(
            loss=sum(self.losses) / len(self.losses),
            grad_norm=sum(self.norms) / len(self.norms),
            ratio_max=self.ratio_max,
            ratio_min=self.ratio_min,
            lr=lr,
            tokens=float(self.tokens // learner.spec.algorithm.ppo_epochs),
            step=float(learner.step),
        )
        return m


def _joint_losses(shared, hooks: SegmentedLoRA, tenants: dict, ts: dict[int, dict], norms: dict[int, float]):
    """One forward of every tenant's micro-batch ``ts[t]``; each tenant's loss output from its own rows."""
    width = max(x["input_ids"].shape[1] for x in ts.values())
    hooks.segments = [(t, *x["input_ids"].shape) for t, x in ts.items()]
    out = shared(
        input_ids=_padded_cat(list(ts.values()), "input_ids", width),
        attention_mask=_padded_cat(list(ts.values()), "attention_mask", width),
        output_hidden_states=True,
        logits_to_keep=1,
        use_cache=False,
    )
    hidden = out.hidden_states[-1].split([x["input_ids"].shape[0] for x in ts.values()])
    head = shared.get_output_embeddings()
    outs = {}
    for (t, x), h in zip(ts.items(), hidden):
        spec = tenants[t].spec
        where = x["loss_mask"] > 0
        h = h[:, : x["input_ids"].shape[1] - 1]  # the tenant's own width: its solo grid
        lp, ent = selected_logprobs(
            head, h[where], x["targets"][where], spec.temperature, spec.learner.logits_chunk_tokens
        )
        logp = torch.zeros(where.shape, dtype=torch.float32).masked_scatter(where, lp)
        entropy = torch.zeros_like(logp)
        entropy[where] = ent
        outs[t] = policy_loss(
            logp,
            logp.detach(),  # on-policy (one epoch, one mini-batch): joint_train_step refuses the rest
            x["engine_logprobs"],
            x["advantages"],
            x["loss_mask"],
            spec.algorithm,
            max(norms[t], 1e-8),
            entropy=entropy,
        )
    return outs


def joint_train_step(pool: TenantLearners, shared: torch.nn.Module, batches: dict[int, RolloutBatch]) -> dict:
    """One update of every tenant in ``batches``, its micro-batches of index i in one forward/backward."""
    tenants = {t: pool.learner(t) for t in batches}
    for learner in tenants.values():
        algo = learner.spec.algorithm
        if (algo.ppo_epochs, algo.mini_batches, algo.kl_coef) != (1, 1, 0.0):
            raise ValueError("joint forward (this benchmark): on-policy tenants only, without a KL term")
    plans = {t: _plan(learner, batches[t])[0] for t, learner in tenants.items()}
    if len({len(micros) for micros, _ in plans.values()}) != 1:
        raise ValueError("joint forward: tenants' batches cut into different micro-batch counts")
    entries = pool._tenants  # the benchmark reads and writes the tenants' RNG states (a wiring would own them)
    rng = {t: entries[t].rng[0] for t in tenants}
    hooks = SegmentedLoRA(shared, tenants, rng)
    tally = {t: _Tally() for t in tenants}
    step_loss = dict.fromkeys(tenants, 0.0)
    try:
        with _outside_rng():
            for learner in tenants.values():
                learner.policy.model.train()
            for i in range(len(next(iter(plans.values()))[0])):
                ts = {t: micros[i] for t, (micros, _) in plans.items()}
                outs = _joint_losses(shared, hooks, tenants, ts, {t: norm for t, (_, norm) in plans.items()})
                sum(o.loss for o in outs.values()).backward()  # disjoint parameters: each its own gradient
                for t, o in outs.items():
                    step_loss[t] += o.loss.item()
                    tally[t].add(o)
    finally:
        hooks.close()
        for t in tenants:
            entries[t].rng = (rng[t], None)
    metrics = {}
    for t, learner in tenants.items():
        learner.optimizer_steps += 1
        n = learner.optimizer_steps
        tally[t].norms.append(learner.backend.step(lambda lr=learner, n=n: lr.policy.after_optimizer_step(n)))
        tally[t].losses.append(step_loss[t])
        lr = learner.optimizer.param_groups[0]["lr"]
        learner.scheduler.step()
        learner.step += 1
        metrics[t] = tally[t].metrics(learner, lr)
    return metrics


def frozen_view(pool: TenantLearners) -> torch.nn.Module:
    shared = aliased_copy(pool.base)
    for p in shared.parameters():
        p.requires_grad_(False)
    return shared.train()


def _grab_grads(pool: TenantLearners, tenants, store: dict) -> None:
    """Keep each tenant's (clipped) gradients of its last optimizer step: its hook runs before zero_grad."""
    for t in tenants:
        policy = pool.learner(t).policy
        own = policy.after_optimizer_step

        def grab(step, t=t, policy=policy, own=own):
            store[t] = {n: p.grad.detach().clone() for n, p in policy.model.named_parameters() if p.requires_grad}
            own(step)

        policy.after_optimizer_step = grab


def _weights(pool: TenantLearners, t: int) -> dict[str, torch.Tensor]:
    model = pool.learner(t).policy.model
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def _gap(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> tuple[float, bool]:
    diff = max(float((a[k] - b[k]).abs().max()) for k in a)
    return diff, all(torch.equal(a[k], b[k]) for k in a)


def build_pool(specs, path) -> TenantLearners:
    pool = TenantLearners(specs[0], path)
    for t, spec in enumerate(specs):
        pool.add(t, spec)
    return pool


def compare(specs, path, cfg, steps: int, control: bool = False) -> list[dict]:
    """Per step: the largest gap between the sequential and the joint path over the tenants. ``control``: the
    joint pool's tenant 1 draws tenant 0's dropout stream, so the check must see a gap."""
    seq, joint = build_pool(specs, path), build_pool(specs, path)
    if control:
        joint._tenants[1].rng = joint._tenants[0].rng
    shared = frozen_view(joint)
    tenants = list(range(len(specs)))
    g_seq, g_joint = {}, {}
    _grab_grads(seq, tenants, g_seq)
    _grab_grads(joint, tenants, g_joint)
    prompts = demo_prompts(cfg, path, 0)
    rows = []
    for step in range(steps):
        batches = {t: demo_batch(prompts, cfg, 1000 * step + t) for t in tenants}
        m_seq = {t: seq.call(t, "train_step", batches[t]) for t in tenants}
        m_joint = joint_train_step(joint, shared, batches)
        row = {"step": step + 1, "metric": 0.0, "grad": 0.0, "weight": 0.0, "bitwise": True}
        # micro-batch i's padded width per tenant (solo shapes); the joint forward pads all to the widest
        widths = [
            [
                max(len(p) + len(c) for p, c in zip(m.prompt_ids, m.completion_ids))
                for m in micro_batches(b, specs[0].micro_batching.sequences)
            ]
            for b in batches.values()
        ]
        row["widths"] = [sorted({w[i] for w in widths}) for i in range(len(widths[0]))]
        for t in tenants:
            row["metric"] = max(row["metric"], max(abs(m_seq[t][k] - m_joint[t][k]) for k in m_seq[t]))
            gd, gb = _gap(g_seq[t], g_joint[t])
            wd, wb = _gap(_weights(seq, t), _weights(joint, t))
            rng_same = torch.equal(seq._tenants[t].rng[0], joint._tenants[t].rng[0])
            row["grad"], row["weight"] = max(row["grad"], gd), max(row["weight"], wd)
            row["bitwise"] &= gb and wb and m_seq[t] == m_joint[t] and rng_same
            row.setdefault("loss", []).append(m_seq[t]["loss"])
        rows.append(row)
    return rows


def time_paths(specs, path, cfg, repeats: int) -> dict[str, list[tuple[float, float]]]:
    """(wall, CPU) seconds of each round's learn phase per path: the CPU time (one torch thread) is the work,
    robust to other processes taking turns on the cores; the wall time is what a trial waits."""
    pool = build_pool(specs, path)
    shared = frozen_view(pool)
    tenants = list(range(len(specs)))
    prompts = demo_prompts(cfg, path, 0)
    times = {"sequential": [], "joint": []}
    for r in range(repeats + 1):  # the first round warms both paths up and is not counted
        batches = {t: demo_batch(prompts, cfg, 7000 + 10 * r + t) for t in tenants}
        for name in ("sequential", "joint") if r % 2 == 0 else ("joint", "sequential"):
            t0, c0 = time.perf_counter(), time.process_time()
            if name == "sequential":
                for t in tenants:
                    pool.call(t, "train_step", batches[t])
            else:
                joint_train_step(pool, shared, batches)
            if r > 0:
                times[name].append((time.perf_counter() - t0, time.process_time() - c0))
    return times


def profile_paths(specs, path, cfg, rounds: int = 2) -> None:
    """Self CPU time per op (the least over ``rounds`` rounds) of one learn phase on each path."""
    from torch.profiler import profile

    pool = build_pool(specs, path)
    shared = frozen_view(pool)
    tenants = list(range(len(specs)))
    batches = {t: demo_batch(demo_prompts(cfg, path, 0), cfg, t) for t in tenants}
    seen: dict[str, list[dict]] = {"sequential": [], "joint": []}
    for _ in range(rounds + 1):
        for name in seen:
            with profile() as prof:
                if name == "sequential":
                    for t in tenants:
                        pool.call(t, "train_step", batches[t])
                else:
                    joint_train_step(pool, shared, batches)
            seen[name].append({e.key: (e.self_cpu_time_total / 1e3, e.count) for e in prof.key_averages()})
    best = {
        name: {k: (min(r.get(k, (0.0, 0))[0] for r in runs[1:]), runs[1].get(k, (0.0, 0))[1]) for k in runs[1]}
        for name, runs in seen.items()
    }
    ops = sorted(set(best["sequential"]) | set(best["joint"]), key=lambda k: -best["sequential"].get(k, (0.0,))[0])
    print(f"{'op (self CPU ms, calls)':58s} {'sequential':>16s} {'joint':>16s}")
    for k in ops[:12]:
        s, j = best["sequential"].get(k, (0.0, 0)), best["joint"].get(k, (0.0, 0))
        print(f"{k[:58]:58s} {s[0]:9.0f} {s[1]:6d} {j[0]:9.0f} {j[1]:6d}")
    totals = [sum(v[0] for v in best[n].values()) for n in ("sequential", "joint")]
    print(f"{'all ops':58s} {totals[0]:9.0f} {'':6s} {totals[1]:9.0f}   ({totals[0] / totals[1]:.2f}x)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--profile", action="store_true", help="also print both paths' op times (torch.profiler)")
    ap.add_argument("--control", action="store_true", help="give tenant 1 tenant 0's dropout stream (gap expected)")
    args = ap.parse_args()
    specs, path, cfg = demo_specs(args.methods.split(","))
    torch.set_num_threads(specs[0].learner.threads)
    print(f"K={len(specs)} tenants {args.methods}; base {path}; threads {torch.get_num_threads()}")
    for row in compare(specs, path, cfg, args.steps, args.control):
        print(
            f"step {row['step']}: max|diff| metrics {row['metric']:.3g}, grads {row['grad']:.3g}, "
            f"weights {row['weight']:.3g}; bitwise {row['bitwise']}; losses {[round(x, 5) for x in row['loss']]}; "
            f"tenants' widths per micro-batch {row['widths']}"
        )
    if args.repeats == 0:
        return
    times = time_paths(specs, path, cfg, args.repeats)
    for i, clock in enumerate(("wall", "CPU")):
        seq = statistics.median(x[i] for x in times["sequential"])
        joint = statistics.median(x[i] for x in times["joint"])
        print(
            f"learn phase, K={len(specs)}, {clock} (median of {args.repeats}): sequential {seq:.3f} s, "
            f"joint {joint:.3f} s, speed-up {seq / joint:.2f}x"
        )
    print({k: [(round(w, 3), round(c, 3)) for w, c in v] for k, v in times.items()})
    if args.profile:
        profile_paths(specs, path, cfg)


if __name__ == "__main__":
    main()
