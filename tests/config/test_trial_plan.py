"""The trial plan: bundle slots, sync route, learning rate, engine context and the one checkpoint rule."""

from __future__ import annotations

import pytest

from rlvr.analysis.rundir import TrialDir
from rlvr.config.layout import TrialLayout
from rlvr.config.resources import trial_bundles
from rlvr.config.schema import (
    AlgorithmConfig,
    BenchmarkSpec,
    CheckpointConfig,
    DataConfig,
    EvalConfig,
    LearnerConfig,
    MethodConfig,
    ModelConfig,
    RewardConfig,
    RolloutConfig,
    TrialConfig,
)
from rlvr.config.trial_plan import MicroBatching, TrialPlan, probe_context
from rlvr.learner.spec import LearnerSpec
from rlvr.rollout.spec import EngineSpec
from rlvr.storage import RunStorage
from rlvr.trial.checkpoint import Checkpointer


def _cfg(**sections) -> TrialConfig:
    base = dict(
        algorithm=AlgorithmConfig(prompts_per_step=12),  # 96 completions: a share for each of the 3 learner ranks
        model=ModelConfig(gpus_per_engine=2, gpus_per_learner=1),
        rollout=RolloutConfig(num_engines=2),
        learner=LearnerConfig(num_learners=3),
        reward=RewardConfig(num_actors=2),
    )
    return TrialConfig(**{**base, **sections})


def test_every_actor_has_its_own_bundle_with_its_resources():
    plan = TrialPlan.from_config(_cfg())
    slots = plan.slots
    assert (slots.controller, slots.engines, slots.learners, slots.rewards) == (0, (1, 2), (3, 4, 5), (6, 7))
    bundles = plan.bundles(controller_cpus=0.5)
    assert len(bundles) == len(slots) == 8
    assert bundles[slots.controller] == {"CPU": 0.5}
    assert all(bundles[i] == {"CPU": 1, "GPU": 2.0} for i in slots.engines)
    assert all(bundles[i] == {"CPU": 1, "GPU": 1.0} for i in slots.learners)
    assert all(bundles[i] == {"CPU": 1} for i in slots.rewards)
    assert trial_bundles(_cfg(), 0.5) == bundles  # what the sweep reserves is what the trial places into


def test_colocated_learner_ranks_share_their_engines_bundle_and_gpu():
    cfg = _cfg(
        model=ModelConfig(gpus_per_engine=1, gpus_per_learner=1),
        rollout=RolloutConfig(num_engines=2, colocate=True),
        learner=LearnerConfig(num_learners=2),
    )
    plan = TrialPlan.from_config(cfg)
    slots = plan.slots
    assert slots.colocated and (slots.engines, slots.learners, slots.rewards) == ((1, 2), (1, 2), (3, 4))
    bundles = plan.bundles(controller_cpus=0.5)
    assert len(bundles) == len(slots) == 5
    assert all(bundles[i] == {"CPU": 2, "GPU": 1.0} for i in slots.engines)
    assert plan.engine_gpus == plan.learner_gpus == 0.5  # two actors on one GPU of one bundle
    assert trial_bundles(cfg, 0.5) == bundles
    assert not TrialPlan.from_config(_cfg()).slots.colocated and TrialPlan.from_config(_cfg()).engine_gpus == 2


def test_sync_route_auto_is_the_methods_own_and_merged_reserves_no_lora_rank():
    lora = MethodConfig(name="lora", rank=8)
    auto = TrialPlan.from_config(_cfg(method=lora))
    assert (auto.route, auto.engine_lora_rank) == ("native", 8)
    merged = TrialPlan.from_config(_cfg(method=lora, rollout=RolloutConfig(sync_route="merged")))
    assert (merged.route, merged.engine_lora_rank) == ("merged", None)
    assert TrialPlan.from_config(_cfg(method=MethodConfig(name="pissa", rank=8))).route == "converted"
    assert TrialPlan.from_config(_cfg(method=MethodConfig(name="dora", rank=8))).route == "merged"


def test_a_shared_export_reserves_the_rank_it_is_served_at():
    native = RolloutConfig(sync_route="native")
    ranks = {
        name: TrialPlan.from_config(_cfg(method=MethodConfig(name=name, rank=8), rollout=native)).engine_lora_rank
        for name in ("lora", "pissa", "miss", "vera")
    }
    assert ranks == {"lora": 8, "pissa": 16, "miss": 8, "vera": 8}  # PiSSA's initial factors ride along


