"""A trial's plan: what its config decides, worked out once and read by every part that needs it.

``TrialPlan.from_config`` resolves the placement-group layout (which bundle holds which actor), the weight-sync
route and transport, the learning rate, the engines' context length (``engine_context``, which the memory plan sizes the
KV cache by too), the learner's micro-batching budget, and the values one part takes from another's section (the
learner's scoring temperature and Dr.GRPO normaliser, the actors' torch threads), so each part is handed its own section
and these values (``rlvr.learner.spec.LearnerSpec``, ``rlvr.rollout.spec.EngineSpec``). Pure arithmetic on the config:
part of the torch-free config layer.
"""

from __future__ import annotations

from dataclasses import dataclass

from rlvr.config.methods import Route, method_info
from rlvr.config.schema import LearnerConfig, TrialConfig
from rlvr.config.sharing import shared_adapter_rank
from rlvr.config.transport import Transport, choose_transport

PROBE_PROMPT = "Compute 12 + 30 and explain each step."
"""The post-sync probe's prompt (rlvr.sync.probe): here because the engines' context must hold it."""


def probe_context(n_tokens: int) -> int:
    """The longest context the probe needs with any tokenizer: at most one token per byte of its prompt, a
    leading one (sentencepiece's word start), and ``n_tokens``."""
    return len(PROBE_PROMPT.encode()) + 1 + n_tokens


def engine_context(cfg: TrialConfig) -> int:
    """The engines' context (vLLM's ``max_model_len``), the one place it is decided: ``rollout.max_model_len``,
    or the longest prompt plus the longest completion served (evaluation's too), at least the probe's."""
    if cfg.rollout.max_model_len is not None:
        return cfg.rollout.max_model_len
    longest = max(cfg.rollout.max_new_tokens, cfg.eval.max_new_tokens if cfg.eval.benchmarks else 0)
    return max(cfg.data.max_prompt_tokens + longest, probe_context(cfg.rollout.probe_tokens))


@dataclass(frozen=True)
class BundleSlots:
    """Bundle indices in the trial's placement group: the controller (the Ray task running the loop) first,
    then one bundle per rollout engine, learner rank and reward actor, in that order. Colocated, learner rank i
    shares engine i's bundle (and its GPU) instead of having its own."""

    controller: int
    engines: tuple[int, ...]
    learners: tuple[int, ...]
    rewards: tuple[int, ...]

    @classmethod
    def for_counts(cls, engines: int, learners: int, rewards: int, colocate: bool = False) -> BundleSlots:
        first_learner = 1 + engines
        engine_slots = tuple(range(1, first_learner))
        learner_slots = engine_slots[:learners] if colocate else tuple(range(first_learner, first_learner + learners))
        first_reward = 1 + len(set(engine_slots) | set(learner_slots))
        return cls(
            controller=0,
            engines=engine_slots,
            learners=learner_slots,
            rewards=tuple(range(first_reward, first_reward + rewards)),
        )

    @property
    def colocated(self) -> bool:
        return bool(self.learners) and set(self.learners) <= set(self.engines)

    def __len__(self) -> int:
        return 1 + len(set(self.engines) | set(self.learners)) + len(self.rewards)


@dataclass(frozen=True)
class MicroBatching:
    """How a learner rank cuts its share of a mini-batch into forward/backward passes (rlvr.learner.batch)."""

    sequences: int
    """Most sequences per micro-batch (``learner.micro_batch_size``)."""
    tokens: int | None
    """Most padded tokens (sequences x the longest) per micro-batch (``learner.max_tokens_per_micro_batch``)."""

    @classmethod
    def of(cls, learner: LearnerConfig) -> MicroBatching:
        return cls(sequences=learner.micro_batch_size, tokens=learner.max_tokens_per_micro_batch)

    def largest(self, longest: int) -> int:
        """Padded tokens of the largest micro-batch of sequences up to ``longest`` tokens: the token budget, never
        less than one longest sequence (which gets a micro-batch of its own)."""
        return max(self.tokens, longest) if self.tokens is not None else self.sequences * longest


