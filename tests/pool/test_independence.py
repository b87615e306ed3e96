"""Independence is the warm pools' contract: a trial that leases a pool after other trials gives exactly the results
of the same trial started cold (fp32 on CPU: the same metrics.jsonl apart from timings, the same step-N weights),
for one method per sync route, and so does a trial run beside another in a sweep; a trial after a failed one in
the same pool is unaffected, and a part lost during a lease is replaced, never reused."""

from __future__ import annotations

import json
import threading
import time

import pytest
import ray

from rlvr.config.grid import TrialSpec
from rlvr.config.layout import TrialLayout
from rlvr.config.schema import SweepConfig
from rlvr.pool.warm import WarmPool, pool_key
from rlvr.sweep.controller import ledger_records, run_sweep
from rlvr.trial.controller import STEP_PHASES, TrialController
from rlvr.trial.runner import run_trial

from ..trial.trial_helpers import COLD_METHODS, read_metrics, read_trainable, two_step_trial

pytestmark = pytest.mark.slow

STEPS = 2  # two_step_trial's
TIMINGS = set(STEP_PHASES) | {"t_step", "tokens_per_s", "time"}
# Each pool runs three trials, so the compared ones lease parts a trial of another route has just used:
# pool A (adapter engines): rslora, then pissa (after native), then lora (after converted, which replaced the
# engines' base); pool B (merged weights): dora, then full (after dora), then dora again (after full).
SEQUENCE = ["rslora", "pissa", "lora", "dora", "full", "dora"]


def assert_independent(got, want) -> None:
    strip = lambda rows: [{k: v for k, v in m.items() if k not in TIMINGS} for m in rows]  # noqa: E731
    assert strip(read_metrics(got)) == strip(read_metrics(want))
    a, b = read_trainable(got, STEPS), read_trainable(want, STEPS)
    assert a.keys() == b.keys() and all(a[k].equal(b[k]) for k in a)


@pytest.fixture(scope="module")
def cold_runs(cold_run):
    """Each compared trial started cold (once per session, tests/conftest.py), before any pool holds the local
    Ray's CPUs."""
    return {method: cold_run(method) for method in COLD_METHODS}


def test_trials_side_by_side_give_the_results_they_give_alone(cold_runs, tmp_path):
    """Both cores: with two trials at once the scheduler places the second pool for dora, whose key no pool
    serves, ahead of pissa, whose key lora's busy pool serves; every trial's results are its cold run's.
    (Before the module's pools below take the local Ray's CPUs.)"""
    methods = ["lora", "pissa", "dora"]
    specs = [TrialSpec(f"side-{m}", m, two_step_trial(m)) for m in methods]
    cfg = SweepConfig(name="side", storage=str(tmp_path), max_concurrent=2, tenants=1)  # solo pools
    rows = run_sweep(cfg, specs=specs, worker_logs=False).to_pylist()
    assert [r["status"] for r in rows] == ["done"] * 3
    records = ledger_records(cfg)
    lora, dora = records["side-lora"]["history"][0], records["side-dora"]["history"][0]
    assert dora["started_at"] < lora["ended_at"] and dora["pool"] != lora["pool"], "they did not run side by side"
    for m in methods:
        assert_independent(tmp_path / "side" / "trials" / f"side-{m}", cold_runs[m])


@pytest.fixture(scope="module")
def pools(cold_runs):
    made: dict[str, WarmPool] = {}
    yield made
    for pool in made.values():
        pool.close()


def warm(pools, cfg, trial_dir):
    pool = pools.setdefault(pool_key(cfg), WarmPool(f"pool-{len(pools)}"))
    run_trial(cfg, str(trial_dir), pool=pool)
    return trial_dir


@pytest.fixture(scope="module")
def warm_runs(pools, tmp_path_factory):
    """The six trials of SEQUENCE in their two pools; the last run of each method is kept."""
    runs = {}
    for method in SEQUENCE:
        runs[method] = warm(pools, two_step_trial(method), tmp_path_factory.mktemp(f"warm-{method}"))
    assert len(pools) == 2 and all(p.leases == 3 for p in pools.values())
    return runs


@pytest.mark.parametrize("method", COLD_METHODS, ids=["native-lora", "converted-pissa", "merged-dora", "full-ft"])
def test_a_warm_lease_gives_the_cold_trials_results(method, warm_runs, cold_runs):
    assert_independent(warm_runs[method], cold_runs[method])


def test_a_trial_after_a_failed_lease_is_unaffected(warm_runs, cold_runs, pools, tmp_path, monkeypatch):
    cfg = two_step_trial("lora")
    pool = pools[pool_key(cfg)]
    engines_before = [a._actor_id for a in pool.parts[0].actors]

    def fail(self):
        raise RuntimeError("injected: the lease fails after its policy reached the engines")

    with monkeypatch.context() as m:
        m.setattr(TrialController, "checkpoint", fail)
        with pytest.raises(RuntimeError, match="injected"):
            run_trial(two_step_trial("pissa"), str(tmp_path / "failed"), pool=pool)
    assert pool.parts is None and pool.leased is None, "the failed lease's parts are closed, never reused"
    after = warm(pools, cfg, tmp_path / "after")
    assert engines_before != [a._actor_id for a in pool.parts[0].actors]
    assert_independent(after, cold_runs["lora"])


def test_a_part_lost_during_a_lease_is_replaced_and_the_trial_unaffected(warm_runs, cold_runs, pools, tmp_path):
    cfg = two_step_trial("lora")
    pool = pools[pool_key(cfg)]
    engine, leases = pool.parts[0].actors[0], pool.leases
    trial_dir = tmp_path / "lost"

    def kill_once_leased():
        deadline = time.monotonic() + 600
        while not (trial_dir / TrialLayout.STARTUP).exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        ray.kill(engine, no_restart=True)

    killer = threading.Thread(target=kill_once_leased, daemon=True)
    killer.start()
    run_trial(cfg, str(trial_dir), pool=pool)
    killer.join(timeout=1)
    assert pool.leases == leases + 2, "the lease did not restart after its engine was lost"
    assert engine._actor_id not in [a._actor_id for a in pool.parts[0].actors], "a lost part was reused"
    assert "t_learner" in json.loads((trial_dir / TrialLayout.STARTUP).read_text()), "the parts were not started anew"
    assert_independent(trial_dir, cold_runs["lora"])
