"""A real two-node Ray cluster on this machine (head + a worker declaring fake GPUs); sweeps are submitted
through the Job API as on a real cluster, running the smoke trial (rlvr.sweep.smoke), which checkpoints and
records every step it applies. Proves: trials spread over both nodes and GPU trials land on the GPU node; a
node killed mid-sweep costs each of its trials one failed attempt and no step; a controller killed with
SIGKILL is resumed by re-submitting the same job, without re-running finished trials; the preflight job checks
both node types, reporting the fake GPUs' checks as skipped (or failing the sweep when not told they are fake)."""

import os
import shutil
import socket
import sys
import time
from pathlib import Path

import pytest
import yaml
from ray.cluster_utils import Cluster
from ray.job_submission import JobStatus, JobSubmissionClient

from rlvr.config.loader import load_sweep
from rlvr.sweep.controller import ledger_records

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
STEPS = 16


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _add_gpu_node(c: Cluster):
    return c.add_node(num_cpus=4, num_gpus=2, dashboard_agent_listen_port=_free_port())


@pytest.fixture(scope="module")
def cluster(no_shared_ray, tmp_path_factory):
    # A private RAY_TMPDIR (short: socket paths) keeps this cluster's address file away from other Ray users.
    temp_dir = f"/tmp/rlvr-sweep-{os.getpid()}"
    saved = dict(os.environ)
    os.environ.update(
        RAY_AUTH_MODE="disabled", RAY_TMPDIR=temp_dir, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}"
    )
    port = _free_port()
    # Every node's dashboard agent on a free port: the default (52365) is taken by any other Ray on the machine,
    # and a head without its agent answers job submissions with "No available agent".
    c = Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": 4,
            "include_dashboard": True,
            "dashboard_port": port,
            "dashboard_agent_listen_port": _free_port(),
        },
    )
    worker = _add_gpu_node(c)
    c.wait_for_nodes()
    client = JobSubmissionClient(f"http://127.0.0.1:{port}")
    yield c, worker, client
    c.shutdown()
    os.environ.clear()
    os.environ.update(saved)
    shutil.rmtree(temp_dir, ignore_errors=True)


