"""The learner's side of vLLM's weight transfer (rlvr.config.transport): its merged policy as a vLLM ``WeightSource``
and the trainer engines that send it to the engine actors.

vLLM's trainer engines drive the whole handshake themselves through any object with the four control-plane
methods (vllm distributed/weight_transfer/base.py: ``VLLMWeightSyncClient``); ``RayVLLMWeightSyncClient``
(weight_transfer/clients.py) calls them on Ray actor handles, which rlvr.rollout.worker.RolloutWorker provides.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from rlvr.config.transport import Transport, nccl_world_size
from rlvr.peft_methods.base import Gather
from rlvr.peft_methods.merged_state import merged_names, merged_state

if TYPE_CHECKING:
    import torch

    from rlvr.peft_methods.policy import AdapterPolicy


def policy_source(policy: AdapterPolicy, gather: Gather):
    """The merged model as vLLM's ``WeightSource``: ``metadata()`` (name, wire dtype, full shape) agrees with the
    iteration element for element, which the NCCL engine sizes its receive buffers from."""
    from vllm.distributed.weight_transfer import ParamMeta, WeightSource

    class PolicySource(WeightSource):
        def metadata(self) -> list[ParamMeta]:
            return [ParamMeta(name, policy.dtype, tuple(shape)) for name, shape, _ in merged_names(policy)]

        def __iter__(self) -> Iterator[tuple[str, torch.Tensor]]:
            return merged_state(policy, gather)

    return PolicySource()


def trainer_init_infos(
    transport: Transport,
    rank: int,
    engines: int,
    gpus_per_engine: int,
    endpoints: list[tuple[str, int]],
    buffer_bytes: int,
) -> list[Any]:
    """vLLM's trainer init info for each transfer group this rank joins: NCCL, one group per engine (its own
    rendezvous endpoint; the engine's TP workers at ranks 1..tp); IPC, one for all engines (no rendezvous: each
    engine worker opens the handle of its own GPU). Both packed, in buffers of ``buffer_bytes``
    (``rollout.sync_bucket_mb``, which bounds the bucketed path's slices too; vLLM's default is 1 GiB, twice on
    each side for NCCL), so the transfer holds bounded buffers instead of a second copy of the model."""
    if transport == "ipc":
        from vllm.distributed.weight_transfer.ipc_engine import IPCTrainerInitInfo

        return [IPCTrainerInitInfo(rank=rank, packed=True, packed_buffer_size_bytes=buffer_bytes)]
    from vllm.distributed.weight_transfer.nccl_engine import NCCLTrainerInitInfo

    if len(endpoints) != engines:
        raise ValueError(f"nccl weight transfer: {len(endpoints)} endpoint(s) for {engines} engine(s); one each")
    return [
        NCCLTrainerInitInfo(
            master_address=addr,
            master_port=port,
            world_size=nccl_world_size(gpus_per_engine),
            rank=rank,
            packed=True,
            packed_buffer_size_bytes=buffer_bytes,
        )
        for addr, port in endpoints
    ]


class WeightSender:
    """vLLM trainer engines over a policy: ``send`` pushes every tensor of the merged model to every engine and
    drives each engine's start / update / finish; ``close`` releases the transfer groups."""

    def __init__(
        self,
        transport: Transport,
        policy: AdapterPolicy,
        gather: Gather,
        rank: int,
        engine_actors: list,
        gpus_per_engine: int,
        endpoints: list[tuple[str, int]],
        buffer_bytes: int,
    ):
        from vllm.distributed.weight_transfer import RayVLLMWeightSyncClient, WeightTransferTrainerFactory

        source = policy_source(policy, gather)
        infos = trainer_init_infos(transport, rank, len(engine_actors), gpus_per_engine, endpoints, buffer_bytes)
        # NCCL: a group per engine, so each gets a client of its own; IPC: one client fans out to all.
        clients = (
            [RayVLLMWeightSyncClient(engine_actors)]
            if transport == "ipc"
            else [RayVLLMWeightSyncClient(actor) for actor in engine_actors]
        )
        self.engines = [
            WeightTransferTrainerFactory.trainer_init(info, client=client, source=source)
            for info, client in zip(infos, clients)
        ]

    def send(self) -> None:
        for engine in self.engines:
            engine.send_weights()

    def close(self) -> None:
        for engine in self.engines:
            engine.shutdown()
        self.engines = []
