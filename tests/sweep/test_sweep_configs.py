"""The shipped sweep configs pass validation and dry-run; trial resources and placeability are read from configs."""

import pytest
from rich.console import Console

from rlvr.analysis.published import STUDY_BENCHMARKS
from rlvr.config.loader import config_root, load_sweep
from rlvr.config.resources import trial_bundles, unplaceable
from rlvr.config.schema import TrialConfig
from rlvr.sweep.controller import run_sweep

SWEEPS = sorted(p.stem for p in (config_root() / "sweeps").glob("*.yaml"))
STUDY_METHODS = {
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
    "full",
}


@pytest.mark.parametrize("name", SWEEPS)
def test_shipped_sweep_validates_and_dry_runs(name):
    if not (config_root() / "trials" / "demo-cpu.yaml").is_file() and name == "demo-cpu":
        pytest.skip("configs/trials/demo-cpu.yaml (the demo trial) is not written yet")
    cfg = load_sweep(name)
    table = run_sweep(cfg, dry_run=True, console=Console(file=open("/dev/null", "w")))
    assert table.num_rows >= 3
    assert len(set(table.column("trial_id").to_pylist())) == table.num_rows
    if name == "paper-1.5b" or name == "demo-cpu":
        assert {m.name for m in cfg.methods} == STUDY_METHODS


def test_paper_sweep_uses_the_study_recipe_and_gpu_bundles():
    cfg = load_sweep("paper-1.5b")
    trial = cfg.base
    assert (trial.algorithm.group_size, trial.algorithm.prompts_per_step, trial.algorithm.lr, trial.steps) == (
        8,
        16,
        1e-5,
        1024,
    )
    assert (
        trial.checkpoint.every_steps == 64 and trial.rollout.max_new_tokens == 16384 and trial.learner.zero_stage == 2
    )
    # the study's evaluation set, so the run's average is comparable with the published one
    assert {b.name: b.k for b in trial.eval.benchmarks} == STUDY_BENCHMARKS
    assert STUDY_BENCHMARKS == {"aime24": 32, "aime25": 32, "amc23": 32, "hmmt25": 32, "math500": 4, "minerva_math": 4}
    full = next(m for m in cfg.methods if m.name == "full")
    assert full.lr == 1e-6
    assert cfg.models[0].name == "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B"


def test_bundles_follow_engines_learners_and_reward_actors():
    cfg = TrialConfig.model_validate(
        {
            "model": {"gpus_per_engine": 2, "gpus_per_learner": 1},
            "rollout": {"num_engines": 2},
            "learner": {"num_learners": 1},
            "reward": {"num_actors": 3},
        }
    )
    bundles = trial_bundles(cfg, cpus_per_trial=0.5)
    assert bundles == [{"CPU": 0.5}] + [{"CPU": 1, "GPU": 2.0}] * 2 + [{"CPU": 1, "GPU": 1.0}] + [{"CPU": 1}] * 3


def test_unplaceable_trials_are_explained():
    assert unplaceable([{"CPU": 1, "GPU": 1}], [{"CPU": 8}]) == "no node has a bundle of {'CPU': 1, 'GPU': 1}"
    assert "needs {'CPU': 6}" in unplaceable([{"CPU": 3}, {"CPU": 3}], [{"CPU": 4}])
    # STRICT_PACK (the default) needs the whole trial on one node; PACK may split it across two
    two_nodes = [{"CPU": 4, "GPU": 1}, {"CPU": 4, "GPU": 1}]
    split = [{"CPU": 1, "GPU": 1}, {"CPU": 1, "GPU": 1}]
    assert "on one node (placement STRICT_PACK)" in unplaceable(split, two_nodes, "STRICT_PACK")
    assert unplaceable(split, two_nodes, "PACK") is None
    assert unplaceable(split, [{"CPU": 4, "GPU": 2}], "STRICT_PACK") is None
    assert unplaceable([{"CPU": 3}, {"CPU": 1, "GPU": 1}], [{"CPU": 4}, {"CPU": 2, "GPU": 1}]) is None
