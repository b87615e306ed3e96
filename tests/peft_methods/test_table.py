"""`rlvr methods` counts: hub models on the meta device reproduce the reference figures; tiny models build for real."""

from __future__ import annotations

import pytest
from rich.console import Console

from rlvr.config.loader import build, find_config, load_raw
from rlvr.config.schema import ModelConfig
from rlvr.peft_methods.table import format_methods_table, methods_table

from .conftest import TINY

TINY_MODEL = ModelConfig(name="tiny", tiny=TINY)


def _model(name: str) -> ModelConfig:
    path = find_config(name, "models")
    return build(ModelConfig, load_raw(path), str(path))


@pytest.mark.slow
def test_r1_distill_1p5b_counts_match_the_reference_figures():
    # paper presets: lora_plus is plain LoRA r32 on all seven modules, dora is DoRA r32 on them.
    rows = {r["method"]: r for r in methods_table(_model("r1-distill-qwen-1.5b"), "paper", ["lora_plus", "dora"])}
    assert rows["lora_plus"]["trainable_params"] == 36_929_536
    assert round(rows["lora_plus"]["pct_of_model"], 3) == 2.078
    assert rows["dora"]["trainable_params"] == 37_574_656
    assert rows["dora"]["rank"] == 32 and rows["dora"]["route"] == "merged"


def test_tiny_model_table_lists_every_paper_method_verified():
    rows = methods_table(TINY_MODEL, "paper")
    assert [r["method"] for r in rows][:3] == ["full", "lora", "dora"] and len(rows) == 14
    assert all(r["trainable_params"] > 0 for r in rows)
    assert next(r for r in rows if r["method"] == "full")["pct_of_model"] == 100.0
    console = Console(record=True, width=160)
    assert format_methods_table(rows, console).row_count == 14
    assert "lora_rank1" in console.export_text()


def test_unknown_preset_is_named():
    with pytest.raises(ValueError, match="preset: 'nope'"):
        methods_table(TINY_MODEL, "nope")


def test_hub_model_without_architecture_is_refused():
    with pytest.raises(ValueError, match="set model.tiny or model.architecture"):
        methods_table(ModelConfig(name="some/model"), "paper", ["lora"])
