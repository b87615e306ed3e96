"""Several trials' learners in one process (a tenant pool's): the base held once, each tenant's own policy,
optimizer, schedule and RNG, and results bitwise those of the tenant's solo ``Learner``.

Each tenant is an ordinary ``Learner`` whose model comes from ``TenantLearners``: a structural copy of the base
whose weights are new Parameters on the base's storage (``aliased_copy``), so a peft init that rebinds
``weight.data`` (PiSSA's) leaves the base alone. Two inits write a base weight in place: OLoRA's (peft subtracts
B0 A0 from ``weight.data`` in place when the weight is already fp32) and every residual init's rewrite of W as
W - s B0 A0 (``AdapterPolicy._write_residual_base``, also on a checkpoint load), which MiLoRA's weights get
through alone. So a residual-init tenant (PiSSA, MiLoRA, OLoRA) owns copies of its adapted modules' weights: it
trains on a residual base of its own, by definition. The base's digest, checked after every tenant's build and
state load (the only calls that write frozen weights), catches any other write.

Torch's global RNG is the tenant's during each of its calls and the caller's again after, so a tenant's adapter
draw and dropout stream are exactly its solo run's whatever runs in between. Calls run one at a time (the Ray
actor serialises them); a call that raises drops its tenant, leaving the others as they were.
"""

from __future__ import annotations

import copy
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import ray
import torch

from rlvr.config.methods import method_spec
from rlvr.config.sharing import batch_sharing_refusal
from rlvr.devices import require_cuda
from rlvr.learner.actor import merge_rank_metrics, rank_shards, rank_states
from rlvr.learner.batch import RolloutBatch
from rlvr.learner.learner import Learner, resolve_device
from rlvr.learner.spec import LearnerSpec
from rlvr.models.loading import load_model
from rlvr.peft_methods.build import build_adapted, tuner_layers
from rlvr.sync.digest import weights_digest
from rlvr.sync.update import PolicyUpdate

CALLS = ("train_step", "logprobs", "export", "state", "load_state", "record")
"""The Learner methods a tenant answers through ``TenantLearners.call``."""


def tenant_refusal(spec: LearnerSpec) -> str | None:
    """Why a learner of ``spec`` cannot be a tenant (the field and the reason), or None when it can."""
    why = batch_sharing_refusal(spec.method)
    if why is not None:
        return f"method.name={spec.method.name!r} cannot share a batch: {why}"
    return _process_refusal(spec)


def _process_refusal(spec: LearnerSpec) -> str | None:
    if spec.learner.backend != "torch":
        return f"learner.backend={spec.learner.backend!r}: tenants run on the torch backend (one rank, no DeepSpeed)"
    if spec.learner.num_learners != 1:
        return f"learner.num_learners={spec.learner.num_learners}: a tenant is one rank"
    return None


def aliased_copy(base: torch.nn.Module) -> torch.nn.Module:
    """A structural copy of ``base`` whose parameters and buffers are new tensors on the base's storage."""
    memo: dict[int, Any] = {
        id(p): torch.nn.Parameter(p.detach(), requires_grad=p.requires_grad) for p in base.parameters()
    }
    memo.update({id(b): b.detach() for b in base.buffers()})
    return copy.deepcopy(base, memo)


def adapted_modules(model: torch.nn.Module, spec: LearnerSpec) -> list[str]:
    """The modules ``spec``'s method adapts in ``model`` (from an uninitialised adapter on a throwaway view)."""
    probe = build_adapted(aliased_copy(model), method_spec(spec.method.name), spec.method, spec.steps, initialize=False)
    return list(tuner_layers(probe))


def _rng_state(device: torch.device) -> tuple[torch.Tensor, torch.Tensor | None]:
    return torch.get_rng_state(), torch.cuda.get_rng_state(device) if device.type == "cuda" else None


def _set_rng_state(state: tuple[torch.Tensor, torch.Tensor | None], device: torch.device) -> None:
    torch.set_rng_state(state[0])
    if state[1] is not None:
        torch.cuda.set_rng_state(state[1], device)


@dataclass
class _Tenant:
    learner: Learner | None
    rng: tuple[torch.Tensor, torch.Tensor | None]


