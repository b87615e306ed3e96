"""``run_trial``: the contract the sweep scheduler, ``rlvr train`` and ray_jobs/trial.py share.

It resumes from the newest checkpoint in ``trial_dir``; on SIGTERM it checkpoints and raises TrialPreempted;
when one of its actors dies (engine, reward or learner) it rebuilds them all from the last checkpoint and
goes on, up to ``max_actor_restarts`` times.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
import traceback
from typing import TYPE_CHECKING

from rlvr.config.layout import TrialLayout
from rlvr.config.schema import TrialConfig
from rlvr.storage import RunStorage
from rlvr.trial.controller import ACTOR_FAILURES, TrialController, TrialPreempted
from rlvr.trial.local_ray import init_local_ray

if TYPE_CHECKING:
    from rlvr.pool.tenants import Seat
    from rlvr.pool.warm import WarmPool

log = logging.getLogger("rlvr.trial")

__all__ = ["run_trial", "TrialPreempted"]


_TRIAL_THREADS: set[int] = set()  # threads running a trial in this process (a tenant pool runs several at once)


def _this_trial(record: logging.LogRecord, own: int) -> bool:
    """A trial's log takes its own thread's records and those of threads that run no trial (several tenants of a
    pool log through one process-wide logger; each trial.log must read as the trial's alone)."""
    return record.thread == own or record.thread not in _TRIAL_THREADS


def _file_log(trial_dir: str) -> logging.Handler | None:
    """rlvr's events of this trial, and the traceback of a failure, appended to <trial_dir>/trial.log (local
    directories only; the terminal shows one paragraph per expected error)."""
    storage = RunStorage(trial_dir)
    if not storage.local:
        return None
    storage.makedirs("")
    handler = logging.FileHandler(storage.path(TrialLayout.LOG))
    own = threading.get_ident()
    handler.addFilter(lambda record: _this_trial(record, own))
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("rlvr")
    logger.addHandler(handler)
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    return handler


def run_trial(cfg: TrialConfig, trial_dir: str, pool: WarmPool | Seat | None = None) -> dict:
    """Run (or resume) one trial to its last step; returns its final metrics. With ``pool`` (rlvr.pool.warm, or a
    tenant pool's seat: rlvr.pool.tenants) the trial leases the pool's parts instead of starting its own; the
    trial's outputs are the same."""
    import ray

    if not ray.is_initialized():
        init_local_ray()
    handler = _file_log(trial_dir)
    _TRIAL_THREADS.add(threading.get_ident())
    try:
        return _run(cfg, trial_dir, pool)
    except BaseException as err:
        log.info("trial_failed error=%s", type(err).__name__)
        if handler is not None:  # the traceback goes to the file only; the terminal gets rlvr.errors' paragraph
            handler.stream.write(traceback.format_exc())
            handler.flush()
            err.trial_log = handler.baseFilename
        raise
    finally:
        _TRIAL_THREADS.discard(threading.get_ident())
        if handler is not None:
            logging.getLogger("rlvr").removeHandler(handler)
            handler.close()


def _run(cfg: TrialConfig, trial_dir: str, pool: WarmPool | Seat | None) -> dict:
    entered_at, t0 = time.time(), time.perf_counter()
    controller = TrialController(cfg, trial_dir)
    t_init = time.perf_counter() - t0
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, lambda *_: setattr(controller, "stop_requested", True))
    restarts = 0
    try:
        while True:
            try:
                t0 = time.perf_counter()
                controller.start() if pool is None else pool.lease(controller)
                resumed = controller.restore()
                startup = {"t_init": t_init, **controller.startup, "t_total": t_init + time.perf_counter() - t0}
                controller.storage.write_json(
                    TrialLayout.STARTUP, {"entered_at": entered_at, **{k: round(v, 3) for k, v in startup.items()}}
                )
                log.info(
                    "trial_start dir=%s resumed_from=%s restarts=%d %s",
                    trial_dir,
                    resumed,
                    restarts,
                    " ".join(f"{k}={v:.2f}" for k, v in startup.items()),
                )
                final = controller.run_loop()
                controller.stop()
                if pool is not None:
                    pool.release(failed=False)
                return final
            except ACTOR_FAILURES as err:
                restarts += 1
                if restarts > cfg.max_actor_restarts:
                    raise
                log.warning(
                    "trial_actor_failed restart=%d/%d error=%s", restarts, cfg.max_actor_restarts, type(err).__name__
                )
                _end(controller, pool)
    except BaseException:
        _end(controller, pool)
        raise
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _end(controller: TrialController, pool: WarmPool | Seat | None) -> None:
    """Stop the trial after an error; a pool's parts, which may have raised, are closed (replaced at the next lease)."""
    controller.stop()
    if pool is not None and pool.leased is controller:
        pool.release(failed=True)
