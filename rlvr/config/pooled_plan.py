"""The pooled plan of a sweep: trials that can share a batch run K at a time as the tenants of one pool.

A tenant pool (issue 24, docs/memory-plan.md "The pooled plan") is one engine set serving K adapters in one batch
and one learner process holding the base once; its tenants step in lock-step. Which trials: ``tenant_refusal``
(the method shares a batch, rlvr.config.sharing; a vLLM engine; a torch learner of one rank). Which together: the
same pool key (the caller's function, rlvr.pool.warm.pool_key). A trial's config is never rewritten to make it a
tenant: a shareable method whose own route is not native joins only with ``rollout.sync_route: native``. The
plan of a pool reuses the solo plan's models (rlvr.config.memory_plan):

- step: ONE decode of the k tenants' batches (``decode_seconds(cfg, k)``: every decoding step reads the base
  weights once for all tenants, vLLM's punica kernels batching the adapters, and each sequence's KV cache as in a
  solo trial), then each tenant's update one after another (``train_seconds`` each);
- engine: the base once, vLLM's adapter slots (max_loras = K, each at the served LoRA rank on every linear module)
  and, for K, the KV cache of K tenants' batches at full length;
- learner: the base once, each tenant's adapter and optimizer state (fp32 masters included; a residual init's
  residual weights too), and ONE tenant's gradients, activations and working set (updates run one after another
  and free their gradients, rlvr/learner/backends.py).

K = min(max_loras = sweep.tenants, what the KV cache holds, what the learner holds); the plan names the bound
that binds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rlvr.config.memory_plan import (
    DTYPE_BYTES,
    GIB,
    ActorPlan,
    decode_seconds,
    engine_plan,
    learner_plan,
    module_shapes,
    plan_trial,
    sequences_fit,
    train_seconds,
    trainable_params,
    training_sequence_gib,
    trial_gpus,
)
from rlvr.config.methods import method_spec
from rlvr.config.schema import VLLM_LORA_RANKS, TrialConfig
from rlvr.config.sharing import batch_sharing_refusal
from rlvr.config.trial_plan import TrialPlan

PoolKey = Callable[[TrialConfig], str]
MOST_TENANTS = 4096  # where the search for a memory bound stops: far beyond any max_loras


def tenant_refusal(cfg: TrialConfig) -> str | None:
    """Why this trial runs alone (in a pool of its own), or None when it can be a tenant."""
    why = batch_sharing_refusal(cfg.method)
    if why is not None:
        return why
    if cfg.rollout.engine != "vllm":
        return f"rollout.engine {cfg.rollout.engine} has no adapter slots"
    if cfg.learner.backend != "torch" or cfg.learner.num_learners != 1:
        return f"a {cfg.learner.backend} learner of {cfg.learner.num_learners} rank(s); tenants share one torch rank"
    route = TrialPlan.from_config(cfg).route
    if route != "native":
        # Not rewritten for it: another route's engine computes other last bits, so the trial would no longer give
        # what its config gives alone (the independence contract).
        return (
            f"its sync route is {route}; with rollout.sync_route: native it shares a batch as a LoRA on the "
            "original base (rlvr.config.sharing)"
        )
    return None


def per_engine_batch(cfg: TrialConfig) -> int:
    """Sequences of one tenant's batch on each engine."""
    return -(-cfg.algorithm.prompts_per_step * cfg.algorithm.group_size // cfg.rollout.num_engines)


def slot_gib(cfg: TrialConfig) -> float:
    """One vLLM adapter slot: A and B at the served rank (the next of vLLM's ranks) on every linear module."""
    arch, rank = cfg.model.architecture, TrialPlan.from_config(cfg).engine_lora_rank or 1
    served = next(r for r in VLLM_LORA_RANKS if r >= rank)
    in_out = sum(i + o for i, o in module_shapes(arch).values())
    return served * in_out * arch.num_hidden_layers * DTYPE_BYTES[cfg.model.dtype] / GIB


def tenant_items(cfg: TrialConfig) -> tuple[dict[str, float], dict[str, float]]:
    """GiB a tenant keeps in the shared learner (adapter, optimizer state, residual weights), and GiB it holds
    only while it updates (gradients, activations, working set)."""
    arch, b = cfg.model.architecture, DTYPE_BYTES[cfg.model.dtype]
    solo = learner_plan(cfg).items
    kept = {"adapters": trainable_params(cfg) * b / GIB, "optimizer": solo["optimizer"], "residual": 0.0}
    if method_spec(cfg.method.name).residual_init:  # its W0 - B0 A0 on the target modules, beside the shared W0
        shapes = module_shapes(arch)
        targets = cfg.method.target_modules or list(shapes)
        kept["residual"] = sum(i * o for m, (i, o) in shapes.items() if m in targets) * arch.num_hidden_layers * b / GIB
    return kept, {k: solo[k] for k in ("gradients", "activations", "working")}


def _largest(fits: Callable[[int], bool]) -> int:
    """The largest k >= 0 with fits(k), fits being monotone (0 when even one does not fit)."""
    k = 0
    while k < MOST_TENANTS and fits(k + 1):
        k += 1
    return k


@dataclass
class PoolGroup:
    """The trials of one pool key, as tenants, and how they share pools of K."""

    labels: list[str]
    configs: list[TrialConfig]
    bounds: dict[str, int | None]
    """The most tenants each bound allows: max_loras (the adapter slots the pool's engines start with,
    sweep.tenants), the KV cache, the learner's memory (None: unknown without resources.gpu_memory_gib)."""
    k: int
    engine: ActorPlan
    learner: ActorPlan
    gpus: int
    pools: list[list[int]]
    """Indices into ``configs`` of each pool's tenants."""
    seconds: list[float]
    """Each pool's wall time."""

    @property
    def binding(self) -> str:
        known = {name: n for name, n in self.bounds.items() if n is not None}
        if len(self.configs) < min(known.values()):
            return f"its {len(self.configs)} trial(s)"
        return min(known, key=lambda name: known[name])

    @property
    def gpu_hours(self) -> float:
        return self.gpus * sum(self.seconds) / 3600


def pool_step_seconds(tenants: list[TrialConfig]) -> float:
    """One lock-step of these tenants: one decode of all their batches, then their updates one after another."""
    return max(decode_seconds(c, len(tenants)) for c in tenants) + sum(train_seconds(c) for c in tenants)


def pool_seconds(tenants: list[TrialConfig]) -> float:
    """A pool's wall time: lock-steps of every tenant still training, a tenant leaving when its steps are done."""
    left, done, total = sorted(tenants, key=lambda c: c.steps), 0, 0.0
    while left:
        total += (left[0].steps - done) * pool_step_seconds(left)
        done = left[0].steps
        left = [c for c in left if c.steps > done]
    return total


def _group(labels: list[str], configs: list[TrialConfig], tenants: int) -> PoolGroup:
    first, res = configs[0], configs[0].resources
    gib = res.gpu_memory_gib
    states = [tenant_items(c) for c in configs]
    kept = {k: max(s[0][k] for s in states) for k in states[0][0]}
    update = {k: max(s[1][k] for s in states) for k in states[0][1]}
    base = learner_plan(first).items["weights"]
    seq, batch, slot = training_sequence_gib(first), per_engine_batch(first), slot_gib(first)
    solo_engine = engine_plan(first, gib)
    bounds: dict[str, int | None] = {"max_loras": tenants, "KV cache": None, "learner memory": None}
    if gib is not None:
        engine_base = solo_engine.items["weights"], solo_engine.items["reserve"]
        bounds["KV cache"] = _largest(lambda k: k * batch <= sequences_fit(first, gib, *engine_base, k * slot))
        usable = gib * (1 - res.memory_headroom)
        awake = usable * (1 - first.rollout.memory_share) if first.rollout.colocate else usable
        per = sum(kept.values())
        bounds["learner memory"] = _largest(
            lambda k: base + k * per + sum(update.values()) <= usable and base + k * per <= awake
        )
    k = max(1, min([len(configs)] + [n for n in bounds.values() if n is not None]))
    pools = [list(range(i, min(i + k, len(configs)))) for i in range(0, len(configs), k)]
    notes = [
        f"{k} adapter slot(s) (vLLM max_loras) and {k} x {batch} sequences in one batch: {k * batch * seq:.1f} GiB "
        "of KV cache at full length"
    ]
    if gib is not None:
        fit = sequences_fit(first, gib, solo_engine.items["weights"], solo_engine.items["reserve"], k * slot)
        notes.append(f"vLLM's share {first.rollout.memory_share * gib:.1f} GiB holds {fit} at full length at once")
    engine = ActorPlan("engine", {**solo_engine.items, "adapter_slots": k * slot}, notes=notes)
    learner = ActorPlan(
        "learner",
        {"weights": base, **{n: k * v for n, v in kept.items() if v}, **update},
        notes=[f"the base once, {k} tenant(s)' adapters and optimizer state, one tenant's update at a time"],
    )
    return PoolGroup(
        labels,
        configs,
        bounds,
        k,
        engine,
        learner,
        trial_gpus(first),
        pools,
        [pool_seconds([configs[i] for i in p]) for p in pools],
    )


@dataclass
class PooledPlan:
    groups: list[PoolGroup]
    solo: list[tuple[str, TrialConfig, str]]
    """(label, config, why it runs alone) of every trial that cannot be a tenant."""

    @property
    def gpu_hours(self) -> float:
        return sum(g.gpu_hours for g in self.groups) + sum(plan_trial(c).gpu_hours for _, c, _ in self.solo)

    def peak_gpus(self, max_concurrent: int | None) -> int:
        """The most GPUs the pools and solo trials hold at once with at most ``max_concurrent`` trials running (a
        pool's tenants count as one, as the sweep's scheduler counts them): those with the most GPUs first."""
        units = [g.gpus for g in self.groups for _ in g.pools] + [trial_gpus(c) for _, c, _ in self.solo]
        return sum(sorted(units, reverse=True)[: max_concurrent or len(units)])


def pooled_plan(trials: list[tuple[str, TrialConfig]], tenants: int, key: PoolKey) -> PooledPlan:
    """The sweep's trials as tenants of pools of at most ``tenants`` (sweep.tenants), grouped by ``key``."""
    groups: dict[str, tuple[list[str], list[TrialConfig]]] = {}
    solo = []
    for label, cfg in trials:
        why = tenant_refusal(cfg) if tenants > 1 else "sweep.tenants is 1"
        if why is not None:
            solo.append((label, cfg, why))
            continue
        labels, configs = groups.setdefault(key(cfg), ([], []))
        labels.append(label)
        configs.append(cfg)
    return PooledPlan([_group(labels, configs, tenants) for labels, configs in groups.values()], solo)
