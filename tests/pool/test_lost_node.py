"""A lost pool node, on a real multi-node Ray cluster on this machine (a head without CPUs, so a pool can only live
on a worker node) with the sweep controller attached as on a cluster (ray_jobs/sweep.py): the node holding a
trial's warm pool is killed mid-trial; the trial resumes from its last checkpoint in a new pool on the node that
replaces it and finishes, and the ledger records one failed attempt in the lost pool and one done attempt, with no
step lost or repeated."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from ray.cluster_utils import Cluster

from rlvr.config.loader import load_sweep
from rlvr.sweep.controller import ledger_records

from ..trial.trial_helpers import SMALL, STEPS, progress_step, read_metrics

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _add_node(c: Cluster):
    # every node's dashboard agent on a free port: the default is taken by any other Ray on the machine
    return c.add_node(num_cpus=4, dashboard_agent_listen_port=_free_port())


@pytest.fixture(scope="module")
def cluster(no_shared_ray):
    temp_dir = f"/tmp/rlvr-pool-{os.getpid()}"  # short (socket paths) and private: no other Ray finds this one
    saved = dict(os.environ)
    os.environ.update(RAY_AUTH_MODE="disabled", RAY_TMPDIR=temp_dir)
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "dashboard_agent_listen_port": _free_port()})
    yield c
    c.shutdown()
    os.environ.clear()
    os.environ.update(saved)
    shutil.rmtree(temp_dir, ignore_errors=True)


def test_a_trial_whose_pool_node_is_lost_resumes_in_a_new_pool_and_finishes(cluster, tmp_path):
    first = _add_node(cluster)
    cluster.wait_for_nodes()
    sweep = tmp_path / "lost.yaml"  # one small trial (tests/trial/trial_helpers.py), checkpoints every 2 of 4 steps
    sweep.write_text(yaml.safe_dump({"name": "lost", "storage": str(tmp_path), "base": "demo-cpu", "max_attempts": 2}))
    overrides = [f"base.{o}" for o in SMALL]
    cfg = load_sweep(str(sweep), overrides)
    env = {**os.environ, "RAY_ADDRESS": cluster.address, "PYTHONPATH": str(REPO)}
    with open(tmp_path / "controller.log", "w") as out:
        controller = subprocess.Popen(
            [sys.executable, str(REPO / "ray_jobs" / "sweep.py"), str(sweep), *overrides, "--no-preflight"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    trials = tmp_path / "lost" / "trials"
    try:
        deadline = time.monotonic() + 900
        while not (ledger := ledger_records(cfg)) or progress_step(trials / next(iter(ledger))) < 2:
            assert controller.poll() is None and time.monotonic() < deadline, (tmp_path / "controller.log").read_text()
            time.sleep(0.2)
        cluster.remove_node(first, allow_graceful=False)
        replacement = _add_node(cluster)  # the node an autoscaler would bring
        assert controller.wait(timeout=900) == 0, (tmp_path / "controller.log").read_text()[-3000:]
    finally:
        controller.kill()
    [rec] = ledger_records(cfg).values()
    history = rec["history"]
    assert rec["status"] == "done" and rec["attempts"] == 2
    assert [h["outcome"] for h in history] == ["failed", "done"]
    assert [h["node"] for h in history] == [first.node_id, replacement.node_id]
    assert history[0]["pool"] != history[1]["pool"], "the lost pool was leased again"
    assert history[1]["start_step"] >= 2 and rec["step"] == STEPS
    assert [m["step"] for m in read_metrics(trials / rec["trial_id"])] == list(range(1, STEPS + 1))