def test_learning_rate_is_the_methods_override_else_the_algorithms():
    algo = AlgorithmConfig(lr=3e-5, prompts_per_step=12)
    assert TrialPlan.from_config(_cfg(algorithm=algo)).lr == 3e-5
    assert TrialPlan.from_config(_cfg(algorithm=algo, method=MethodConfig(name="full", lr=1e-6))).lr == 1e-6


def test_engine_context_fits_the_longest_prompt_and_completion_it_serves():
    data, rollout = DataConfig(max_prompt_tokens=100), RolloutConfig(max_new_tokens=50, probe_tokens=16)
    assert TrialPlan.from_config(_cfg(data=data, rollout=rollout)).max_model_len == 150
    evals = EvalConfig(benchmarks=[BenchmarkSpec(name="aime24")], max_new_tokens=70)
    assert TrialPlan.from_config(_cfg(data=data, rollout=rollout, eval=evals)).max_model_len == 170
    fixed = RolloutConfig(max_new_tokens=50, max_model_len=4096)
    assert TrialPlan.from_config(_cfg(data=data, rollout=fixed, eval=evals)).max_model_len == 4096
    # and the post-sync probe, when it is the longer: its prompt (one token per byte at most) and its tokens
    probe = RolloutConfig(max_new_tokens=50, probe_tokens=256)
    assert TrialPlan.from_config(_cfg(data=data, rollout=probe)).max_model_len == probe_context(256) > 256 + 38


def test_trial_and_analysis_count_only_checkpoints_whose_meta_json_exists(tmp_path):
    for step in (1, 2, 3):
        folder = tmp_path / TrialLayout.checkpoint(step)
        folder.mkdir(parents=True)
        (folder / TrialLayout.TRAINABLE).write_bytes(b"")
        if step != 2:  # step 2 crashed while being written: its tensors are there, meta.json is not
            (folder / TrialLayout.COMPLETE).write_text("{}")
    (tmp_path / TrialLayout.CHECKPOINTS / "step_4").mkdir()  # not a checkpoint folder name
    assert TrialLayout.checkpoint_steps(RunStorage(str(tmp_path))) == [1, 3]
    assert Checkpointer(RunStorage(str(tmp_path)), CheckpointConfig()).steps() == [1, 3]
    assert TrialDir(str(tmp_path)).checkpoint_steps() == [1, 3]


@pytest.mark.parametrize(
    "step, name, path",
    [(7, "", "checkpoints/step_000007"), (12, TrialLayout.TRAINABLE, "checkpoints/step_000012/trainable.safetensors")],
)
def test_checkpoint_paths(step, name, path):
    assert TrialLayout.checkpoint(step, name) == path


def test_learner_values_from_other_sections_are_resolved_once_in_the_plan():
    cfg = _cfg(
        rollout=RolloutConfig(num_engines=2, temperature=0.7, max_new_tokens=48),
        learner=LearnerConfig(num_learners=3, micro_batch_size=6, max_tokens_per_micro_batch=200, threads=2),
    )
    plan = TrialPlan.from_config(cfg)
    assert (plan.sampling_temperature, plan.dr_grpo_norm, plan.actor_threads) == (0.7, 48, 2)
    assert (plan.micro_batching.sequences, plan.micro_batching.tokens) == (6, 200)
    assert plan.micro_batching.largest(150) == 200 and plan.micro_batching.largest(250) == 250
    assert MicroBatching(sequences=6, tokens=None).largest(150) == 900
    fixed_norm = AlgorithmConfig(prompts_per_step=12, dr_grpo_norm=32)
    assert TrialPlan.from_config(_cfg(algorithm=fixed_norm)).dr_grpo_norm == 32
    spec = LearnerSpec.from_trial(cfg, plan)
    assert (spec.lr, spec.route, spec.temperature, spec.dr_grpo_norm) == (plan.lr, plan.route, 0.7, 48)
    assert spec.micro_batching == plan.micro_batching


def test_engines_get_the_plans_context_and_rank_without_a_config_copy():
    cfg = _cfg(
        data=DataConfig(max_prompt_tokens=100),
        method=MethodConfig(name="lora", rank=8),
        rollout=RolloutConfig(num_engines=2, max_new_tokens=50, probe_tokens=16),
    )
    plan = TrialPlan.from_config(cfg)
    spec = EngineSpec.from_trial(cfg, plan)
    assert (spec.max_model_len, spec.max_lora_rank, spec.threads) == (150, 8, plan.actor_threads)
    assert spec.rollout is cfg.rollout and spec.rollout.max_model_len is None
    with pytest.raises(ValueError, match="rollout.max_model_len: 4096 differs from the engine's context 150"):
        EngineSpec(cfg.model, RolloutConfig(max_model_len=4096), max_model_len=150)
