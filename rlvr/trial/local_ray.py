"""A private local Ray for runs without a cluster (`rlvr train`, `rlvr sweep` on a laptop, tests)."""

from __future__ import annotations

import os
import tempfile

from rlvr.trial.ray_reaper import OWNER_ENV, owner_tag, reap, start_watchdog


def init_local_ray(num_cpus: int | None = None, num_gpus: int | None = None, log_to_driver: bool = True) -> None:
    """Start a new local Ray that never attaches to another cluster on the machine.

    Logical CPUs default to at least 8: the tiny-model actors of a trial mostly wait on each other, so a
    2-core machine can host a whole trial (controller, engine, learner, reward actor). Without
    ``log_to_driver`` the workers' output stays in the session's log files. Nothing of it outlives this
    process, even killed with SIGKILL (rlvr.trial.ray_reaper).
    """
    import ray

    reap()  # what dead rlvr drivers left (their agents outlive a SIGKILL)
    if os.environ.get(OWNER_ENV) != owner_tag():  # once per process (tests start and stop Ray many times)
        os.environ[OWNER_ENV] = owner_tag()  # inherited by every process of this Ray: the watchdog's handle on them
        start_watchdog(os.environ[OWNER_ENV])
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_TMPDIR", tempfile.mkdtemp(prefix="rlvr-ray-"))
    ray.init(
        address="local",
        num_cpus=num_cpus or max(8, os.cpu_count() or 1),
        num_gpus=num_gpus,
        include_dashboard=False,
        _temp_dir=os.environ["RAY_TMPDIR"],
        logging_level="WARNING",
        log_to_driver=log_to_driver,
    )
