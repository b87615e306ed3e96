"""Learner ranks as Ray actors, and the data-parallel group the trial controller talks to.

``LearnerActor`` is a thin shell over ``Learner``; ``LearnerGroup`` places N of them, has rank 0 choose the
rendezvous address, splits each rollout batch so that every rank holds its slice of every mini-batch, and
averages the ranks' metrics. The learners themselves keep the loss normaliser global (all-reduced).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import ray

from rlvr.devices import require_cuda
from rlvr.learner.backends import free_port
from rlvr.learner.batch import RolloutBatch
from rlvr.learner.learner import Learner
from rlvr.learner.spec import LearnerSpec
from rlvr.sync.update import PolicyUpdate


def learner_options(spec: LearnerSpec, placement: Any, bundle: int, gpus: float) -> dict[str, Any]:
    """Ray options of one learner process: ``learner.threads`` CPUs, ``gpus``, and bundle ``bundle`` of
    ``placement`` (an optional placement group)."""
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    options: dict[str, Any] = {"num_cpus": spec.learner.threads, "num_gpus": gpus}
    if placement is not None:
        options["scheduling_strategy"] = PlacementGroupSchedulingStrategy(
            placement, placement_group_bundle_index=bundle
        )
    return options


def rank_shards(batch: RolloutBatch, spec: LearnerSpec, world_size: int) -> list[RolloutBatch]:
    """Each rank's share of a rollout batch: its slice of every mini-batch."""
    mini = spec.algorithm.mini_batches
    if len(batch) % (mini * world_size):
        raise ValueError(
            f"rollout batch: {len(batch)} completions do not split into {mini} mini-batches x {world_size} learners"
        )
    return [batch.shard(r, world_size, mini) for r in range(world_size)]


def merge_rank_metrics(per_rank: list[dict[str, float]]) -> dict[str, float]:
    """The whole batch's metrics from every rank's."""
    tokens = sum(m["tokens"] for m in per_rank)
    # token-mean metrics weigh ranks by tokens; each rank's loss is its share of the global normaliser
    out = {k: sum(m[k] * m["tokens"] for m in per_rank) / max(tokens, 1) for k in per_rank[0]}
    out.update(
        tokens=tokens,
        loss=sum(m["loss"] for m in per_rank),
        ratio_max=max(m["ratio_max"] for m in per_rank),
        ratio_min=min(m["ratio_min"] for m in per_rank),
        **{k: per_rank[0][k] for k in ("grad_norm", "lr", "step")},
    )
    return out


def rank_states(state: dict[str, Any], world_size: int) -> list[dict[str, Any]]:
    """What each rank loads from a group state (``{"world_size", "ranks"}``): its own, with rank 0's weights."""
    if state.get("world_size") != world_size:
        raise ValueError(
            f"learner group state: saved with {state.get('world_size')} learners, this group has {world_size}; "
            "resume with the same learner.num_learners"
        )
    weights = state["ranks"][0]["trainable"]
    return [{**s, "trainable": weights} for s in state["ranks"]]


class LearnerActor:
    """One rank: ``setup`` builds the Learner once every rank knows the rendezvous address."""

    def rendezvous(self) -> tuple[str, int]:
        return ray.util.get_node_ip_address(), free_port()

    def setup(
        self,
        spec: LearnerSpec,
        model_path: str,
        rank: int,
        world_size: int,
        addr: str,
        port: int,
        keep_base: bool = False,
    ) -> None:
        require_cuda(f"learner rank {rank}", "model.gpus_per_learner")
        self.learner = Learner(spec, model_path, rank, world_size, addr, port, keep_base)

    def reset(self, spec: LearnerSpec) -> None:
        self.learner.reset(spec)

    def train_step(self, batch: RolloutBatch) -> dict[str, float]:
        return self.learner.train_step(batch)

    def logprobs(self, prompt_ids: list[int], completion_ids: list[int]) -> list[float]:
        return self.learner.logprobs(prompt_ids, completion_ids)

    def export(self, version: int, include_base: bool) -> PolicyUpdate | None:
        return self.learner.export(version, include_base)

    def open_transfer(self, transport: str, engine_actors: list, gpus_per_engine: int, buffer_bytes: int) -> None:
        # NCCL rendezvous endpoints on this (rank 0's) node, one per transfer group; other ranks need none
        from rlvr.learner.backends import free_port

        node = ray.util.get_node_ip_address()
        endpoints = [(node, free_port()) for _ in engine_actors] if transport == "nccl" else []
        self.learner.open_transfer(transport, engine_actors, gpus_per_engine, endpoints, buffer_bytes)

    def send_weights(self) -> None:
        self.learner.send_weights()

    def close_transfer(self) -> None:
        self.learner.close_transfer()

    def state(self, with_weights: bool) -> dict[str, Any]:
        return self.learner.state(with_weights)

    def record(self) -> dict[str, Any]:
        return self.learner.record()

    def load_state(self, state: dict[str, Any]) -> None:
        self.learner.load_state(state)


