"""How gradients become an optimizer step: plain torch, or DeepSpeed ZeRO. All DeepSpeed code lives here.

Both backends take gradients that are already correctly normalised for one optimizer step: the learner
calls ``backward`` once per micro-batch, then ``step`` once. DeepSpeed averages gradients over ranks; the
learner scales its loss by the world size to undo that (see ``Learner``).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any, Protocol

import torch

if TYPE_CHECKING:  # annotations only: TorchBackend runs where pydantic is absent (benchmarks/gpu_learner.py)
    from rlvr.config.schema import LearnerConfig


class Backend(Protocol):
    """One data-parallel rank's optimizer machinery."""

    module: torch.nn.Module  # call this for forward passes

    def backward(self, loss: torch.Tensor) -> None:
        """Accumulate this micro-batch's gradients."""

    def step(self, before_zero_grad: Callable[[], None]) -> float:
        """Clip, step, run the hook, zero the gradients; returns the gradient norm before clipping."""

    def optimizer_state(self) -> dict[str, Any]:
        """This rank's optimizer state (a live view: copy before keeping it)."""

    def load_optimizer_state(self, state: dict[str, Any], rank: int) -> None:
        """Inverse of optimizer_state (of this ``rank``), after the trainable weights are loaded into the model."""

    def gathered(
        self, params: Iterable[torch.nn.Parameter], modifier_rank: int | None = None
    ) -> AbstractContextManager:
        """Whole ``params`` inside the block (a collective: every rank enters it); with ``modifier_rank`` that
        rank's writes are kept. A no-op unless the weights are sharded (ZeRO-3)."""

    def close(self) -> None:
        """Let go of what the backend holds beyond the model and optimizer (a warm pool's learner builds another)."""


class TorchBackend:
    """A plain optimizer loop for one rank (CPU runs and tests).

    Parameters trained in bf16/fp16 get fp32 master copies, as DeepSpeed's bf16 mode keeps: the optimizer
    steps the masters and the model's weights are rounded from them. Stepping bf16 weights directly loses
    every update below bf16's spacing (at lr 1e-6 an update to a weight of 0.02 rounds away, every step).
    """

    def __init__(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, max_grad_norm: float, world_size: int):
        if world_size != 1:
            raise ValueError(f"learner.backend: torch runs one rank, got num_learners={world_size}; use deepspeed")
        self.module, self.optimizer, self.max_grad_norm = model, optimizer, max_grad_norm
        self._params = [p for g in optimizer.param_groups for p in g["params"]]
        # (model weight, fp32 master) for every low-precision trainable weight; the optimizer holds the masters
        self._masters: list[tuple[torch.nn.Parameter, torch.nn.Parameter]] = []
        for group in optimizer.param_groups:
            for i, p in enumerate(group["params"]):
                if p.dtype in (torch.bfloat16, torch.float16):
                    master = torch.nn.Parameter(p.detach().float().clone())
                    self._masters.append((p, master))
                    group["params"][i] = master

    def backward(self, loss: torch.Tensor) -> None:
        loss.backward()

    def step(self, before_zero_grad: Callable[[], None]) -> float:
        for p, master in self._masters:
            master.grad = None if p.grad is None else p.grad.float()
        norm = torch.nn.utils.clip_grad_norm_(
            [m for g in self.optimizer.param_groups for m in g["params"]], self.max_grad_norm
        )
        self.optimizer.step()
        with torch.no_grad():
            for p, master in self._masters:
                p.copy_(master)
                master.grad = None
        before_zero_grad()  # AdaLoRA's allocation reads the gradients
        for p in self._params:
            p.grad = None
        return float(norm)

    def optimizer_state(self) -> dict[str, Any]:
        # the masters are part of the optimizer's state: the model's rounded weights cannot restore them
        return {**self.optimizer.state_dict(), "fp32_masters": [m.detach() for _, m in self._masters]}

    def load_optimizer_state(self, state: dict[str, Any], rank: int) -> None:
        state = dict(state)
        saved = state.pop("fp32_masters", None)
        self.optimizer.load_state_dict(state)
        with torch.no_grad():
            # the weights were loaded into the model just before; a state without masters starts from them
            for i, (p, master) in enumerate(self._masters):
                master.copy_(saved[i] if saved is not None else p)
                p.copy_(master)

    def gathered(
        self, params: Iterable[torch.nn.Parameter], modifier_rank: int | None = None
    ) -> AbstractContextManager:
        return nullcontext()

    def close(self) -> None:
        pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]


def init_process_group(rank: int, world_size: int, master_addr: str, master_port: int, device: torch.device) -> None:
    """Join the data-parallel group through DeepSpeed (gloo on CPU, nccl on GPU); a no-op when already joined."""
    import deepspeed

    if torch.distributed.is_initialized():
        return
    os.environ.update(
        MASTER_ADDR=master_addr,
        MASTER_PORT=str(master_port),
        RANK=str(rank),
        WORLD_SIZE=str(world_size),
        LOCAL_RANK="0",
    )
    deepspeed.init_distributed(
        dist_backend="nccl" if device.type == "cuda" else "gloo", auto_mpi_discovery=False, verbose=False
    )


