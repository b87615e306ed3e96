"""Attaching to an existing Ray cluster without hanging on a dead one.

`ray.init(address=...)` keeps retrying a GCS that no longer runs (minutes, "Failed to get cluster ID from GCS
server"). A head that died (crash, OOM kill, container restart) leaves its address behind in RAY_ADDRESS or in
Ray's current-cluster file, so every attach in rlvr (doctor, `--address` of sweep and preflight, ray_jobs/)
first resolves the address the way `ray.init` would and opens one TCP connection to it with a short timeout.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

PROBE_TIMEOUT_S = 3.0
"""A live GCS accepts at once (even across a cluster's network); refused or silent ports fail within this."""


@dataclass(frozen=True)
class Target:
    """The address ray.init would attach to and where it came from (shown to the user with the fix)."""

    address: str
    source: str  # "--address", "RAY_ADDRESS", "Ray's current-cluster file PATH", "a GCS process on this machine"
    path: str | None = None  # the current-cluster file, when it is the source

    @property
    def fix(self) -> str:
        if self.path:
            return f"remove {self.path} (a head that died left it) or start a head with `ray start --head`"
        if self.source == "RAY_ADDRESS":
            return "unset RAY_ADDRESS or point it at a running head (`ray start --head` starts one)"
        return (
            "pass the address of a running head (`ray start --head` starts one), or leave out --address "
            "for a private local Ray"
        )


class ClusterGone(ConnectionError):
    """The resolved address does not answer: the cluster it named is gone."""

    def __init__(self, target: Target, reason: str):
        self.target, self.reason = target, reason
        super().__init__(
            f"the Ray cluster at {target.address} (from {target.source}) is gone: {reason}. Fix: {target.fix}"
        )


def resolve(address: str | None) -> Target | None:
    """The cluster ``ray.init(address=address)`` would attach to, in Ray's order: an explicit address, else
    (None or "auto") RAY_ADDRESS, Ray's current-cluster file, and for "auto" any GCS running on this machine.
    None when there is nothing to attach to (Ray then starts a new instance, or raises for "auto")."""
    from ray._common.utils import get_ray_address_file
    from ray._private.services import find_gcs_addresses
    from ray._private.utils import read_ray_address

    if address not in (None, "auto"):
        return None if address == "local" else Target(address, "--address")
    if os.environ.get("RAY_ADDRESS"):
        return Target(os.environ["RAY_ADDRESS"], "RAY_ADDRESS")
    if recorded := read_ray_address():  # Ray's default temp dir: RAY_TMPDIR, TMPDIR or /tmp, then ray/
        path = get_ray_address_file(None)
        return Target(recorded, f"Ray's current-cluster file {path}", path)
    running = find_gcs_addresses() if address == "auto" else ()
    return Target(sorted(running)[0], "a GCS process on this machine") if running else None


def probe(target: Target, timeout_s: float = PROBE_TIMEOUT_S) -> None:
    """Raise ClusterGone unless something accepts a TCP connection at the target's host and port (the GCS; the
    client server or the dashboard for ray:// and http:// addresses). Unparsable addresses are left to Ray."""
    from ray._common.network_utils import parse_address

    hostport = parse_address(target.address.split("://", 1)[-1].split("/", 1)[0])
    if hostport is None:
        return
    host, port = hostport
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except TimeoutError:
        raise ClusterGone(target, f"nothing answered on port {port} within {timeout_s:g} s") from None
    except OSError as e:
        raise ClusterGone(target, f"connecting fails ({e.strerror or type(e).__name__})") from None


def attach(address: str | None = "auto", **init_kwargs) -> None:
    """``ray.init(address=address, **init_kwargs)`` after checking, within seconds, that the cluster it would
    attach to answers; raises ClusterGone (a ConnectionError) naming the address, its source and the fix."""
    import ray

    target = resolve(address)
    if target is not None:
        probe(target)
    ray.init(address=address, **init_kwargs)


def attach_or_exit(address: str | None = "auto", **init_kwargs) -> None:
    """``attach`` for a job entrypoint: a gone cluster ends the process with its one-line error (exit 1)."""
    try:
        attach(address, **init_kwargs)
    except ClusterGone as e:
        raise SystemExit(f"error: {e}") from None
