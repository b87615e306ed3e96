"""Reads a sweep run's storage layout (local path or pyarrow filesystem URI) for analysis and reports.

The trial and sweep code write the layout; this module reads it, and writes only a trial's ``analysis/``
folder. Missing files come back as ``None`` or empty, never as errors: a report of a run in progress must show
what exists.
"""

from __future__ import annotations

import io
import json
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from rlvr.config.layout import RunLayout, TrialLayout
from rlvr.config.loader import build
from rlvr.config.schema import UNCHECKED, TrialConfig
from rlvr.storage import RunStorage


class Folder:
    """A run or trial folder: typed reads on top of RunStorage."""

    def __init__(self, uri: str):
        self.store = RunStorage(str(uri))
        self.uri = self.store.uri

    def exists(self, rel: str) -> bool:
        return self.store.exists(rel)

    def read_text(self, rel: str) -> str | None:
        data = self.store.read_bytes(rel)
        return None if data is None else data.decode()

    def read_yaml(self, rel: str) -> Any:
        text = self.read_text(rel)
        return None if text is None else yaml.safe_load(text)

    def read_jsonl(self, rel: str) -> list[dict[str, Any]]:
        # A running trial may have a half-written last line: keep the complete ones.
        rows = []
        for line in (self.read_text(rel) or "").splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return rows

    def read_parquet(self, rel: str) -> pa.Table | None:
        data = self.store.read_bytes(rel)
        return None if data is None else pq.read_table(io.BytesIO(data))

    def write_parquet(self, rel: str, table: pa.Table) -> str:
        sink = io.BytesIO()
        pq.write_table(table, sink)
        self.store.write_bytes(rel, sink.getvalue())
        return self.store.uri_of(rel)


class TrialDir(Folder):
    """``<run_dir>/trials/<trial_id>/``."""

    @property
    def trial_id(self) -> str:
        return self.uri.rsplit("/", 1)[-1]

    def config(self):
        """The resolved TrialConfig, or None when config.yaml is not there yet."""
        data = self.read_yaml(TrialLayout.CONFIG)
        if data is None:
            return None
        # the trial's record, checked when it ran
        return build(TrialConfig, data, self.store.uri_of(TrialLayout.CONFIG), context=UNCHECKED)

    def record(self) -> dict[str, Any] | None:
        return self.store.read_json(TrialLayout.RECORD)

    def metrics(self) -> list[dict[str, Any]]:
        return self.read_jsonl(TrialLayout.METRICS)

    def eval_summary(self) -> pa.Table | None:
        return self.read_parquet(TrialLayout.EVAL_SUMMARY)

    def checkpoint_steps(self) -> list[int]:
        """Steps of the complete checkpoints (the trial's own rule), ascending."""
        return TrialLayout.checkpoint_steps(self.store)

    def trainable_state(self, step: int) -> dict[str, Any]:
        from safetensors.torch import load

        data = self.store.read_bytes(TrialLayout.checkpoint(step, TrialLayout.TRAINABLE))
        if data is None:
            raise FileNotFoundError(f"{self.uri}: no checkpoint at step {step}; available: {self.checkpoint_steps()}")
        return load(data)

    def spectral(self) -> pa.Table | None:
        return self.read_parquet("analysis/spectral.parquet")


class RunDir(Folder):
    """``<run_dir>/``: the sweep's config, ledger, results table and trial folders."""

    def sweep_config(self) -> dict[str, Any] | None:
        return self.read_yaml(RunLayout.SWEEP)

    def ledger(self) -> dict[str, dict[str, Any]]:
        """trial_id -> ledger entry."""
        out = {}
        for name in self.store.list_names(RunLayout.LEDGER, ".json"):
            entry = self.store.read_json(RunLayout.ledger_entry(name.removesuffix(".json"))) or {}
            out[entry.get("trial_id", name.removesuffix(".json"))] = entry
        return out

    def results(self) -> pa.Table | None:
        return self.read_parquet(RunLayout.RESULTS)

    def trial_ids(self) -> list[str]:
        """Every trial the ledger or the trials/ folder knows, sorted."""
        return sorted(set(self.ledger()) | set(self.store.subfolders(RunLayout.TRIALS)))

    def trial(self, trial_id: str) -> TrialDir:
        return TrialDir(self.store.uri_of(RunLayout.trial(trial_id)))
