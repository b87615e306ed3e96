"""The method table as data: names, torch-free import, config checks, presets."""

from __future__ import annotations

import subprocess
import sys

import pytest

from rlvr.config.loader import build, config_root, load_raw
from rlvr.config.methods import SPECS, check_method_config, method_info, method_names, route_for
from rlvr.config.schema import ALL_LINEAR, MethodConfig

STUDY = [
    "full",
    "lora",
    "dora",
    "adalora",
    "miss",
    "pissa",
    "milora",
    "lora_plus",
    "rslora",
    "lora_fa",
    "vera",
    "ia3",
    "ln_tuning",
    "lora_rank1",
]


def _preset(preset: str, name: str) -> MethodConfig:
    path = config_root() / "methods" / preset / f"{name}.yaml"
    return build(MethodConfig, load_raw(path), str(path))


def test_registry_imports_without_torch_or_peft():
    code = "import sys, rlvr.config.methods as r; r.method_names(); print(sorted({'torch', 'peft'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_registry_holds_every_study_method_and_at_least_six_extras():
    names = method_names()
    assert set(STUDY) <= set(names)
    assert len(set(names) - set(STUDY)) >= 6
    assert len(names) == len(set(names))


@pytest.mark.parametrize(
    "name, route",
    [
        ("lora", "native"),
        ("rslora", "native"),
        ("lora_plus", "native"),
        ("lora_fa", "native"),
        ("lora_rank1", "native"),
        ("pissa", "converted"),
        ("milora", "converted"),
        ("adalora", "converted"),
        ("olora", "converted"),
        ("dora", "merged"),
        ("vera", "merged"),
        ("ia3", "merged"),
        ("miss", "merged"),
        ("ln_tuning", "merged"),
        ("full", "merged"),
        ("oft", "merged"),
    ],
)
def test_route_follows_the_capability_flags(name, route):
    assert method_info(name).route == route
    assert route_for(next(s for s in SPECS if s.name == name)) == route


@pytest.mark.parametrize(
    "cfg, expected",
    [
        (MethodConfig(name="ia3", rank=8), "rank: 8 is not allowed for ia3"),
        (MethodConfig(name="lora_rank1", rank=8), "rank: 8 is not allowed for lora_rank1; allowed: 1"),
        (MethodConfig(name="vera", alpha=16), "alpha: 16.0 is not allowed for vera"),
        (MethodConfig(name="hra", rank=3), "rank: 3 is not allowed for hra; it needs an even rank"),
        (MethodConfig(name="dora", options={"foo": 1}), "options.foo: unknown option for dora; allowed: (none)"),
        (MethodConfig(name="lora_plus", options={"loraplus_lr_ratio": 0.5}), "options.loraplus_lr_ratio: 0.5 must be"),
        (MethodConfig(name="adalora", rank=8), "options.target_r: 8 must be below the initial rank 8"),
        (MethodConfig(name="ln_tuning", target_modules=["q_proj"]), "target_modules: ['q_proj'] must name norm layers"),
    ],
)
def test_bad_method_settings_are_named_with_field_and_allowed_values(cfg, expected):
    problems = check_method_config(cfg)
    assert any(p.startswith(expected) for p in problems), problems


def test_unknown_option_lists_the_allowed_ones():
    (problem,) = check_method_config(MethodConfig(name="adalora", options={"init_r": 4}))
    assert problem.startswith("options.init_r: unknown option for adalora; allowed: beta1, beta2, deltaT")


@pytest.mark.parametrize("name", method_names())
def test_every_method_has_a_valid_uniform_preset(name):
    cfg = _preset("uniform", name)
    assert cfg.name == name and cfg.preset == "uniform"
    assert check_method_config(cfg) == []
    if name not in ("full", "ln_tuning"):
        assert cfg.target_modules == ALL_LINEAR
    if method_info(name).has_rank:
        assert cfg.rank == (1 if name == "lora_rank1" else 16)


@pytest.mark.parametrize("name", STUDY)
def test_every_study_method_has_a_valid_paper_preset(name):
    cfg = _preset("paper", name)
    assert cfg.name == name and cfg.preset == "paper"
    assert check_method_config(cfg) == []


def test_paper_presets_match_the_study_table():
    assert _preset("paper", "full").lr == 1e-6
    assert (_preset("paper", "lora").rank, _preset("paper", "lora").alpha) == (16, 32)
    assert (_preset("paper", "dora").rank, _preset("paper", "dora").alpha) == (32, 64)
    assert _preset("paper", "miss").rank == 64 and _preset("paper", "miss").target_modules == ["q_proj", "v_proj"]
    assert _preset("paper", "vera").target_modules == ["q_proj", "v_proj"]
    assert _preset("paper", "lora_plus").options == {"loraplus_lr_ratio": 2.0}
    assert _preset("paper", "adalora").options == {"target_r": 8}
    assert _preset("paper", "milora").target_modules == ["q_proj", "k_proj", "v_proj", "up_proj", "down_proj"]
