"""One data-parallel learner rank: the policy, its optimizer and schedule, and the RL update on a rollout batch.

A step reads top to bottom in ``train_step``: score the batch once under the sampling policy (old logprobs,
and the reference with adapters off when a KL term is on), then ``ppo_epochs`` passes of ``mini_batches``
optimizer steps, each accumulating micro-batch gradients normalised by the whole mini-batch across ranks.
"""

from __future__ import annotations

import copy
import gc
import math
from collections.abc import Callable
from typing import Any

import torch

from rlvr.algorithms.losses import loss_normaliser, policy_loss
from rlvr.learner.backends import build_backend, free_port, init_process_group
from rlvr.learner.batch import RolloutBatch, collate, micro_batches
from rlvr.learner.logprobs import token_logprobs
from rlvr.learner.spec import LearnerSpec
from rlvr.models.loading import load_model
from rlvr.peft_methods.policy import build_policy
from rlvr.sync.digest import weights_digest
from rlvr.sync.update import PolicyUpdate


def resolve_device(choice: str) -> torch.device:
    if choice == "cuda" or (choice == "auto" and torch.cuda.is_available()):
        return torch.device("cuda", 0)  # Ray gives each learner actor its own visible GPU
    return torch.device("cpu")


def _to_cpu_copy(tree: Any) -> Any:
    """A detached CPU snapshot of nested state (state_dicts hold live tensors that later steps mutate)."""
    if isinstance(tree, torch.Tensor):
        return tree.detach().to("cpu", copy=True)
    if isinstance(tree, dict):
        return {k: _to_cpu_copy(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(_to_cpu_copy(v) for v in tree)
    return copy.deepcopy(tree)


def release_cached_memory(device: torch.device) -> float:
    """Hand the CUDA caching allocator's free blocks back to the driver; the GiB released (0 off CUDA)."""
    if device.type != "cuda":
        return 0.0
    gc.collect()  # reference cycles (autograd graphs held by exceptions, closures) would keep blocks in use
    before = torch.cuda.memory_reserved(device)
    torch.cuda.empty_cache()
    return (before - torch.cuda.memory_reserved(device)) / 2**30


def build_scheduler(optimizer: torch.optim.Optimizer, schedule: str, warmup: int, total: int):
    """Linear warmup, then constant / cosine to 0 / linear to 0 over the remaining ``total - warmup`` steps."""
    from torch.optim import lr_scheduler as S

    rest = max(total - warmup, 1)
    main = {
        "constant": lambda: S.ConstantLR(optimizer, factor=1.0, total_iters=0),
        "cosine": lambda: S.CosineAnnealingLR(optimizer, T_max=rest),
        "linear": lambda: S.LinearLR(optimizer, start_factor=1.0, end_factor=0.0, total_iters=rest),
    }[schedule]
    if warmup == 0:
        return main()
    warm = S.LinearLR(optimizer, start_factor=1.0 / (warmup + 1), end_factor=1.0, total_iters=warmup)
    return S.SequentialLR(optimizer, [warm, main()], milestones=[warmup])


class Learner:
    """Rank ``rank`` of ``world_size``; ranks > 1 (or the DeepSpeed backend) join a process group at
    ``master_addr:master_port`` (a free local port when world_size is 1)."""

    def __init__(
        self,
        spec: LearnerSpec,
        model_path: str,
        rank: int = 0,
        world_size: int = 1,
        master_addr: str = "127.0.0.1",
        master_port: int | None = None,
        keep_base: bool = False,
        model_source: Callable[[LearnerSpec], torch.nn.Module] | None = None,
    ):
        self.spec, self.rank, self.world_size, self.model_path = spec, rank, world_size, model_path
        self.device = resolve_device(spec.learner.device)
        if self.device.type == "cpu":
            torch.set_num_threads(spec.learner.threads)
        if spec.learner.backend == "deepspeed" or world_size > 1:
            port = master_port if master_port is not None else free_port()
            init_process_group(rank, world_size, master_addr, port, self.device)
        # keep_base (a warm pool's learner): the pristine base stays on the host, so that each lease builds its
        # policy on a copy of it instead of reading the checkpoint again; its digest proves no lease changed it
        self._base = load_model(spec.model, model_path, "cpu") if keep_base else None
        self._base_digest = weights_digest(self._base.state_dict()) if keep_base else None
        # model_source (a tenant learner's, rlvr.learner.tenants): the model a spec's policy is built on comes from
        # it, a view of a base that one process holds for several policies
        self._model_source = model_source
        self._build(spec)

    def _fresh_model(self) -> torch.nn.Module:
        if self._model_source is not None:
            return self._model_source(self.spec)
        if self._base is None:
            return load_model(self.spec.model, self.model_path, self.device)
        if weights_digest(self._base.state_dict()) != self._base_digest:
            raise RuntimeError("learner: the pristine base copy changed during a lease; this learner must be replaced")
        return copy.deepcopy(self._base).to(self.device)

    def _build(self, spec: LearnerSpec) -> None:
        """The policy, optimizer, schedule and backend of ``spec`` on a pristine base, RNG from its seed."""
        self.spec = spec
        model = self._fresh_model()
        # same seed on every rank: adapter initialisation must agree before the first step (seeded after the
        # model is read, so a cold learner and a warm pool's draw the same adapter)
        torch.manual_seed(spec.seed)
        if spec.learner.gradient_checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        algo = spec.algorithm
        self.policy = build_policy(model, spec.method, total_steps=spec.steps * algo.ppo_epochs * algo.mini_batches)
        self.optimizer = self.policy.make_optimizer(spec.lr, algo.weight_decay, tuple(algo.betas))
        self.scheduler = build_scheduler(self.optimizer, algo.lr_schedule, algo.warmup_steps, spec.steps)
        self.backend = build_backend(
            spec.learner, spec.model.dtype, algo.max_grad_norm, self.policy.model, self.optimizer, self.world_size
        )
        # per-rank dropout streams
        torch.manual_seed(spec.seed + self.rank)
        self.step = 0  # train_step calls (policy versions)
        self.optimizer_steps = 0

    def reset(self, spec: LearnerSpec) -> None:
        """A warm pool's lease: drop the previous trial's policy, optimizer and backend, and build ``spec``'s on
        the pristine base, exactly as a learner started for it would be. The model and learner sections must be
        the ones this learner was started with (they shape the process: device, threads, process group)."""
        if self._base is None:
            raise RuntimeError("learner: reset needs a learner started with keep_base=True (a warm pool's)")
        for section in ("model", "learner"):
            if getattr(spec, section) != getattr(self.spec, section):
                raise ValueError(
                    f"learner reset: {section} differs from the pool's; such a trial needs a pool of its own"
                )
        self.release()
        self._build(spec)

    def release(self) -> None:
        """Let go of the policy, optimizer, schedule and backend (before a reset builds others, or for good)."""
        self.close_transfer()  # its source is the policy being dropped
        self.backend.close()
        del self.policy, self.optimizer, self.scheduler, self.backend
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    # ---- scoring -------------------------------------------------------------------------------------

    def _token_logprobs(self, t: dict[str, torch.Tensor], temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-probabilities of the targets and (detached) token entropies on the [B, T-1] grid, at the
        completion tokens in the loss (0 elsewhere), without a full-vocabulary logits tensor."""
        head = self.policy.model.get_output_embeddings()
        return token_logprobs(self.backend.module, head, t, temperature, self.spec.learner.logits_chunk_tokens)

    @torch.no_grad()
    def _score_frozen(self, t: dict[str, torch.Tensor]) -> None:
        """Old logprobs (the sampling policy) and the reference logprobs, deterministic (no dropout)."""
        temperature = self.spec.temperature
        self.policy.model.eval()
        if not self._on_policy():
            t["old_logp"] = self._token_logprobs(t, temperature)[0]
        if self.spec.algorithm.kl_coef > 0:
            with self.policy.disable_adapter():
                t["ref_logp"] = self._token_logprobs(t, temperature)[0]
        self.policy.model.train()

    def _on_policy(self) -> bool:
        # one optimizer step per batch: the sampling policy is the current one, so old = logp.detach()
        return self.spec.algorithm.ppo_epochs == 1 and self.spec.algorithm.mini_batches == 1

    @torch.no_grad()
    def logprobs(self, prompt_ids: list[int], completion_ids: list[int]) -> list[float]:
        """The current policy's log-probabilities of ``completion_ids`` after ``prompt_ids`` (temperature 1)."""
        batch = RolloutBatch([list(prompt_ids)], [list(completion_ids)], [[0.0] * len(completion_ids)], [0.0], [True])
        t = collate(batch, self.device)
        self.policy.model.eval()
        logp = self._token_logprobs(t, 0.0)[0]
        self.policy.model.train()
        start = len(prompt_ids) - 1
        return logp[0, start : start + len(completion_ids)].tolist()

    # ---- the update ----------------------------------------------------------------------------------

    def _global(self, value: float, op: str = "sum") -> float:
        if self.world_size == 1:
            return value
        x = torch.tensor([value], dtype=torch.float64, device=self.device)
        torch.distributed.all_reduce(
            x, op=torch.distributed.ReduceOp.MAX if op == "max" else torch.distributed.ReduceOp.SUM
        )
        return float(x.item())

    def train_step(self, batch: RolloutBatch) -> dict[str, float]:
        """One policy update from this rank's share of a rollout batch; returns token-weighted metrics (and,
        colocated, the GiB of cached memory handed back for the engine's wake-up)."""
        metrics = self._update(batch)
        if self.spec.colocated:  # the step's tensors died with _update's frame: their blocks are only cached now
            metrics["released_gib"] = release_cached_memory(self.device)
        return metrics

    def _update(self, batch: RolloutBatch) -> dict[str, float]:
        algo = self.spec.algorithm
        if len(batch) < algo.mini_batches:
            raise ValueError(
                f"rollout batch: {len(batch)} completions cannot fill algorithm.mini_batches={algo.mini_batches}"
            )
        budget = self.spec.micro_batching
        plan = []  # per mini-batch: (micro-batch tensors, global normaliser)
        for mini in batch.chunks(algo.mini_batches):
            groups = micro_batches(mini, budget.sequences, budget.tokens)
            # every rank runs as many micro-batches (backward calls, collectives) as the busiest one
            busiest = int(self._global(len(groups), op="max"))
            groups = micro_batches(mini, budget.sequences, budget.tokens, at_least=busiest)
            micros = [collate(m, self.device) for m in groups]
            for t in micros:
                self._score_frozen(t)
            local = sum(loss_normaliser(algo.loss, t["loss_mask"], self.spec.dr_grpo_norm) for t in micros)
            plan.append((micros, self._global(local)))

        sums: dict[str, float] = {}
        tokens = 0
        ratio_max, ratio_min, losses, norms = -math.inf, math.inf, [], []
        self.policy.model.train()
        for _ in range(algo.ppo_epochs):
            for micros, normaliser in plan:
                step_loss = 0.0
                extra = self.policy.extra_loss()
                for i, t in enumerate(micros):
                    logp, entropy = self._token_logprobs(t, self.spec.temperature)
                    out = policy_loss(
                        logp,
                        logp.detach() if self._on_policy() else t["old_logp"],
                        t["engine_logprobs"],
                        t["advantages"],
                        t["loss_mask"],
                        algo,
                        max(normaliser, 1e-8),
                        ref_logp=t.get("ref_logp"),
                        entropy=entropy,
                    )
                    # DeepSpeed averages gradients over ranks; the normaliser is already global
                    loss = out.loss * self.world_size
                    if i == 0 and extra is not None:
                        loss = loss + extra
                    self.backend.backward(loss)
                    step_loss += out.loss.item()
                    tokens += out.tokens
                    for k, v in out.metrics.items():
                        sums[k] = sums.get(k, 0.0) + v * out.tokens
                    ratio_max = max(ratio_max, out.metrics["ratio_max"])
                    ratio_min = min(ratio_min, out.metrics["ratio_min"])
                self.optimizer_steps += 1
                norms.append(self.backend.step(lambda: self.policy.after_optimizer_step(self.optimizer_steps)))
                losses.append(step_loss)
        lr = self.optimizer.param_groups[0]["lr"]
        self.scheduler.step()
        self.step += 1
        metrics = {k: v / max(tokens, 1) for k, v in sums.items()}
        metrics.update(
            loss=sum(losses) / len(losses),
            grad_norm=sum(norms) / len(norms),
            ratio_max=ratio_max,
            ratio_min=ratio_min,
            lr=lr,
            tokens=float(tokens // algo.ppo_epochs),
            step=float(self.step),
        )
        return metrics

    # ---- export and checkpoint state -----------------------------------------------------------------

    def _trainable(self) -> list[torch.nn.Parameter]:
        return [p for p in self.policy.model.parameters() if p.requires_grad]

    def export(self, version: int, include_base: bool) -> PolicyUpdate | None:
        """The policy for the engines (rank 0; the other ranks take part in gathering sharded weights)."""
        update = self.policy.export(version, include_base, route=self.spec.route, gather=self.backend.gathered)
        return update if self.rank == 0 else None

    def open_transfer(
        self,
        transport: str,
        engine_actors: list,
        gpus_per_engine: int,
        endpoints: list[tuple[str, int]],
        buffer_bytes: int,
    ) -> None:
        """Join vLLM's weight transfer to the engine actors (rlvr.learner.transfer; rank 0 sends, the other ranks
        take part in the gathers and, for IPC, the handle all-gather)."""
        from rlvr.learner.transfer import WeightSender

        self.close_transfer()
        self._sender = WeightSender(
            transport,
            self.policy,
            self.backend.gathered,
            self.rank,
            engine_actors,
            gpus_per_engine,
            endpoints,
            buffer_bytes,
        )

    def send_weights(self) -> None:
        """Push the whole merged policy to the engines through vLLM's transfer (open_transfer first)."""
        if getattr(self, "_sender", None) is None:
            raise RuntimeError("learner: send_weights before open_transfer")
        self._sender.send()

    def close_transfer(self) -> None:
        if getattr(self, "_sender", None) is not None:
            self._sender.close()
        self._sender = None

    def record(self) -> dict[str, Any]:
        """The policy's resolved, verified adapter config and parameter counts (for the trial record)."""
        return self.policy.record()

    def state(self, with_weights: bool = True) -> dict[str, Any]:
        """Everything a resumed run needs to continue exactly: weights, optimizer, schedule, counters, RNG."""
        state = {
            "optimizer": _to_cpu_copy(self.backend.optimizer_state()),
            "scheduler": _to_cpu_copy(self.scheduler.state_dict()),
            "step": self.step,
            "optimizer_steps": self.optimizer_steps,
            "rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state() if self.device.type == "cuda" else None,
        }
        with self.backend.gathered(self._trainable()):
            if with_weights:
                state["trainable"] = _to_cpu_copy(self.policy.trainable_state_dict())
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        for key in ("trainable", "optimizer", "scheduler", "step", "optimizer_steps", "rng"):
            if key not in state:
                raise ValueError(f"learner state: missing {key!r}; pass a dict made by Learner.state()")
        # residual methods rewrite their base weights from the loaded initial factors: gather everything
        with self.backend.gathered(self.policy.model.parameters(), modifier_rank=0):
            self.policy.load_trainable_state_dict({k: v.to(self.device) for k, v in state["trainable"].items()})
        self.backend.load_optimizer_state(state["optimizer"], self.rank)
        self.scheduler.load_state_dict(state["scheduler"])
        self.step, self.optimizer_steps = state["step"], state["optimizer_steps"]
        torch.set_rng_state(state["rng"])
        if state["cuda_rng"] is not None and self.device.type == "cuda":
            torch.cuda.set_rng_state(state["cuda_rng"])
