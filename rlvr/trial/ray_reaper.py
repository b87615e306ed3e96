"""Nothing of a local Ray outlives the rlvr process that started it.

When a driver that started a local Ray is killed with SIGKILL, Ray's GCS and raylet go down with it but the
raylet's DashboardAgent and RuntimeEnvAgent stay alive as orphans (they ignore SIGTERM too). A small watchdog
process, started with the Ray, notes the driver's descendants (pid and start time) every second while the
driver lives and kills those still there once it is gone. The agents rename themselves with setproctitle,
which overwrites their /proc environ and command line, so after the fact only such a record can name them.
Every process of the Ray also carries ``RLVR_RAY_OWNER=<pid>:<start time>`` of its driver in its environment
where it stays readable (workers and their subprocesses): a new start reaps those of dead drivers, in case
a watchdog was killed too. Processes rlvr did not start, such as another session's Ray, are never touched.

Run as ``python -m rlvr.trial.ray_reaper TAG`` it is that watchdog; it imports psutil only.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import psutil

OWNER_ENV = "RLVR_RAY_OWNER"
GRACE_S = 2.0  # SIGTERM, then SIGKILL for what is still alive (the agents ignore SIGTERM)


def owner_tag(pid: int | None = None) -> str:
    """``pid:start time``: a pid alone could be reused by an unrelated process after the driver died."""
    proc = psutil.Process(pid or os.getpid())
    return f"{proc.pid}:{proc.create_time():.2f}"


def alive(tag: str) -> bool:
    pid, _, created = tag.partition(":")
    try:
        return f"{float(psutil.Process(int(pid)).create_time()):.2f}" == created
    except (psutil.NoSuchProcess, ValueError):
        return False


def tagged(owner: str | None = None) -> list[psutil.Process]:
    """Processes tagged with ``owner``, or with any owner that is no longer alive when ``owner`` is None."""
    found = []
    for proc in psutil.process_iter():
        if proc.pid == os.getpid():
            continue
        try:
            tag = proc.environ().get(OWNER_ENV)
        except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess, OSError):
            continue
        if tag and (tag == owner if owner else not alive(tag)):
            found.append(proc)
    return found


def reap(owner: str | None = None) -> int:
    """Kill the tagged processes of ``owner`` (or of every dead owner); returns how many there were."""
    return _kill(tagged(owner))


def _kill(procs: list[psutil.Process]) -> int:
    for proc in procs:
        try:
            proc.terminate()
        except psutil.NoSuchProcess:
            pass
    _, left = psutil.wait_procs(procs, timeout=GRACE_S)
    for proc in left:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(left, timeout=GRACE_S)
    return len(procs)


def start_watchdog(owner: str) -> subprocess.Popen:
    """A detached process that reaps ``owner``'s processes when it dies (it carries no tag itself)."""
    env = {k: v for k, v in os.environ.items() if k != OWNER_ENV}
    return subprocess.Popen(
        [sys.executable, "-m", "rlvr.trial.ray_reaper", owner],
        env=env,
        start_new_session=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def watch(owner: str, poll_s: float = 1.0) -> None:
    """Record the owner's descendants while it lives; when it dies, kill the ones still running."""
    seen: dict[int, float] = {}
    pid = int(owner.partition(":")[0])
    while alive(owner):
        try:
            for child in psutil.Process(pid).children(recursive=True):
                if child.pid != os.getpid():
                    seen[child.pid] = child.create_time()
        except psutil.NoSuchProcess:
            break
        time.sleep(poll_s)
    left = []
    for child_pid, created in seen.items():
        try:
            proc = psutil.Process(child_pid)
            if proc.create_time() == created:  # the same process, not a reused pid
                left.append(proc)
        except psutil.NoSuchProcess:
            pass
    _kill(left + [p for p in tagged(owner) if p.pid not in seen])


if __name__ == "__main__":
    watch(sys.argv[1])