def _write_sweep(tmp_path: Path, name: str, step_s: float) -> Path:
    raw = {
        "name": name,
        "storage": str(tmp_path / "runs"),
        "seeds": [1, 2],
        "grid": {"model.gpus_per_engine": [0, 1]},
        "base": {"steps": STEPS, "checkpoint": {"every_steps": 4}},
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _submit_job(client: JobSubmissionClient, **kw) -> str:
    """submit_job, retried while the new cluster's job agent is still starting (minutes on a loaded machine)."""
    deadline = time.time() + 180
    while True:
        try:
            return client.submit_job(**kw)
        except RuntimeError as e:
            if "No available agent" not in str(e) or time.time() > deadline:
                raise
            time.sleep(1)


def _submit(client: JobSubmissionClient, sweep: Path, step_s: float, extra: str = " --no-preflight") -> str:
    env = {
        "RAY_AUTH_MODE": "disabled",
        "RLVR_SMOKE_STEP_S": str(step_s),
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": str(REPO),
    }
    return _submit_job(
        client,
        entrypoint=f"{sys.executable} {REPO}/ray_jobs/sweep.py {sweep} --trial-fn rlvr.sweep.smoke:smoke_trial{extra}",
        runtime_env={"env_vars": env},
    )


def _wait_job(client, job_id, timeout=180) -> JobStatus:
    deadline = time.time() + timeout
    while time.time() < deadline:
        status = client.get_job_status(job_id)
        if status.is_terminal():
            return status
        time.sleep(1)
    raise TimeoutError(client.get_job_logs(job_id)[-3000:])


def _wait_until(predicate, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise TimeoutError("condition not reached")


def _check_exact(records):
    for r in records.values():
        assert r["status"] == "done", r
        assert r["final"]["applied"] == list(range(1, STEPS + 1)), f"{r['label']}: a step was lost or applied twice"


def test_job_api_sweep_spreads_trials_and_survives_a_worker_node_death(cluster, tmp_path):
    c, worker, client = cluster
    sweep = _write_sweep(tmp_path, "spread", 0.25)
    cfg = load_sweep(str(sweep))
    job = _submit(client, sweep, 0.25)

    def running_on_worker():
        records = ledger_records(cfg).values()
        return any(r["status"] == "running" and r["node"] == worker.node_id and r["step"] >= 2 for r in records)

    _wait_until(running_on_worker)
    c.remove_node(worker, allow_graceful=False)
    _add_gpu_node(c)  # the replacement an autoscaler would bring
    assert _wait_job(client, job) == JobStatus.SUCCEEDED, client.get_job_logs(job)[-3000:]

    records = ledger_records(cfg)
    _check_exact(records)
    nodes = {h["node"] for r in records.values() for h in r["history"]}
    assert worker.node_id in nodes and len(nodes) >= 2
    hit = [r for r in records.values() if any(h["node"] == worker.node_id for h in r["history"])]
    assert hit
    for r in hit:
        assert [h["outcome"] for h in r["history"]] == ["failed", "done"] and r["attempts"] == 2
    gpu_trials = [r for tid, r in records.items() if "gpus_per_engine=1" in r["label"]]
    assert all(h["node"] != c.head_node.node_id for r in gpu_trials for h in r["history"])


def test_killed_controller_is_resumed_by_resubmitting_without_rerunning_done_trials(cluster, tmp_path):
    c, _, client = cluster
    sweep = _write_sweep(tmp_path, "resume", 0.15)
    cfg = load_sweep(str(sweep))
    job = _submit(client, sweep, 0.15)

    def one_done_one_checkpointed():
        records = ledger_records(cfg).values()
        return any(r["status"] == "done" for r in records) and any(
            r["status"] == "running" and r["last_checkpoint"] for r in records
        )

    _wait_until(one_done_one_checkpointed)
    driver_pid = client.get_job_info(job).driver_info.pid
    os.kill(int(driver_pid), 9)
    _wait_job(client, job)
    before = ledger_records(cfg)
    done_before = {tid: r["attempts"] for tid, r in before.items() if r["status"] == "done"}

    again = _submit(client, sweep, 0.15)
    assert _wait_job(client, again) == JobStatus.SUCCEEDED, client.get_job_logs(again)[-3000:]
    records = ledger_records(cfg)
    _check_exact(records)
    for tid, attempts in done_before.items():
        assert records[tid]["attempts"] == attempts, "a finished trial was run again"
    interrupted = [r for r in records.values() if any(h["outcome"] == "interrupted" for h in r["history"])]
    assert interrupted and all(r["history"][-1]["start_step"] >= 4 for r in interrupted)


def test_preflight_job_checks_each_node_type_and_the_sweep_job_stops_on_its_failure(cluster, tmp_path):
    c, _, client = cluster
    sweep = _write_sweep(tmp_path, "preflight", 0.05)
    smoke = "--trial-fn rlvr.sweep.smoke:smoke_trial"
    job = _submit_job(
        client,
        entrypoint=f"{sys.executable} {REPO}/ray_jobs/preflight.py {sweep} {smoke} --allow-fake-gpus",
        runtime_env={"env_vars": {"RAY_AUTH_MODE": "disabled", "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(REPO)}},
    )
    assert _wait_job(client, job) == JobStatus.SUCCEEDED, client.get_job_logs(job)[-3000:]
    lines = [line for line in client.get_job_logs(job).splitlines() if line[:4] in ("ok  ", "skip", "FAIL")]
    gpu_node = [line for line in lines if ", 2 GPU @" in line]
    head = [line for line in lines if "4 CPU @" in line]
    for node in (gpu_node, head):
        assert any(line.startswith("ok") and " storage " in line for line in node), lines
        assert any(line.startswith("ok") and " vllm " in line for line in node), lines
    assert any(
        line.startswith("skip") and " cuda " in line and "CPU build" in line and "--allow-fake-gpus" in line
        for line in gpu_node
    ), lines
    assert any(line.startswith("skip") and " nccl " in line and "CUDA is not usable" in line for line in gpu_node), (
        lines
    )
    assert any(line.startswith("skip") and " cuda " in line and "no GPUs" in line for line in head), lines

    # The sweep job runs the same checks first, without --allow-fake-gpus: declared GPUs without CUDA fail it.
    job = _submit(client, sweep, 0.05, extra="")
    assert _wait_job(client, job) == JobStatus.FAILED
    logs = client.get_job_logs(job)
    assert any(line.startswith("FAIL") and " cuda " in line for line in logs.splitlines()), logs[-3000:]
    assert "preflight failed" in logs
    assert not ledger_records(load_sweep(str(sweep))), "a trial started after a failed preflight"
