"""Config loading: composition by name, overrides, and one clear error for each kind of bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import BaseModel

from rlvr.config import schema
from rlvr.config.loader import ConfigError, config_root, load_sweep, load_trial

REPO = Path(__file__).resolve().parents[2]
TINY = "model: tiny\nrollout: {max_new_tokens: 16}\ndata: {max_prompt_tokens: 64}\n"


def write(tmp_path: Path, text: str, name: str = "trial.yaml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def error_of(tmp_path: Path, text: str, overrides: list[str] = ()) -> str:
    with pytest.raises(ConfigError) as info:
        load_trial(write(tmp_path, text), list(overrides))
    return str(info.value)


def test_sections_compose_by_name_and_from_mappings_merge(tmp_path):
    cfg = load_trial(
        write(tmp_path, TINY + "method: {from: uniform/dora, rank: 4}\nsteps: 5\ncheckpoint: {every_steps: 5}\n")
    )
    assert cfg.model.tiny is not None and cfg.model.name == "tiny-qwen2"
    assert (cfg.method.name, cfg.method.rank, cfg.method.preset) == ("dora", 4, "uniform")
    assert cfg.method.target_modules == schema.ALL_LINEAR


def test_overrides_apply_after_composition_and_parse_values_as_yaml(tmp_path):
    cfg = load_trial(
        write(tmp_path, TINY + "method: uniform/lora\nsteps: 4\ncheckpoint: {every_steps: 2}\n"),
        ["method=uniform/vera", "algorithm.lr=3e-4", "eval.at_start=false"],
    )
    assert cfg.method.name == "vera" and cfg.algorithm.lr == 3e-4 and cfg.eval.at_start is False


def test_unknown_key_names_file_path_and_value(tmp_path):
    msg = error_of(tmp_path, "algorithm:\n  lr: 1.0e-5\n  clip_eps: 0.2\n")
    assert "trial.yaml" in msg and "algorithm.clip_eps" in msg and "unknown key" in msg and "0.2" in msg


def test_wrong_type_names_field_and_value(tmp_path):
    msg = error_of(tmp_path, "steps: many\n")
    assert "steps" in msg and "'many'" in msg and "integer" in msg


def test_out_of_range_value_says_what_is_allowed(tmp_path):
    msg = error_of(tmp_path, "algorithm: {group_size: 1}\n")
    assert "algorithm.group_size" in msg and "greater than or equal to 2" in msg


def test_literal_choice_lists_the_allowed_values(tmp_path):
    msg = error_of(tmp_path, "algorithm: {loss: ppo}\n")
    assert "algorithm.loss" in msg and "'grpo', 'dapo' or 'dr_grpo'" in msg


def test_missing_config_file_lists_what_exists():
    with pytest.raises(ConfigError) as info:
        load_trial("no-such-trial")
    assert "no-such-trial" in str(info.value) and "demo-cpu" in str(info.value)


def test_missing_referenced_section_names_the_path_looked_for(tmp_path):
    msg = error_of(tmp_path, "method: paper/nope\n")
    assert "method" in msg and str(config_root() / "methods" / "paper" / "nope.yaml") in msg and "paper/lora" in msg


def test_invalid_yaml_is_reported_with_the_file(tmp_path):
    msg = error_of(tmp_path, "steps: [1, 2\n")
    assert "trial.yaml" in msg and "not valid YAML" in msg


def test_malformed_override_is_rejected(tmp_path):
    msg = error_of(tmp_path, "steps: 4\ncheckpoint: {every_steps: 2}\n", ["steps"])
    assert "override 'steps'" in msg and "a.b.c=value" in msg


def test_override_of_unknown_key_is_an_error(tmp_path):
    msg = error_of(tmp_path, "steps: 4\ncheckpoint: {every_steps: 2}\n", ["algorithm.learning_rate=1e-5"])
    assert "algorithm.learning_rate" in msg and "unknown key" in msg


def test_a_trial_field_given_to_a_sweep_suggests_the_base_prefix():
    with pytest.raises(ConfigError) as err:
        load_sweep("paper-1.5b", ["resources.gpu_memory_gib=40", "steps=4", "bogus=1"])
    text = str(err.value)
    assert (
        "resources: unknown key (value {...}); it is a trial field: a sweep's trial settings go under base "
        "(e.g. base.resources.gpu_memory_gib=40)" in text
    )
    assert "(e.g. base.steps=4)" in text and "bogus: unknown key (value 1); remove it or check its spelling" in text


def test_unknown_method_lists_the_registry(tmp_path):
    msg = error_of(tmp_path, "method: {name: lora2}\n")
    assert "method.name: 'lora2' is not a known method" in msg and "dora" in msg


def test_impossible_combination_dr_grpo_with_std_scaling(tmp_path):
    msg = error_of(tmp_path, "algorithm: {loss: dr_grpo}\n")
    assert "algorithm.scale_rewards" in msg and "dr_grpo" in msg


def test_training_top_p_below_1_with_tis_is_refused_since_its_weight_would_be_biased(tmp_path):
    msg = error_of(tmp_path, "rollout: {top_p: 0.9}\n")
    assert "rollout.top_p: 0.9" in msg and "algorithm.tis_cap null" in msg
    assert (
        load_trial(
            write(tmp_path, "rollout: {top_p: 0.9, temperature: 0.7}\nalgorithm: {tis_cap: null}\n")
        ).rollout.top_p
        == 0.9
    )


def test_several_learners_need_deepspeed_at_any_zero_stage(tmp_path):
    for stage in (0, 2):
        msg = error_of(tmp_path, f"learner: {{backend: torch, num_learners: 2, zero_stage: {stage}}}\n")
        assert "learner.num_learners: 2 needs backend deepspeed" in msg


def test_colocation_needs_vllm_one_gpu_each_paired_engines_and_no_async(tmp_path):
    msg = error_of(
        tmp_path, "rollout: {colocate: true, engine: hf, num_engines: 2}\nalgorithm: {async_rollout: true}\n"
    )
    for expected in (
        "needs rollout.engine vllm",
        "algorithm.async_rollout",
        "rollout.num_engines 2 must equal learner.num_learners 1",
        "model.gpus_per_engine and gpus_per_learner must be 1, got 0 and 0",
    ):
        assert expected in msg, expected
    ok = load_trial("demo-cpu", ["rollout.colocate=true", "model.gpus_per_engine=1", "model.gpus_per_learner=1"])
    assert ok.rollout.colocate


def test_impossible_combination_adalora_under_deepspeed(tmp_path):
    msg = error_of(tmp_path, "method: uniform/adalora\nlearner: {backend: deepspeed, zero_stage: 2}\n")
    assert "learner.zero_stage: 2 does not train adalora" in msg and "backend torch" in msg


def test_zero3_is_refused_where_deepspeed_cannot_train_the_method_or_its_kl_reference(tmp_path):
    msg = error_of(tmp_path, "method: uniform/lora_fa\nlearner: {backend: deepspeed, zero_stage: 3}\n")
    assert "learner.zero_stage: 3 does not train lora_fa" in msg and "zero_stage 0 or backend torch" in msg
    assert (
        load_trial(
            write(tmp_path, "method: uniform/dora\nlearner: {backend: deepspeed, zero_stage: 3}\n")
        ).learner.zero_stage
        == 3
    )
    msg = error_of(
        tmp_path, "method: uniform/pissa\nalgorithm: {kl_coef: 0.1}\nlearner: {backend: deepspeed, zero_stage: 3}\n"
    )
    assert "algorithm.kl_coef: 0.1 needs pissa's original weights" in msg and "zero_stage 2 or kl_coef 0" in msg
    assert "needs full's original weights" in error_of(
        tmp_path, "method: uniform/full\nalgorithm: {kl_coef: 0.1}\nlearner: {backend: deepspeed, zero_stage: 3}\n"
    )


def test_impossible_combination_context_too_long_for_the_tiny_model(tmp_path):
    msg = error_of(tmp_path, "model: tiny\nrollout: {max_new_tokens: 1000}\n")
    assert "rollout.max_new_tokens" in msg and "max_position_embeddings" in msg


def test_sweep_problems_name_the_trial(tmp_path):
    path = write(
        tmp_path,
        "name: s\nbase: demo-cpu\nmethods: [uniform/lora, {from: uniform/lora_rank1, rank: 8}]\n",
        "sweep.yaml",
    )
    with pytest.raises(ConfigError) as info:
        load_sweep(path)
    assert "lora_rank1" in str(info.value) and "method.rank: 8" in str(info.value)


def test_every_shipped_trial_config_validates():
    for path in sorted((REPO / "configs" / "trials").glob("*.yaml")):
        load_trial(str(path))


def test_every_field_has_a_description():
    sections = [
        c for c in vars(schema).values() if isinstance(c, type) and issubclass(c, BaseModel) and c is not schema.Section
    ]
    missing = [f"{c.__name__}.{n}" for c in sections for n, f in c.model_fields.items() if not f.description]
    assert not missing, missing


def test_cli_exits_2_with_one_clear_message(tmp_path):
    path = write(tmp_path, "algorithm: {group_size: 0}\n")
    proc = subprocess.run(
        [sys.executable, "-m", "rlvr.cli", "config", "show", "trial", path], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2
    assert "algorithm.group_size" in proc.stderr and "Traceback" not in proc.stderr


def test_sync_route_must_be_one_the_method_can_take(tmp_path):
    msg = error_of(tmp_path, "method: uniform/dora\nrollout: {sync_route: native}\n")
    assert "rollout.sync_route: 'native' cannot serve dora (its route is 'merged')" in msg
    load_trial(write(tmp_path, "method: uniform/lora\nrollout: {sync_route: merged}\n"))  # any method can merge
    for shared in ("pissa", "vera", "miss"):  # served as their shared export, a LoRA on the original base
        load_trial(write(tmp_path, f"method: uniform/{shared}\nrollout: {{sync_route: native}}\n"))
    assert "cannot serve ia3" in error_of(tmp_path, "method: uniform/ia3\nrollout: {sync_route: native}\n")


def test_a_config_built_in_code_is_checked_like_a_loaded_one():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="learner.num_learners: 2 needs backend deepspeed"):
        schema.TrialConfig(learner=schema.LearnerConfig(backend="torch", num_learners=2, zero_stage=0))
    base = schema.TrialConfig(steps=8, checkpoint=schema.CheckpointConfig(every_steps=8))
    expected = r"trial \w+ \(.*steps=4\): checkpoint.every_steps: 8 is more than steps 4"
    with pytest.raises(ValidationError, match=expected):
        schema.SweepConfig(base=base, grid={"steps": [16, 4]})


def test_a_sweeps_base_is_checked_through_the_trials_it_expands_to():
    # alone the base would write no checkpoint; every trial of the grid does
    cfg = schema.SweepConfig.model_validate({"base": {"steps": 8}, "grid": {"steps": [64, 128]}})
    assert cfg.base.steps == 8


def test_a_stored_record_reads_back_without_the_rules_it_was_checked_by():
    # a trial's config.yaml was checked when it ran; a rule added since must not make the run unreadable
    stored = {"steps": 8}  # alone it would write no checkpoint (checkpoint.every_steps 64)
    assert schema.TrialConfig.model_validate(stored, context=schema.UNCHECKED).steps == 8
    assert schema.SweepConfig.model_validate({"base": stored}, context=schema.UNCHECKED).base.steps == 8
