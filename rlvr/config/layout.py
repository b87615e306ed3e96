"""Where a run's files are: ``RunLayout`` for a sweep's run directory, ``TrialLayout`` for a trial directory.

Paths are relative to the directory they describe, so every reader and writer (local path or pyarrow URI, through
rlvr.storage.RunStorage) spells them the same way. ``TrialLayout`` also holds the one rule for a complete checkpoint
(its ``meta.json`` exists), which resume, ``rlvr eval --trial`` and analysis share.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: the config layer imports no filesystem library
    from rlvr.storage import RunStorage

_CHECKPOINT_DIR = re.compile(r"^step_(\d{6})$")


class RunLayout:
    """Paths inside a sweep's run directory (``<storage>/<sweep name>/``), relative to it."""

    SWEEP = "sweep.yaml"  # the sweep's resolved config, written when the run starts
    LEDGER = "ledger"  # one <trial_id>.json per trial (rlvr.sweep.ledger)
    RESULTS = "results.parquet"
    LEASE = "controller.lease.json"  # the controller holding the run (rlvr.sweep.lease)
    TRIALS = "trials"  # one trial directory per trial id (TrialLayout)
    REPORT = "report"  # report.html and report.md (rlvr.analysis.report)

    @classmethod
    def ledger_entry(cls, trial_id: str) -> str:
        return f"{cls.LEDGER}/{trial_id}.json"

    @classmethod
    def trial(cls, trial_id: str, name: str = "") -> str:
        """The trial directory of ``trial_id``, or the file ``name`` (a TrialLayout path) in it."""
        folder = f"{cls.TRIALS}/{trial_id}"
        return f"{folder}/{name}" if name else folder

    @classmethod
    def report_dir(cls, run_dir: str) -> str:
        """Where a run's report goes by default: in the run directory when it is local, else ``./report``."""
        return f"{run_dir.rstrip('/')}/{cls.REPORT}" if "://" not in run_dir else cls.REPORT

    @classmethod
    def run_dir(cls, storage: str, sweep: str) -> str:
        """The run directory of the sweep called ``sweep`` in ``storage`` (SweepConfig.storage)."""
        return f"{storage.rstrip('/')}/{sweep}"


class TrialLayout:
    """Paths inside a trial directory, relative to it."""

    CONFIG = "config.yaml"
    RECORD = "record.json"
    METRICS = "metrics.jsonl"
    PROGRESS = "progress.json"
    STARTUP = "startup.json"
    LOG = "trial.log"
    EVAL_SUMMARY = "eval/summary.parquet"
    CHECKPOINTS = "checkpoints"
    TRAINABLE = "trainable.safetensors"  # the policy beyond the pristine base (what eval and analysis read)
    STATE = "state.pt"  # learner optimizer/scheduler/RNG of every rank and the controller's state
    COMPLETE = "meta.json"  # written last: a checkpoint folder without it is incomplete and ignored

    @staticmethod
    def eval_dir(step: int) -> str:
        return f"eval/step_{step:06d}"

    @classmethod
    def checkpoint(cls, step: int, name: str = "") -> str:
        """The folder of the checkpoint at ``step``, or the file ``name`` in it."""
        folder = f"{cls.CHECKPOINTS}/step_{step:06d}"
        return f"{folder}/{name}" if name else folder

    @classmethod
    def checkpoint_steps(cls, storage: RunStorage) -> list[int]:
        """Steps of the complete checkpoints (their ``meta.json`` exists), oldest first."""
        found = []
        for name in storage.subfolders(cls.CHECKPOINTS):
            m = _CHECKPOINT_DIR.match(name)
            if m and storage.exists(cls.checkpoint(int(m.group(1)), cls.COMPLETE)):
                found.append(int(m.group(1)))
        return sorted(found)
