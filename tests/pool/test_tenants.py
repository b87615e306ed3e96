"""Tenants in lock-step (rlvr.pool.tenants): trials of different shareable methods run together in one tenant pool,
their generate requests in one mixed-adapter call per engine, give exactly the results each gives alone (fp32 on
CPU: the same metrics.jsonl apart from timings, the same step-N weights; alone = the same config cold, whose
engine has the same adapter rank); a tenant that fails mid-run leaves the others' results unchanged and its slot
serves the next tenant as new; a shared part lost mid-run ends every lease and each tenant resumes from its last
checkpoint on new parts with its solo results; and the sweep runs shareable trials as tenants of one pool, slot in
the ledger."""

from __future__ import annotations

import threading
import time

import pytest
import ray
import yaml

from rlvr.config.grid import TrialSpec
from rlvr.config.layout import TrialLayout
from rlvr.config.schema import SweepConfig
from rlvr.pool.tenants import TenantPool, tenancy_refusal
from rlvr.sweep.controller import ledger_records, run_sweep
from rlvr.trial.controller import TrialController
from rlvr.trial.runner import run_trial

from ..trial.trial_helpers import small_trial
from .test_independence import STEPS, assert_independent

# Three families, each served as a LoRA of rank 16 on the original base: a plain LoRA, a residual init (PiSSA's
# rank-2r export) and a fold (VeRA's vectors folded into its projections).
TENANTS = {
    "lora": ("method.rank=16", "method.alpha=32"),
    "pissa": ("rollout.sync_route=native",),
    "vera": ("method.rank=16", "method.alpha=null", "rollout.sync_route=native"),
}


def trial(method: str, *more: str):
    # a checkpoint every step: a tenant that loses a shared part after step 1 resumes from one
    return small_trial(f"method.name={method}", f"steps={STEPS}", "checkpoint.every_steps=1", *TENANTS[method], *more)


def run_together(pool: TenantPool, runs: dict[str, tuple]) -> dict[str, BaseException]:
    """Each (config, trial_dir) of ``runs`` as a tenant of ``pool``, all at once; the errors they raised."""
    return {name: err for name, err in zip(runs, pool.run(list(runs.values()))) if err is not None}


def test_which_trials_can_be_tenants():
    assert tenancy_refusal(trial("lora")) is None
    assert "DoRA" in tenancy_refusal(small_trial("method.name=dora"))
    # never rewritten to join: PiSSA's own route is converted, so it needs rollout.sync_route: native
    assert "sync route is converted" in tenancy_refusal(small_trial("method.name=pissa"))
    assert tenancy_refusal(trial("pissa")) is None
    with pytest.raises(ValueError, match="tenants: 2 trials share a warm pool"):
        SweepConfig(pools=False, tenants=2)


@pytest.fixture(scope="module")
def solo_runs(local_ray, tmp_path_factory):
    runs = {}
    for method in TENANTS:
        runs[method] = tmp_path_factory.mktemp(f"solo-{method}")
        run_trial(trial(method), str(runs[method]))
    return runs


@pytest.mark.slow
def test_tenants_together_give_their_solo_results(solo_runs, tmp_path):
    pool = TenantPool("together", tenants=len(TENANTS))
    try:
        errors = run_together(pool, {m: (trial(m), tmp_path / m) for m in TENANTS})
        assert not errors, errors
        batcher = pool.parts.batcher
        assert batcher.flushes < batcher.requests, "the tenants' requests never went out together"
    finally:
        pool.close()
    for method in TENANTS:
        assert_independent(tmp_path / method, solo_runs[method])
        assert (tmp_path / method / TrialLayout.STARTUP).exists()
        log = (tmp_path / method / TrialLayout.LOG).read_text()
        assert log.count("trial_step ") == STEPS, "a tenant's trial.log has another tenant's lines"


@pytest.mark.slow
def test_a_failing_tenant_leaves_the_others_unchanged(solo_runs, tmp_path, monkeypatch):
    train_step = TrialController.train_step

    def fail_pissa_at_step_2(self):
        if self.cfg.method.name == "pissa" and self.state.step == 1:
            raise RuntimeError("injected: the tenant fails mid-run")
        return train_step(self)

    pool = TenantPool("failing", tenants=2, lora_rank=16)
    try:
        with monkeypatch.context() as m:
            m.setattr(TrialController, "train_step", fail_pissa_at_step_2)
            errors = run_together(pool, {k: (trial(k), tmp_path / k) for k in ("lora", "pissa")})
        assert set(errors) == {"pissa"} and "injected" in str(errors["pissa"])
        engines = [a._actor_id for a in pool.parts.engines.actors]
        assert not pool.seats and len(pool.learners) == 1, "the failed tenant's learner was kept"
        # the failed tenant's slot (1) serves the next tenant as new, on the same engines
        run_trial(trial("pissa"), str(tmp_path / "after"), pool=pool.seat(1))
        assert engines == [a._actor_id for a in pool.parts.engines.actors]
    finally:
        pool.close()
    assert_independent(tmp_path / "lora", solo_runs["lora"])
    assert_independent(tmp_path / "after", solo_runs["pissa"])


