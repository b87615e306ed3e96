"""Grid expansion: order, labels, stable ids, and errors that name the grid entry."""

import pytest
from pydantic import ValidationError

from rlvr.config.grid import expand, trial_id
from rlvr.config.schema import MethodConfig, ModelConfig, SweepConfig, TrialConfig


def _sweep(**kw) -> SweepConfig:
    return SweepConfig(name="s", **kw)


def test_grid_is_the_product_of_models_methods_axes_and_seeds_with_seeds_fastest():
    cfg = _sweep(
        methods=[MethodConfig(name="lora", preset="paper"), MethodConfig(name="dora", preset="paper")],
        seeds=[1, 2],
        grid={"algorithm.lr": [1e-5, 1e-6]},
    )
    specs = expand(cfg)
    assert len(specs) == 8
    assert [s.label for s in specs[:3]] == [
        "tiny-qwen2/paper/lora/seed1/lr=1e-05",
        "tiny-qwen2/paper/lora/seed2/lr=1e-05",
        "tiny-qwen2/paper/lora/seed1/lr=1e-06",
    ]
    assert specs[2].config.algorithm.lr == 1e-6 and specs[2].config.seed == 1
    assert specs[0].config.name == specs[0].label
    assert specs[0].config.output_dir == "runs/s/trials"


def test_trial_ids_are_stable_short_hashes_that_ignore_storage_and_name():
    a = expand(_sweep(seeds=[1, 2]))
    b = expand(_sweep(seeds=[1, 2], storage="s3://bucket/runs"))
    assert [s.trial_id for s in a] == [s.trial_id for s in b]
    assert len({s.trial_id for s in a}) == 2
    assert all(len(s.trial_id) == 12 and int(s.trial_id, 16) >= 0 for s in a)
    assert trial_id(a[0].config.model_copy(update={"name": "other"})) == a[0].trial_id


def test_a_new_field_with_a_default_keeps_every_id_so_a_sweep_resumes_across_releases():
    class NextRelease(TrialConfig):
        new_knob: int = 0

    spec = expand(_sweep(seeds=[1]))[0]
    upgraded = NextRelease.model_validate(spec.config.model_dump())
    assert trial_id(upgraded) == spec.trial_id
    assert trial_id(upgraded.model_copy(update={"new_knob": 1})) != spec.trial_id


def test_section_valued_axis_merges_into_the_section_and_labels_by_its_keys():
    cfg = _sweep(grid={"algorithm": [{"loss": "grpo"}, {"loss": "dr_grpo", "scale_rewards": False}]})
    specs = expand(cfg)
    assert specs[1].config.algorithm.loss == "dr_grpo" and specs[1].config.algorithm.scale_rewards is False
    assert specs[1].config.algorithm.group_size == cfg.base.algorithm.group_size
    assert specs[1].label.endswith("/loss=dr_grpo,scale_rewards=False")


def test_entries_that_differ_outside_the_label_get_the_id_appended():
    specs = expand(_sweep(methods=[MethodConfig(name="lora", rank=8), MethodConfig(name="lora", rank=16)]))
    assert len({s.label for s in specs}) == 2
    assert all(s.label.endswith(s.trial_id) for s in specs)


# Building a SweepConfig expands its grid and checks every trial, so a bad grid fails at construction.
def test_identical_trials_are_rejected_naming_the_entry():
    with pytest.raises(ValidationError, match=r"methods\[1\].*same trial"):
        expand(_sweep(methods=[MethodConfig(name="lora"), MethodConfig(name="lora")]))


def test_unknown_grid_field_is_an_error_naming_its_path():
    with pytest.raises(ValidationError, match=r"algorithm\.lrr"):
        expand(_sweep(grid={"algorithm.lrr": [1e-5]}))
    with pytest.raises(ValidationError, match=r"grid\.seed\.x: seed is a int, not a section"):
        expand(_sweep(grid={"seed.x": [1]}))
    with pytest.raises(ValidationError, match=r"grid\.algorithm\.lr: expected a non-empty list"):
        expand(_sweep(grid={"algorithm.lr": []}))


def test_hub_model_names_label_by_their_last_component():
    specs = expand(_sweep(models=[ModelConfig(name="deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B")]))
    assert specs[0].label.startswith("DeepSeek-R1-Distill-Qwen-1.5B/")