class TenantLearners:
    """The base of ``spec.model`` (from ``model_path``), loaded once onto the learner's device, and the tenants
    built on it. ``spec`` is the pool's: every tenant's model and learner sections must equal its."""

    def __init__(self, spec: LearnerSpec, model_path: str):
        why = _process_refusal(spec)  # the pool's method is no tenant's: only its model and learner sections count
        if why is not None:
            raise ValueError(f"tenant learner: {why}")
        self.spec, self.model_path = spec, model_path
        self.device = resolve_device(spec.learner.device)
        # loaded as a solo learner loads its model (host, then the device), so every tenant starts from its bytes
        self.base = load_model(spec.model, model_path, "cpu").to(self.device)
        self._digest = weights_digest(self.base.state_dict())
        self._tenants: dict[int, _Tenant] = {}

    def tenants(self) -> list[int]:
        return sorted(self._tenants)

    def learner(self, tenant: int) -> Learner:
        """``tenant``'s Learner, to inspect (calls go through ``call``, which swaps its RNG in)."""
        return self._entry(tenant).learner

    def _entry(self, tenant: int) -> _Tenant:
        entry = self._tenants.get(tenant)
        if entry is None:
            raise KeyError(f"tenant learner: no tenant {tenant} (never added, dropped, or dropped after an error)")
        return entry

    def add(self, tenant: int, spec: LearnerSpec) -> None:
        """Build ``tenant``'s learner for ``spec``: exactly the Learner a solo run of ``spec`` starts with."""
        if tenant in self._tenants:
            raise ValueError(f"tenant learner: tenant {tenant} is already here; drop it first")
        why = tenant_refusal(spec)
        if why is not None:
            raise ValueError(f"tenant learner: {why}; such a trial runs as a solo learner")
        for section in ("model", "learner"):
            if getattr(spec, section) != getattr(self.spec, section):
                raise ValueError(
                    f"tenant learner: {section} differs from the pool's; such a trial needs a pool of its own"
                )
        entry = _Tenant(None, _rng_state(self.device))
        with self._rng_of(entry):
            entry.learner = Learner(spec, self.model_path, model_source=self._model_for)
        self._tenants[tenant] = entry
        self._check_base(f"building tenant {tenant} ({spec.method.name})")

    def reset(self, tenant: int, spec: LearnerSpec) -> None:
        """``tenant`` rebuilt for ``spec`` (a new lease of its slot), whether or not it was here."""
        self.drop(tenant)
        self.add(tenant, spec)

    def drop(self, tenant: int) -> None:
        """Let go of ``tenant``'s policy, optimizer and schedule (nothing when it is not here)."""
        entry = self._tenants.pop(tenant, None)
        if entry is not None and entry.learner is not None:
            entry.learner.release()

    def call(self, tenant: int, method: str, *args: Any) -> Any:
        """``tenant``'s Learner ``method`` (one of ``CALLS``) with its RNG; if it raises, the tenant is dropped."""
        if method not in CALLS:
            raise ValueError(f"tenant learner: {method!r} is no tenant call; one of {', '.join(CALLS)}")
        entry = self._entry(tenant)
        try:
            with self._rng_of(entry):
                out = getattr(entry.learner, method)(*args)
        except Exception:
            self.drop(tenant)
            raise
        if method == "load_state":  # a residual init rewrites its base weights from the loaded factors
            self._check_base(f"tenant {tenant} loading a state")
        return out

    def _model_for(self, spec: LearnerSpec) -> torch.nn.Module:
        model = aliased_copy(self.base)
        if method_spec(spec.method.name).residual_init:
            for name in adapted_modules(model, spec):
                weight = model.get_submodule(name).weight
                weight.data = weight.data.clone()
        return model

    @contextmanager
    def _rng_of(self, entry: _Tenant):
        outside = _rng_state(self.device)
        _set_rng_state(entry.rng, self.device)
        try:
            yield
        finally:
            entry.rng = _rng_state(self.device)
            _set_rng_state(outside, self.device)

    def _check_base(self, when: str) -> None:
        if weights_digest(self.base.state_dict()) != self._digest:
            raise RuntimeError(
                f"tenant learner: the shared base changed ({when}); every tenant trained on it is invalid and this "
                "learner must be replaced"
            )


class _TenantLearnerHost(TenantLearners):
    def __init__(self, spec: LearnerSpec, model_path: str):
        require_cuda("tenant learner", "model.gpus_per_learner")
        super().__init__(spec, model_path)


TenantLearnerActor = ray.remote(_TenantLearnerHost)
"""TenantLearners as one Ray actor: ``TenantLearnerActor.options(**learner_options(...)).remote(spec, path)``
(rlvr.learner.actor.learner_options: ``learner.threads`` CPUs, the plan's GPUs and bundle)."""


class TenantLearnerGroup:
    """LearnerGroup's interface for one tenant of a ``TenantLearnerActor`` (one rank, the same state format, so
    a checkpoint resumes solo or as a tenant). ``reset(spec)`` builds the tenant, as a warm pool's lease resets its
    learners; ``close`` drops it and leaves the actor (the pool's) up."""

    world_size = 1

    def __init__(self, actor: Any, tenant: int, spec: LearnerSpec):
        self.actor, self.tenant, self.spec = actor, tenant, spec

    def _call(self, method: str, *args: Any) -> Any:
        return ray.get(self.actor.call.remote(self.tenant, method, *args))

    def reset(self, spec: LearnerSpec) -> list[ray.ObjectRef]:
        """The tenant (re)built for ``spec``; returns the pending call."""
        self.spec = spec
        return [self.actor.reset.remote(self.tenant, spec)]

    def train_step(self, batch: RolloutBatch) -> dict[str, float]:
        return self.train_step_result(self.submit_train_step(batch))

    def submit_train_step(self, batch: RolloutBatch) -> list[ray.ObjectRef]:
        (shard,) = rank_shards(batch, self.spec, self.world_size)
        return [self.actor.call.remote(self.tenant, "train_step", shard)]

    def train_step_result(self, pending: list[ray.ObjectRef]) -> dict[str, float]:
        return merge_rank_metrics(ray.get(pending))

    def logprobs(self, prompt_ids: list[int], completion_ids: list[int]) -> list[float]:
        return self._call("logprobs", prompt_ids, completion_ids)

    def export(self, version: int, include_base: bool) -> PolicyUpdate:
        return self._call("export", version, include_base)

    def record(self) -> dict[str, Any]:
        return self._call("record")

    def state(self) -> dict[str, Any]:
        return {"world_size": self.world_size, "ranks": [self._call("state", True)]}

    def load_state(self, state: dict[str, Any]) -> None:
        (own,) = rank_states(state, self.world_size)
        self._call("load_state", own)

    def open_transfer(self, *args: Any) -> None:
        raise RuntimeError(
            "tenant learner: no vLLM weight transfer (NCCL/IPC) for a tenant; its policy reaches the shared engines "
            "as a bucketed native update (the plan's transport must be buckets)"
        )

    def send_weights(self, *args: Any) -> None:
        self.open_transfer()

    def close_transfer(self) -> None:
        pass  # a tenant never opens one

    def close(self) -> None:
        ray.get(self.actor.drop.remote(self.tenant))
