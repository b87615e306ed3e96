"""Every method of the demo sweep (configs/sweeps/demo-cpu.yaml) exports in the format it supports, checked by
loading it back: an adapter where the method's update is a low-rank delta, else a merged model."""

from __future__ import annotations

import json

import pytest

from rlvr.cluster.needs import load_trials
from rlvr.config.methods import adapter_refusal
from rlvr.export.command import export_command

from .conftest import fake_trial

DEMO = {cfg.method.name: cfg for cfg in load_trials("demo-cpu")}


def test_the_demo_sweep_has_fourteen_methods_and_ten_export_as_adapters():
    assert len(DEMO) == 14
    assert sorted(n for n, cfg in DEMO.items() if adapter_refusal(cfg.method)) == ["dora", "full", "ia3", "ln_tuning"]


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(DEMO))
def test_every_demo_method_exports_in_its_format(tmp_path, name):
    cfg = DEMO[name]
    fmt = "merged" if adapter_refusal(cfg.method) else "adapter"
    result = export_command(str(fake_trial(tmp_path / "trial", cfg)), str(tmp_path / "out"), fmt, vllm=False)
    assert result.checks and all(c.gap < 1e-3 for c in result.checks)
    if fmt == "adapter":
        assert json.loads((tmp_path / "out" / "adapter_config.json").read_text())["peft_type"] == "LORA"
