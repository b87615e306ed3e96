"""The controller lease: at most one controller drives a run, so no two write the ledger or start the same trial.

The lease is ``<run>/controller.lease.json`` (owner, host, pid, heartbeat). It is stale when its heartbeat is
older than the ttl, or when its owner is a process on this host that no longer exists. Object stores have no
create-if-absent through pyarrow, so taking the lease is write, pause, read back: of two controllers racing,
the one whose write landed last keeps it and the other sees a foreign owner and refuses.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from typing import Any

from rlvr.config.layout import RunLayout
from rlvr.storage import RunStorage


class LeaseHeld(RuntimeError):
    """Another live controller drives this run."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_stale(lease: dict[str, Any], ttl_s: float, now: float | None = None) -> bool:
    now = time.time() if now is None else now
    if now - lease["heartbeat"] > ttl_s:
        return True
    return lease["host"] == socket.gethostname() and not _pid_alive(lease["pid"])


class ControllerLease:
    """Take, keep (a heartbeat thread) and give back the lease of one run."""

    def __init__(self, storage: RunStorage, ttl_s: float = 60.0, settle_s: float = 0.5):
        self.storage = storage
        self.ttl_s = ttl_s
        self.settle_s = settle_s
        self.owner = uuid.uuid4().hex
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _mine(self) -> dict[str, Any]:
        return {"owner": self.owner, "host": socket.gethostname(), "pid": os.getpid(), "heartbeat": time.time()}

    def _refusal(self, lease: dict[str, Any]) -> str:
        age = time.time() - lease["heartbeat"]
        return (
            f"run {self.storage.uri} is driven by another controller (host {lease['host']}, pid {lease['pid']}, "
            f"heartbeat {age:.0f}s ago). Stop that controller, or pass --wait to start when its lease goes stale "
            f"(no heartbeat for {self.ttl_s:.0f}s)."
        )

    def acquire(self, wait: bool = False, poll_s: float = 2.0) -> None:
        """Take the lease, or raise LeaseHeld naming the holder (with ``wait``, poll until it goes stale)."""
        while True:
            held = self.storage.read_json(RunLayout.LEASE)
            if held is None or held["owner"] == self.owner or is_stale(held, self.ttl_s):
                self.storage.write_json(RunLayout.LEASE, self._mine())
                time.sleep(self.settle_s)
                held = self.storage.read_json(RunLayout.LEASE)
                if held is not None and held["owner"] == self.owner:
                    break
            if not wait:
                raise LeaseHeld(self._refusal(held))
            time.sleep(poll_s)
        self._stop.clear()
        self._thread = threading.Thread(target=self._beat, name="sweep-lease", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(self.ttl_s / 4):
            self.storage.write_json(RunLayout.LEASE, self._mine())

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        held = self.storage.read_json(RunLayout.LEASE)
        if held is not None and held["owner"] == self.owner:
            self.storage.delete(RunLayout.LEASE)