class DeepSpeedBackend:
    """DeepSpeed engine around the policy's own optimizer instance (so LoRA+/LoRA-FA groups survive)."""

    def __init__(
        self,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        learner: LearnerConfig,
        dtype: str,
        max_grad_norm: float,
    ):
        import deepspeed

        stage = self.stage = learner.sharding_stage
        if stage == 0 and dtype != "float32":
            # measured: DeepSpeed wraps the optimizer in FP16_UnfusedOptimizer here, whose updates differ from
            # torch and from ZeRO 1/2 (which agree with each other)
            raise ValueError(f"learner.zero_stage: 0 with model.dtype {dtype} is not supported; use zero_stage 1 or 2")
        if stage > 0 and type(optimizer).__module__.split(".")[0] != "torch":
            # ZeRO hands the optimizer flat partitions: a per-matrix optimizer (LoRA-FA's) silently degrades
            raise ValueError(
                f"learner.zero_stage: {stage} flattens parameters, which {type(optimizer).__name__} cannot handle; "
                "use zero_stage 0 or backend torch for this method"
            )
        config = {
            "train_micro_batch_size_per_gpu": learner.micro_batch_size,
            "gradient_accumulation_steps": 1,
            # the learner owns the boundary: backward() per micro-batch, step() once per mini-batch
            "managed_gradient_accumulation": False,
            "gradient_clipping": max_grad_norm,
            "zero_optimization": {"stage": stage, **(self._zero3_sizes(model, learner) if stage == 3 else {})},
            "bf16": {"enabled": dtype == "bfloat16"},
            "fp16": {"enabled": dtype == "float16"},
            "zero_allow_untested_optimizer": True,
            "steps_per_print": 2**31 - 1,
        }
        self.engine, *_ = deepspeed.initialize(model=model, optimizer=optimizer, config=config)
        self.module = self.engine

    @staticmethod
    def _zero3_sizes(model: torch.nn.Module, learner: LearnerConfig) -> dict[str, int]:
        # Buckets sized by the model, as transformers' "auto" does: DeepSpeed's fixed defaults reserve ~2 GB
        # per engine whatever the model, which on CPU is never returned and makes later forks fail (measured).
        hidden = model.config.hidden_size
        return {
            "reduce_bucket_size": hidden * hidden,
            "stage3_prefetch_bucket_size": int(0.9 * hidden * hidden),
            "stage3_param_persistence_threshold": learner.zero3_persistence_threshold,
        }

    def backward(self, loss: torch.Tensor) -> None:
        self.engine.backward(loss, scale_wrt_gas=False)

    def step(self, before_zero_grad: Callable[[], None]) -> float:
        self.engine.step()
        # ZeRO keeps gradients in its own partitions and clears them inside step(): hooks see none here
        before_zero_grad()
        norm = self.engine.get_global_grad_norm()  # DeepSpeed keeps none at ZeRO stage 0 in fp32
        return float(norm) if norm is not None else float("nan")

    def optimizer_state(self) -> dict[str, Any]:
        return self.engine.optimizer.state_dict()

    def load_optimizer_state(self, state: dict[str, Any], rank: int) -> None:
        from deepspeed.runtime.base_optimizer import ZeROOptimizer

        opt = self.engine.optimizer
        if isinstance(opt, ZeROOptimizer):
            # restore the fp32 master partition too, or the next step would overwrite the loaded weights
            # ZeRO reads entry dp_rank of a per-rank list (rigid checkpoints: only its own)
            opt.load_state_dict([None] * rank + [state], load_from_fp32_weights=True)
            if self.stage == 3:
                opt.checkpoint_event_epilogue()  # the load re-partitions the weights kept whole on every rank
        else:
            opt.load_state_dict(state)

    def gathered(
        self, params: Iterable[torch.nn.Parameter], modifier_rank: int | None = None
    ) -> AbstractContextManager:
        if self.stage != 3:
            return nullcontext()
        import deepspeed
        from deepspeed.runtime.zero.partition_parameters import ZeroParamStatus

        params = list(params)
        # a forward pass outside training (the probe) can leave prefetched weights in flight, which cannot be
        # gathered again: settle them first (a full release costs ~0.2 s here, so only when needed)
        if any(p.ds_status == ZeroParamStatus.INFLIGHT for p in params):
            self.engine.empty_partition_cache()
        return deepspeed.zero.GatheredParameters(params, modifier_rank=modifier_rank)

    def close(self) -> None:
        self.engine.destroy()  # its hooks and buffers, so the next lease's engine starts clean in this process


def build_backend(
    learner: LearnerConfig,
    dtype: str,
    max_grad_norm: float,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    world_size: int,
) -> Backend:
    """The learner section's backend around the policy's model and optimizer (``dtype``: model.dtype)."""
    if learner.backend == "deepspeed":
        return DeepSpeedBackend(model, optimizer, learner, dtype, max_grad_norm)
    return TorchBackend(model, optimizer, max_grad_norm, world_size)