def wait_until(condition, what: str, timeout_s: float = 300) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout_s:.0f} s for {what}")
        time.sleep(0.05)


@pytest.mark.slow
@pytest.mark.timeout(900)  # a tenant left waiting at the barrier of closed parts hangs: fail instead
@pytest.mark.parametrize("lost", ["learner"])  # "engine" passes the same way (CI time: the learner is tenancy's own)
def test_a_lost_shared_part_restarts_every_tenant_from_its_checkpoint(lost, solo_runs, tmp_path, monkeypatch):
    """The pool's learner process (or its engine) is killed once lora and pissa have both checkpointed step 1, while
    vera, leased, has sent no request yet; vera goes on when both have restarted on new parts, so it meets the
    closed parts at their barrier, where the tenants that left must not hold it. Every lease ends, the parts are
    replaced once, each tenant restarts from its last checkpoint (vera from none) and gives its solo results."""
    pool = TenantPool(f"lost-{lost}", tenants=3)
    part = {"learner": lambda: pool.learner, "engine": lambda: pool.parts.engines.actors[0]}[lost]
    logs = {m: tmp_path / m / TrialLayout.LOG for m in TENANTS}
    restarted = lambda m: "restarts=1" in logs[m].read_text()  # noqa: E731 - its new lease started
    train_step, checkpoint, sync = TrialController.train_step, TrialController.checkpoint, TrialController.sync
    # lora and pissa send their first requests together, so one is a step ahead of the other at most (a tenant's
    # first request goes out alone when the others have sent none); the one ahead waits to push its step 2 until
    # the kill, so both meet the lost part in step 2
    started, lock = threading.Barrier(2, timeout=300), threading.Lock()
    held, checkpointed, killed, killed_ids = set(), set(), threading.Event(), []

    def first_step_held(self):
        method = self.cfg.method.name
        if method not in held:
            held.add(method)
            if method == "vera":
                wait_until(lambda: restarted("lora") and restarted("pissa"), "lora and pissa to restart")
            else:
                started.wait()
        return train_step(self)

    def kill_once_both_checkpointed_step_1(self):
        path = checkpoint(self)
        with lock:
            checkpointed.add((self.cfg.method.name, self.state.step))
            if {("lora", 1), ("pissa", 1)} <= checkpointed and not killed.is_set():
                killed_ids.append(part()._actor_id)
                ray.kill(part())
                killed.set()
        return path

    def step_2_pushed_after_the_kill(self, include_base):
        if self.state.step >= 1 and not killed.wait(300):
            raise TimeoutError(f"no {lost} was killed")
        return sync(self, include_base)

    try:
        with monkeypatch.context() as m:
            m.setattr(TrialController, "train_step", first_step_held)
            m.setattr(TrialController, "checkpoint", kill_once_both_checkpointed_step_1)
            m.setattr(TrialController, "sync", step_2_pushed_after_the_kill)
            errors = run_together(pool, {k: (trial(k), tmp_path / k) for k in TENANTS})
        assert not errors, errors
        assert killed_ids[0] != part()._actor_id and pool.leases == 2 * len(TENANTS)
    finally:
        pool.close()
    text = {m: logs[m].read_text() for m in TENANTS}
    assert sum(t.count("pool_discard") for t in text.values()) == 1, "the lost parts were not closed exactly once"
    for method, resumed_from in {"lora": 1, "pissa": 1, "vera": None}.items():
        assert "trial_actor_failed restart=1/" in text[method]
        assert f"resumed_from={resumed_from} restarts=1" in text[method]
        assert_independent(tmp_path / method, solo_runs[method])


@pytest.mark.slow
def test_the_sweep_runs_shareable_trials_as_tenants(solo_runs, tmp_path):
    """pissa with sync_route native joins lora's pool in slot 1, within max_concurrent 1 (a tenant pool's tenants
    count as one); its saved config is the one it was given."""
    specs = [TrialSpec("ten-lora", "lora", trial("lora")), TrialSpec("ten-pissa", "pissa", trial("pissa"))]
    cfg = SweepConfig(name="ten", storage=str(tmp_path), tenants=2, max_concurrent=1)
    rows = run_sweep(cfg, specs=specs, worker_logs=False).to_pylist()
    assert [r["status"] for r in rows] == ["done"] * 2
    records = ledger_records(cfg)
    lora, pissa = records["ten-lora"]["history"][0], records["ten-pissa"]["history"][0]
    assert lora["pool"] == pissa["pool"] and {lora["slot"], pissa["slot"]} == {0, 1}
    assert pissa["started_at"] < lora["ended_at"], "they did not run as tenants together"
    trials = tmp_path / "ten" / "trials"
    saved = yaml.safe_load((trials / "ten-pissa" / TrialLayout.CONFIG).read_text())
    assert saved["rollout"]["sync_route"] == "native"
    assert_independent(trials / "ten-lora", solo_runs["lora"])
    assert_independent(trials / "ten-pissa", solo_runs["pissa"])