class LearnerGroup:
    """``num_learners`` data-parallel ranks. ``placement`` is an optional Ray placement group; rank r goes into its
    bundle ``bundles[r]`` (the trial plan's learner slots) and asks for ``gpus`` (the plan's share: half a GPU when
    colocated with an engine; default model.gpus_per_learner). ``keep_base``: a warm pool's group, whose ranks keep
    the pristine base for ``reset``."""

    def __init__(
        self,
        spec: LearnerSpec,
        model_path: str,
        num_learners: int | None = None,
        placement: Any = None,
        bundles: Sequence[int] = (),
        gpus: float | None = None,
        keep_base: bool = False,
    ):
        self.spec = spec
        self.world_size = num_learners or spec.learner.num_learners
        gpus = spec.model.gpus_per_learner if gpus is None else gpus
        actors = []
        for rank in range(self.world_size):
            options = learner_options(spec, placement, bundles[rank] if placement is not None else 0, gpus)
            actors.append(ray.remote(LearnerActor).options(**options).remote())
        self.actors = actors
        addr, port = ray.get(actors[0].rendezvous.remote())
        ray.get(
            [a.setup.remote(spec, model_path, r, self.world_size, addr, port, keep_base) for r, a in enumerate(actors)]
        )

    def reset(self, spec: LearnerSpec) -> list[ray.ObjectRef]:
        """Every rank back to a fresh learner of ``spec`` on the pristine base (a warm pool's lease); returns the
        pending calls."""
        self.spec = spec
        return [a.reset.remote(spec) for a in self.actors]

    def train_step(self, batch: RolloutBatch) -> dict[str, float]:
        """One update on the whole rollout batch, with metrics of the whole batch."""
        return self.train_step_result(self.submit_train_step(batch))

    def submit_train_step(self, batch: RolloutBatch) -> list[ray.ObjectRef]:
        """Start the update and return at once, so the caller can work while the ranks train."""
        shards = rank_shards(batch, self.spec, self.world_size)
        return [a.train_step.remote(shard) for a, shard in zip(self.actors, shards)]

    def train_step_result(self, pending: list[ray.ObjectRef]) -> dict[str, float]:
        """Wait for a submitted update; the metrics of the whole batch."""
        return merge_rank_metrics(ray.get(pending))

    def _rank0(self, method: str, *args: Any) -> Any:
        """Rank 0's answer; with ZeRO-3 every rank takes part, as forward passes and gathers are collective."""
        sharded = self.spec.learner.sharding_stage == 3
        return ray.get([getattr(a, method).remote(*args) for a in (self.actors if sharded else self.actors[:1])])[0]

    def logprobs(self, prompt_ids: list[int], completion_ids: list[int]) -> list[float]:
        return self._rank0("logprobs", prompt_ids, completion_ids)

    def export(self, version: int, include_base: bool) -> PolicyUpdate:
        return self._rank0("export", version, include_base)

    def open_transfer(self, transport: str, engine_actors: list, gpus_per_engine: int, buffer_bytes: int) -> None:
        """Every rank joins vLLM's weight transfer to ``engine_actors`` (rlvr.learner.transfer); rank 0 sends."""
        ray.get([a.open_transfer.remote(transport, engine_actors, gpus_per_engine, buffer_bytes) for a in self.actors])

    def send_weights(self, transport: str) -> None:
        """The merged policy to every engine through vLLM's transfer. NCCL: rank 0 sends (every rank under
        ZeRO-3, whose gathers are collective); IPC: every rank, whose GPU handles rank 0 all-gathers."""
        if transport == "ipc":
            ray.get([a.send_weights.remote() for a in self.actors])
        else:
            self._rank0("send_weights")

    def close_transfer(self) -> None:
        ray.get([a.close_transfer.remote() for a in self.actors])

    def record(self) -> dict[str, Any]:
        """The verified method record (resolved adapter config, trainable counts) of rank 0's policy."""
        return ray.get(self.actors[0].record.remote())

    def state(self) -> dict[str, Any]:
        """Rank 0's full state plus the other ranks' own optimizer partitions and RNG (weights are shared)."""
        states = ray.get([a.state.remote(r == 0) for r, a in enumerate(self.actors)])
        return {"world_size": self.world_size, "ranks": states}

    def load_state(self, state: dict[str, Any]) -> None:
        ray.get([a.load_state.remote(s) for a, s in zip(self.actors, rank_states(state, self.world_size))])

    def close(self) -> None:
        for a in self.actors:
            ray.kill(a)
        self.actors = []
