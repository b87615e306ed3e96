"""GenerateBatcher: the tenant pool's barrier (docs/architecture.md, tenant pools).

Each tenant of a pool (rlvr.pool.tenants) hands its generate requests here instead of to the engines. When every
active tenant (one whose lease has sent a request) has a request not yet sent, all of them go out together: ONE
``generate_mixed`` call per engine actor, each tenant's prompts split across the engines as EngineSet splits a solo
trial's (so every engine sees, per tenant, the very requests and seeds it would see solo), each request with its
tenant's adapter slot. A tenant that leaves (or fails) deregisters, which re-checks the condition, so a tenant only
ever waits on the others here, and never on one that is gone: the barrier cannot deadlock. Thread-safe: each
tenant runs in a thread of its own.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import ray

from rlvr.rollout.types import Completion, SamplingSpec, SlotBatch
from rlvr.trial.actors import engine_parts, in_prompt_order

log = logging.getLogger("rlvr.pool")


@dataclass
class Request:
    """One tenant's generate request; ``sent`` is set once it went out with the others."""

    slot: int
    prompts: list[list[int]]
    spec: SamplingSpec
    submitted: float = field(default_factory=time.perf_counter)
    sent: threading.Event = field(default_factory=threading.Event)
    waited: float = 0.0  # seconds at the barrier
    calls: list[tuple[list[int], Any, int]] = field(default_factory=list)  # (its prompts, engine call, batch index)


class GenerateBatcher:
    def __init__(self, actors: list):
        self.actors = actors
        self._lock = threading.Lock()
        self._leased: set[int] = set()  # slots whose tenants may submit
        self._pending: dict[int, list[Request]] = {}  # active tenants' requests not yet sent
        self.waits: dict[int, float] = {}  # seconds each slot's requests waited at the barrier, summed
        self.flushes = self.requests = 0  # flushes (one generate call per engine each), requests sent

    def register(self, slot: int) -> None:
        """A tenant's lease started; it joins the barrier with its first request (until then, while its lease
        starts, the others do not wait for it)."""
        with self._lock:
            if slot in self._leased:
                raise RuntimeError(f"generate batcher: slot {slot} is already registered")
            self._leased.add(slot)
            self.waits[slot] = 0.0

    def deregister(self, slot: int) -> None:
        """The tenant left: the others no longer wait for it (its unsent requests are dropped)."""
        with self._lock:
            self._leased.discard(slot)
            if self._pending.pop(slot, None) is not None:
                self._flush_if_ready()

    def submit(self, slot: int, prompts: list[list[int]], spec: SamplingSpec) -> Request:
        """Queue a request of ``slot``; returns at once (``collect`` waits for it)."""
        request = Request(slot, prompts, spec)
        with self._lock:
            if slot not in self._leased:
                raise RuntimeError(f"generate batcher: slot {slot} is not registered (its lease ended)")
            self._pending.setdefault(slot, []).append(request)
            self._flush_if_ready()
        return request

    def collect(self, request: Request) -> list[list[Completion]]:
        """The request's groups in prompt order, as EngineSet.collect gives a solo trial's."""
        request.sent.wait()
        results = ray.get([ref for _, ref, _ in request.calls])
        mine = [batches[index] for batches, (_, _, index) in zip(results, request.calls)]
        return in_prompt_order([part for part, _, _ in request.calls], mine)

    def _flush_if_ready(self) -> None:
        """With the lock held: send every pending request when each registered tenant has one."""
        if not self._pending or not all(self._pending.values()):
            return
        requests = [r for slot in sorted(self._pending) for r in self._pending[slot]]
        for queue in self._pending.values():
            queue.clear()
        per_engine: list[list[tuple[Request, list[int]]]] = [[] for _ in self.actors]
        for r in requests:
            for engine, part in enumerate(engine_parts(len(r.prompts), len(self.actors))):
                per_engine[engine].append((r, part))
        for actor, items in zip(self.actors, per_engine):
            if items:
                ref = actor.generate_mixed.remote(
                    [SlotBatch(r.slot, [r.prompts[i] for i in part], r.spec) for r, part in items]
                )
                for index, (r, part) in enumerate(items):
                    r.calls.append((part, ref, index))
        now = time.perf_counter()
        self.flushes += 1
        self.requests += len(requests)
        for r in requests:
            r.waited = now - r.submitted
            self.waits[r.slot] += r.waited
            r.sent.set()
        log.debug("pool_flush tenants=%s requests=%d", sorted({r.slot for r in requests}), len(requests))
