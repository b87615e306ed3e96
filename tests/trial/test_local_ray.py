"""A local Ray started by rlvr leaves nothing behind when its driver is killed with SIGKILL, and a new start
reaps what a dead rlvr driver left; processes rlvr did not start are never touched."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import psutil
import pytest

from rlvr.trial.ray_reaper import OWNER_ENV, reap, tagged

DRIVER = """
import os, sys, time
from rlvr.trial.local_ray import init_local_ray
init_local_ray(num_cpus=1)
print(os.environ["RLVR_RAY_OWNER"], flush=True)
time.sleep(600)
"""


def _agents(pid: int) -> list[psutil.Process]:
    """The DashboardAgent and RuntimeEnvAgent under a driver (they rename themselves with setproctitle)."""
    try:
        return [p for p in psutil.Process(pid).children(recursive=True) if "Agent" in " ".join(p.cmdline())]
    except psutil.NoSuchProcess:
        return []


def _wait(predicate, timeout: float) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.5)
    return predicate()


@pytest.mark.slow
def test_kill_9_of_the_driver_leaves_no_ray_process_behind():
    import tempfile

    # a short path: Ray's socket paths under it must stay within AF_UNIX's 107 bytes
    env = {**os.environ, "RAY_TMPDIR": tempfile.mkdtemp(prefix="rlvr-ray-"), "RAY_AUTH_MODE": "disabled"}
    env.pop(OWNER_ENV, None)
    driver = subprocess.Popen([sys.executable, "-c", DRIVER], stdout=subprocess.PIPE, text=True, env=env)
    try:
        owner = driver.stdout.readline().strip()
        assert owner.startswith(f"{driver.pid}:"), owner
        # the raylet's agents are the processes that outlived a killed driver before the watchdog
        assert _wait(lambda: len(_agents(driver.pid)) == 2, 90), _agents(driver.pid)
        agents = _agents(driver.pid)
        names = {p.name() for p in tagged(owner)}
        assert "raylet" in names and "gcs_server" in names, names
        time.sleep(2)  # the watchdog records descendants once a second
    finally:
        driver.kill()
        driver.wait()
    assert _wait(lambda: not tagged(owner) and not any(p.is_running() for p in agents), 30), [
        (p.pid, p.name()) for p in tagged(owner) + agents if p.is_running()
    ]


def test_a_new_start_reaps_what_a_dead_owner_left_and_nothing_else():
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    dead_owner = f"{gone.pid}:{psutil.Process().create_time() - 1000:.2f}"  # a driver that no longer exists
    orphan = subprocess.Popen(["sleep", "300"], env={**os.environ, OWNER_ENV: dead_owner})
    untagged = subprocess.Popen(["sleep", "300"], env={k: v for k, v in os.environ.items() if k != OWNER_ENV})
    mine = subprocess.Popen(
        ["sleep", "300"], env={**os.environ, OWNER_ENV: f"{os.getpid()}:{psutil.Process().create_time():.2f}"}
    )
    try:
        assert _wait(lambda: any(p.pid == orphan.pid for p in tagged()), 5)
        assert reap() >= 1
        assert orphan.wait(timeout=10) is not None
        assert untagged.poll() is None and mine.poll() is None, "an untagged process or a live owner's was killed"
    finally:
        for p in (orphan, untagged, mine):
            p.kill()
            p.wait()
