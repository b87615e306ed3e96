"""`rlvr export TRIAL_DIR --format adapter|merged --out DIR`: one checkpoint of a trial (default the newest
complete one) written as a peft LoRA adapter for the original base or as a merged model, with a model card,
checked by loading it back (rlvr.export.verify) before it is copied to ``out`` (a local path or a pyarrow URI).
"""

from __future__ import annotations

import gc
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pyarrow.fs as pafs

from rlvr.config.layout import TrialLayout
from rlvr.config.methods import adapter_refusal
from rlvr.export import verify
from rlvr.export.card import model_card
from rlvr.export.source import TrialPolicy, read_trial_config
from rlvr.export.verify import LoadCheck
from rlvr.models.loading import load_tokenizer
from rlvr.peft_methods.weights import to_bytes
from rlvr.storage import RunStorage, open_fs
from rlvr.sync.servable import check_servable, served_lora_rank
from rlvr.sync.update import PolicyUpdate

Format = Literal["adapter", "merged"]
ADAPTER_CONFIG, ADAPTER_WEIGHTS, CARD = "adapter_config.json", "adapter_model.safetensors", "README.md"


class ExportRefused(ValueError):
    """The export cannot be made as asked; the message says why and what to do instead."""


@dataclass
class ExportResult:
    out: str
    step: int
    format: Format
    checks: list[LoadCheck] = field(default_factory=list)


def _target_is_free(out: str) -> None:
    fs, root = open_fs(out)
    info = fs.get_file_info(root)
    if info.type == pafs.FileType.File or (
        info.type == pafs.FileType.Directory and fs.get_file_info(pafs.FileSelector(root))
    ):
        raise ExportRefused(f"--out {out}: already exists and is not empty; choose a new directory or delete it")


def _refusal(trial_dir: str, fmt: Format) -> None:
    method = read_trial_config(trial_dir).method
    why = adapter_refusal(method) if fmt == "adapter" else None
    if why is not None:
        raise ExportRefused(
            f"{trial_dir}: method {method.name} cannot be exported as a LoRA adapter: {why}. "
            "Export it with --format merged (a full model directory any engine serves)"
        )


def _write_adapter(trial, out_dir: Path) -> int:
    """The adapter files; returns the adapter's rank (what vLLM's --max-lora-rank must hold)."""
    tensors, config = trial.policy.original_base_adapter()
    config = {
        **config,
        "base_model_name_or_path": trial.base_path,
        "revision": trial.cfg.model.revision,
        "inference_mode": True,
    }
    rank = max([config["r"], *(config.get("rank_pattern") or {}).values()])
    update = PolicyUpdate(trial.step, "native", lora_tensors=to_bytes(tensors), lora_config=config)
    check_servable(update, served_lora_rank(rank))  # what vLLM would refuse, refused here with its reason
    (out_dir / ADAPTER_CONFIG).write_text(json.dumps(config, indent=2, sort_keys=True))
    (out_dir / ADAPTER_WEIGHTS).write_bytes(update.lora_tensors)
    return rank


def trial_evals(trial_dir: str) -> list[dict]:
    """The trial's evaluation rows (one per benchmark and step), none if it never evaluated."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    data = RunStorage(trial_dir).read_bytes(TrialLayout.EVAL_SUMMARY)
    return pq.read_table(pa.BufferReader(data)).to_pylist() if data else []


def export_command(trial_dir: str, out: str, fmt: Format, step: int | None = None, vllm: bool = True) -> ExportResult:
    """Export, check and copy to ``out``; raises ExportRefused (before any work) or ExportMismatch (nothing copied)."""
    if fmt not in ("adapter", "merged"):
        raise ExportRefused(f"--format {fmt}: must be adapter or merged")
    _refusal(trial_dir, fmt)
    _target_is_free(out)
    trial = TrialPolicy.load(trial_dir, step)
    cfg, base = trial.cfg, trial.base_path
    probe = verify.make_probe(cfg, load_tokenizer(cfg.model, base), trial.policy.model)
    fs, root = open_fs(out)
    in_place = isinstance(fs, pafs.LocalFileSystem)  # staged beside --out, then renamed: no second copy on disk
    if in_place:
        os.makedirs(os.path.dirname(root), exist_ok=True)
    with tempfile.TemporaryDirectory(
        prefix=".rlvr-export-", dir=os.path.dirname(root) if in_place else None, ignore_cleanup_errors=True
    ) as tmp:
        local = Path(tmp)
        rank = _write_adapter(trial, local) if fmt == "adapter" else None
        if fmt == "merged":
            trial.write_merged(local)
        trial.policy = None  # the reference is scored; free it before loading the export back
        gc.collect()
        if fmt == "adapter":
            checks = [verify.check_adapter_peft(tmp, base, cfg, probe)]
            if vllm:
                checks.append(verify.check_adapter_vllm(tmp, base, cfg, rank, probe))
        else:
            checks = [verify.check_merged(tmp, cfg, probe)]
        config_text = RunStorage(trial_dir).read_bytes(TrialLayout.CONFIG).decode()
        card = model_card(
            cfg,
            config_text,
            trial.step,
            fmt,
            base,
            trial_evals(trial_dir),
            checks,
            len(probe.completion),
            probe.tolerance,
            rank,
        )
        (local / CARD).write_text(card)
        if in_place:
            if os.path.isdir(root):
                os.rmdir(root)  # empty: _target_is_free checked it
            os.rename(tmp, root)
        else:
            fs.create_dir(root, recursive=True)
            pafs.copy_files(tmp, root, source_filesystem=pafs.LocalFileSystem(), destination_filesystem=fs)
    return ExportResult(out, trial.step, fmt, checks)