def _bundle(cpus: float, gpus: int = 0) -> dict[str, float]:
    return {"CPU": cpus, "GPU": float(gpus)} if gpus else {"CPU": cpus}


@dataclass(frozen=True)
class TrialPlan:
    slots: BundleSlots
    gpus_per_engine: int
    gpus_per_learner: int
    route: Route
    """How the learner's policy reaches the engines (``rollout.sync_route``, ``auto`` = the method's own route)."""
    engine_lora_rank: int | None
    """The rank the engines reserve for adapters; None when they are sent merged weights."""
    lr: float
    """The learning rate: the method's override, else the algorithm's."""
    max_model_len: int
    """The engines' context (``engine_context``)."""
    micro_batching: MicroBatching
    """The learner's micro-batch budget."""
    sampling_temperature: float
    """The engines' sampling temperature (``rollout.temperature``): the learner scores completions under it."""
    dr_grpo_norm: int
    """Dr.GRPO's constant loss normaliser: ``algorithm.dr_grpo_norm``, else ``rollout.max_new_tokens``."""
    actor_threads: int
    """torch threads of every engine and learner actor on CPU (``learner.threads``)."""
    transport: Transport = "buckets"
    """How weight syncs travel (``rollout.weight_transfer``, resolved by rlvr.config.transport.choose_transport)."""

    @classmethod
    def from_config(cls, cfg: TrialConfig) -> TrialPlan:
        own = method_info(cfg.method.name).route
        route = own if cfg.rollout.sync_route == "auto" else cfg.rollout.sync_route
        return cls(
            slots=BundleSlots.for_counts(
                cfg.rollout.num_engines, cfg.learner.num_learners, cfg.reward.num_actors, colocate=cfg.rollout.colocate
            ),
            gpus_per_engine=cfg.model.gpus_per_engine,
            gpus_per_learner=cfg.model.gpus_per_learner,
            route=route,
            # native for a method whose own route is not: its shared export (a residual init's is rank 2r)
            engine_lora_rank=(
                None if route == "merged" else cfg.method.rank if route == own else shared_adapter_rank(cfg.method)
            ),
            lr=cfg.method.lr_or(cfg.algorithm.lr),
            max_model_len=engine_context(cfg),
            micro_batching=MicroBatching.of(cfg.learner),
            sampling_temperature=cfg.rollout.temperature,
            dr_grpo_norm=cfg.algorithm.dr_grpo_norm or cfg.rollout.max_new_tokens,
            actor_threads=cfg.learner.threads,
            transport=choose_transport(cfg.rollout, cfg.model, cfg.learner, route),
        )

    @property
    def engine_gpus(self) -> float:
        """GPUs an engine actor asks for: its own, or half of the one it shares with a learner rank."""
        return self.gpus_per_engine / 2 if self.slots.colocated else float(self.gpus_per_engine)

    @property
    def learner_gpus(self) -> float:
        return self.gpus_per_learner / 2 if self.slots.colocated else float(self.gpus_per_learner)

    def bundles(self, controller_cpus: float) -> list[dict[str, float]]:
        """The placement group's bundles, in slot order (each actor takes one CPU of its own bundle; a shared
        engine-and-learner bundle holds two CPUs and the one GPU)."""
        out: list[dict[str, float]] = [{}] * len(self.slots)
        out[self.slots.controller] = _bundle(controller_cpus)
        for i in self.slots.learners:
            out[i] = _bundle(1, self.gpus_per_learner)
        for i in self.slots.engines:
            out[i] = _bundle(2, self.gpus_per_engine) if i in self.slots.learners else _bundle(1, self.gpus_per_engine)
        for i in self.slots.rewards:
            out[i] = _bundle(1)
        return out
