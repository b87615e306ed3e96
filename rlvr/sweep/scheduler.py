"""Runs a sweep's pending trials on Ray: one placement group and one task per attempt, retries are ours.

Each attempt is a Ray task (max_retries=0) inside a placement group sized from the trial's config, with
placement_group_capture_child_tasks so the actors the trial creates land in its bundles. Groups are asked for
one at a time in ledger order; while one waits for room, no later trial jumps the queue. A failed attempt
(exception, worker or node death) is retried from the trial's last checkpoint until max_attempts failures.

With ``pools`` (rlvr.sweep.pools, the default of ``rlvr sweep``) an attempt is instead a call on a warm pool's
host actor, whose placement group, engines, learners and reward actors outlive the trial; a trial whose pool
key has an idle pool starts on it at once, ahead of trials that wait for room (a waiting group gives way to it).
A new pool is placed first for a trial whose key no pool serves, so pools of different keys run side by side
(the demo's keep about one core busy each: its actors take turns) rather than a second pool of a busy key.
With tenancy (``tenants`` > 1) a tenant pool has room for that many trials of its key at once; each attempt gets
a tenant slot of it, which the ledger records beside the pool. Against ``max_concurrent`` a tenant pool's running
tenants count as one trial (they take turns on one engine batch and one learner process, about what one trial
keeps busy), and a trial of a key joins a pool that already runs tenants before an empty one.

Stopping: SIGTERM or Ctrl-C to the controller cancels the running tasks without force, which raises SIGINT
in each; the task turns that into the SIGTERM the trial handles by checkpointing, waits up to ``stop_grace_s``
and marks the trials pending. Running the same sweep again resumes them; done trials are never re-run.
"""

from __future__ import annotations

import logging
import re
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import ray
from ray.util.placement_group import PlacementGroup, placement_group, placement_group_table, remove_placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from rlvr.config.grid import TrialSpec
from rlvr.config.layout import RunLayout, TrialLayout
from rlvr.config.resources import trial_bundles
from rlvr.config.schema import SweepConfig, TrialConfig
from rlvr.errors import TrialPreempted
from rlvr.storage import RunStorage
from rlvr.sweep.ledger import Ledger, end_attempt, start_attempt
from rlvr.sweep.pools import Pool, SweepPools

log = logging.getLogger("rlvr.sweep")

TrialFn = Callable[[TrialConfig, str], dict]
MAX_ERROR_CHARS = 500
PLACE_WAIT_S = 0.1  # long enough for a group that fits to be placed, short enough not to stall the poll loop


def _sigint_as_sigterm(signum: int, frame: Any) -> None:
    """ray.cancel raises SIGINT in the task; hand it to the trial's SIGTERM handler so it checkpoints."""
    handler = signal.getsignal(signal.SIGTERM)
    if callable(handler):
        handler(signal.SIGTERM, frame)
    else:
        raise KeyboardInterrupt


@ray.remote(max_retries=0)
def _attempt(trial_fn: TrialFn, cfg_json: str, trial_dir: str) -> dict:
    signal.signal(signal.SIGINT, _sigint_as_sigterm)
    return trial_fn(TrialConfig.model_validate_json(cfg_json), trial_dir)


def _is_preemption(err: BaseException) -> bool:
    cause = err.cause if isinstance(err, ray.exceptions.RayTaskError) else err
    return isinstance(cause, TrialPreempted)


def _describe(err: BaseException) -> str:
    """One line for the ledger and the table (the traceback is in the job log): type and first line of the cause."""
    cause = err.cause if isinstance(err, ray.exceptions.RayTaskError) and err.cause is not None else err
    lines = [ln.strip() for ln in re.sub(r"\x1b\[[0-9;]*m", "", str(cause)).splitlines() if ln.strip()]
    return f"{type(cause).__name__}: {lines[0] if lines else ''}"[:MAX_ERROR_CHARS]


@dataclass
class _Attempt:
    spec: TrialSpec
    pg: PlacementGroup
    ready: ray.ObjectRef | None
    task: ray.ObjectRef | None = None
    pool: Pool | None = None
    slot: int | None = None  # its tenant slot in a tenant pool


class SweepScheduler:
    """Drives pending trials to done or failed, writing every change to the ledger."""

    def __init__(
        self,
        cfg: SweepConfig,
        specs: list[TrialSpec],
        storage: RunStorage,
        trial_fn: TrialFn,
        on_change: Callable[[dict[str, dict]], None] = lambda records: None,
        poll_s: float = 0.5,
        stop_grace_s: float = 120.0,
        pools: bool = False,
    ):
        self.cfg = cfg
        self.specs = specs
        self.storage = storage
        self.ledger = Ledger(storage)
        self.trial_fn = trial_fn
        self.on_change = on_change
        self.poll_s = poll_s
        self.stop_grace_s = stop_grace_s
        self.stop_requested = threading.Event()
        self.records: dict[str, dict] = {}
        self.running: dict[str, _Attempt] = {}
        self.placing: _Attempt | None = None
        self._requested: list[dict[str, float]] | None = None
        self.pools = SweepPools(cfg.cpus_per_trial, cfg.tenants) if pools else None

    def trial_dir(self, spec: TrialSpec) -> str:
        return self.storage.uri_of(RunLayout.trial(spec.trial_id))

    def request_stop(self, *_: Any) -> None:
        self.stop_requested.set()

    def run(self) -> dict[str, dict]:
        self.records = self.ledger.sync(self.specs)
        previous = {s: signal.signal(s, self.request_stop) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            while not self.stop_requested.is_set() and (self._pending() or self.running or self.placing):
                self._place_next()
                self._collect(self.poll_s)
                self._refresh_progress()
                self._autoscale()
                self.on_change(self.records)
            if self.stop_requested.is_set():
                self._stop_all()
        finally:
            for s, h in previous.items():
                signal.signal(s, h)
            if self.pools is not None:
                self.pools.close()
            self._release_autoscaler()
            self.on_change(self.records)
        return self.records

    def _pending(self) -> list[TrialSpec]:
        busy = set(self.running) | ({self.placing.spec.trial_id} if self.placing else set())
        return [s for s in self.specs if self.records[s.trial_id]["status"] == "pending" and s.trial_id not in busy]

    def _bundles(self, spec: TrialSpec) -> list[dict[str, float]]:
        return trial_bundles(spec.config, self.cfg.cpus_per_trial)

    def _place_next(self) -> None:
        """Start every trial that can start now: with pools, first each one whose key has an idle pool; then
        groups the cluster can place, in ledger order (with pools, a trial whose key no pool serves first);
        stop at the first group that must wait for room."""
        while True:
            if self.pools is not None and self._lease_idle_pool():
                continue
            if self.placing is None:
                pending = self._pending()
                if not pending or self._at_limit():
                    return
                spec = self.pools.unserved(pending) if self.pools is not None else pending[0]
                pg = placement_group(self._bundles(spec), strategy=spec.config.placement, name=f"trial-{spec.trial_id}")
                self.placing = _Attempt(spec, pg, pg.ready())
            if not ray.wait([self.placing.ready], timeout=PLACE_WAIT_S)[0]:
                if self.pools is not None:
                    self.pools.retire_idle()  # no pending trial needs an idle pool's key: its room is worth more
                return
            if self.pools is not None:
                self.placing.pool = self.pools.add(self.placing.spec, self.placing.pg)
            self._launch(self.placing)
            self.placing = None

    def _at_limit(self, joining: Pool | None = None) -> bool:
        """Whether max_concurrent is reached. A tenant pool's running tenants count as one (they take turns on
        its one engine batch and one learner process), so a trial joining one adds nothing."""
        if self.cfg.max_concurrent is None or (joining is not None and joining.slots):
            return False
        units = {att.pool.name if att.pool is not None else tid for tid, att in self.running.items()}
        return len(units) >= self.cfg.max_concurrent

    def _lease_idle_pool(self) -> bool:
        """Start a pending trial (the one being placed first) on an idle pool of its key; True if one started.
        A group still waiting for room gives way: the idle pool is that room, and retiring it would waste a start.
        Otherwise a trial starts within max_concurrent (joining a tenant pool that runs tenants always is)."""
        if self.placing is not None:
            if ray.wait([self.placing.ready], timeout=0)[0]:
                return False  # its group is placed: it starts first
        waiting = [self.placing.spec] if self.placing is not None else []

        def room(pool: Pool | None) -> bool:
            return pool is not None and (self.placing is not None or not self._at_limit(pool))

        hit = next(((s, p) for s in waiting + self._pending() if room(p := self.pools.idle(s))), None)
        if hit is None:
            return False
        if self.placing is not None:
            remove_placement_group(self.placing.pg)
            self.placing = None
        self._launch(_Attempt(hit[0], hit[1].pg, None, pool=hit[1]))
        return True

    def _launch(self, att: _Attempt) -> None:
        spec = att.spec
        node = placement_group_table(att.pg)["bundles_to_node_id"].get(0)
        if att.pool is not None:
            att.slot = self.pools.lease(att.pool)
            att.task = att.pool.host.run.options(name=f"trial {spec.label}").remote(
                spec.config.model_dump_json(), self.trial_dir(spec), att.slot
            )
        else:
            strategy = PlacementGroupSchedulingStrategy(
                att.pg, placement_group_bundle_index=0, placement_group_capture_child_tasks=True
            )
            att.task = _attempt.options(
                num_cpus=self.cfg.cpus_per_trial, scheduling_strategy=strategy, name=f"trial {spec.label}"
            ).remote(self.trial_fn, spec.config.model_dump_json(), self.trial_dir(spec))
        rec = start_attempt(
            self.records[spec.trial_id], node, att.pool.name if att.pool is not None else None, slot=att.slot
        )
        self.records[spec.trial_id] = self.ledger.put(rec)
        self.running[spec.trial_id] = att
        log.info(
            "trial_started id=%s label=%s attempt=%d node=%s pool=%s slot=%s",
            spec.trial_id,
            spec.label,
            rec["attempts"],
            node,
            rec.get("pool"),
            att.slot,
        )

    def _collect(self, timeout: float) -> None:
        """Finish attempts that ended; return early too when the group being placed becomes ready."""
        refs = {att.task: tid for tid, att in self.running.items()}
        watch = list(refs) + ([self.placing.ready] if self.placing else [])
        if not watch:
            time.sleep(timeout)
            return
        ray.wait(watch, num_returns=1, timeout=timeout)
        finished = ray.wait(list(refs), num_returns=len(refs), timeout=0)[0] if refs else []
        for ref in finished:
            self._finish(refs[ref], ref)

    def _finish(self, tid: str, ref: ray.ObjectRef) -> None:
        att = self.running.pop(tid)
        rec = self.records[tid]
        try:
            final = ray.get(ref)
        except ray.exceptions.RayError as err:
            stopping = self.stop_requested.is_set()
            outcome = "stopped" if stopping else "preempted" if _is_preemption(err) else "failed"
            rec = end_attempt(rec, outcome, _describe(err), self.cfg.max_attempts)
            host_died = isinstance(err, ray.exceptions.RayActorError)
        else:
            rec = end_attempt(rec, "done", None, self.cfg.max_attempts)
            rec["final"] = final
            host_died = False
        if att.pool is not None:
            self.pools.give_back(att.pool, att.slot, host_died)
        else:
            remove_placement_group(att.pg)
        self._read_progress(rec)
        self.records[tid] = self.ledger.put(rec)
        log.info(
            "trial_ended id=%s status=%s attempts=%d step=%s error=%s",
            tid,
            rec["status"],
            rec["attempts"],
            rec["step"],
            rec["error"],
        )

    def _read_progress(self, rec: dict) -> bool:
        """Copy the trial's own progress file (step, reward, checkpoint) into its record; True if it moved."""
        progress = self.storage.read_json(RunLayout.trial(rec["trial_id"], TrialLayout.PROGRESS))
        if not progress or progress.get("step") == rec["step"] and progress.get("reward") == rec.get("reward"):
            return False
        rec.update(step=progress["step"], reward=progress.get("reward"))
        if progress.get("checkpoint"):
            rec["last_checkpoint"] = progress["checkpoint"]
        return True

    def _refresh_progress(self) -> None:
        for tid in self.running:
            if self._read_progress(self.records[tid]):
                self.records[tid] = self.ledger.put(self.records[tid])

    def _autoscale(self) -> None:
        if self.cfg.autoscale:
            from ray.autoscaler.sdk import request_resources

            waiting = self._pending() + ([self.placing.spec] if self.placing else [])
            bundles = [b for spec in [a.spec for a in self.running.values()] + waiting for b in self._bundles(spec)]
            if bundles != self._requested:
                request_resources(bundles=bundles)
                self._requested = bundles

    def _release_autoscaler(self) -> None:
        if self.cfg.autoscale:
            from ray.autoscaler.sdk import request_resources

            request_resources(bundles=[])

    def _stop_all(self) -> None:
        """Ask every running trial to checkpoint, wait for them, and leave them pending for the next run."""
        log.info("sweep_stopping running=%d grace_s=%s", len(self.running), self.stop_grace_s)
        if self.placing is not None:
            remove_placement_group(self.placing.pg)
            self.placing = None
        for att in self.running.values():
            if att.pool is not None:
                att.pool.host.stop.remote()
            else:
                ray.cancel(att.task, force=False, recursive=False)
        deadline = time.time() + self.stop_grace_s
        while self.running and time.time() < deadline:
            self._collect(min(self.poll_s, max(deadline - time.time(), 0)))
        for tid in list(self.running):
            att = self.running[tid]
            if att.pool is not None:
                ray.kill(att.pool.host)
            else:
                ray.cancel(att.task, force=True)
            self._finish(tid, att.task)


def run_placed(cfg: TrialConfig, trial_dir: str, trial_fn: TrialFn, cpus_per_trial: float = 1.0) -> dict:
    """One trial outside a sweep (ray_jobs/trial.py): in its own placement group, no ledger, no retries."""
    pg = placement_group(trial_bundles(cfg, cpus_per_trial), strategy=cfg.placement, name=f"trial-{cfg.name}")
    try:
        ray.get(pg.ready())
        strategy = PlacementGroupSchedulingStrategy(
            pg, placement_group_bundle_index=0, placement_group_capture_child_tasks=True
        )
        ref = _attempt.options(num_cpus=cpus_per_trial, scheduling_strategy=strategy).remote(
            trial_fn, cfg.model_dump_json(), trial_dir
        )
        return ray.get(ref)
    finally:
        remove_placement_group(pg)
