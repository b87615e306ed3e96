"""A study's stages: grid extension, successive halving, budgets and the sweeps each stage becomes."""

import math

import pytest

from rlvr.config.loader import ConfigError, load_study
from rlvr.study.run import budget_lines
from rlvr.study.stages import Stage, chosen_stage, extension, halve, mean_score, stage_sweep, trial_budget, trial_lr


def test_the_grid_is_extended_while_the_best_lr_sits_on_its_edge():
    assert extension([1e-4, 1e-3, 1e-2], {1e-4: 0.3, 1e-3: 0.4, 1e-2: 0.5}, 10) == pytest.approx(1e-1)
    assert extension([1e-4, 1e-3, 1e-2], {1e-4: 0.5, 1e-3: 0.4, 1e-2: 0.1}, 10) == pytest.approx(1e-5)
    assert extension([1e-4, 1e-3, 1e-2], {1e-4: 0.3, 1e-3: 0.5, 1e-2: 0.1}, 10) is None


def test_halving_keeps_the_best_share_and_a_diverged_lr_ranks_last():
    scores = {1e-4: 0.3, 1e-3: 0.5, 1e-2: mean_score([0.6, None]), 1e-1: 0.4}
    assert scores[1e-2] == -math.inf
    assert halve(list(scores), scores, 2) == [1e-3, 1e-1]
    assert halve([1e-4, 1e-3, 1e-1], scores, 2) == [1e-3, 1e-1]  # ceil(3 / 2)


def test_the_demo_study_config_loads_and_prints_its_budget_before_anything():
    cfg = load_study("demo-cpu")
    assert [n for n, _ in trial_budget(cfg)] == [60, 36, 24, 60]
    lines = "\n".join(budget_lines(cfg))
    assert "180 trials" in lines and "time: ~2.1 h" in lines and "GPU-hours" in lines


def test_confirmation_seeds_must_be_fresh():
    with pytest.raises(ConfigError, match="confirmation_seeds"):
        load_study("demo-cpu", ["tuning_seeds=[1,101]"])


def test_a_stage_is_a_sweep_of_each_methods_lrs_and_the_confirmation_evaluates_the_whole_set():
    cfg = load_study("demo-cpu", ["tuning_eval_limit=32"])
    sweep, specs = stage_sweep(cfg, Stage("tune-0", {0: (1e-3, 1e-2), 5: (1e-2,)}, (1, 2), 10))
    assert sweep.name == "demo-cpu/tune-0" and len(specs) == 6
    assert {(s.config.method.name, trial_lr(s.config), s.config.seed) for s in specs} == {
        ("lora", 1e-3, 1),
        ("lora", 1e-3, 2),
        ("lora", 1e-2, 1),
        ("lora", 1e-2, 2),
        ("ia3", 1e-2, 1),
        ("ia3", 1e-2, 2),
    }
    assert all(s.config.steps == 10 and s.config.eval.benchmarks[0].limit == 32 for s in specs)
    assert (
        specs[0].label.endswith("seed1/lr=0.001")
        and specs[0].config.output_dir == "runs/studies/demo-cpu/tune-0/trials"
    )
    # the same trial in a later stage's sweep keeps its id: a resumed study re-runs nothing
    again = stage_sweep(cfg, Stage("tune-0", {0: (1e-3,)}, (1,), 10))[1]
    assert again[0].trial_id == specs[0].trial_id
    confirm = stage_sweep(cfg, chosen_stage(cfg, {0: 1e-3, 5: 1e-2}))[1]
    assert len(confirm) == 20 and {s.config.seed for s in confirm} == set(range(101, 111))
    assert all(s.config.steps == 30 and s.config.eval.benchmarks[0].limit is None for s in confirm)


class _Scripted:
    """Stage 1's decisions on scripted scores (a peak per method), without running trials."""

    def __init__(self, tmp_path, peaks: dict[int, float], overrides: list[str]):
        from rich.console import Console

        from rlvr.study.run import _Study

        cfg = load_study("demo-cpu", ["methods=[uniform/lora,uniform/ia3]", f"storage={tmp_path}", *overrides])
        self.calls: list[tuple[dict, int]] = []
        study = _Study(cfg, None, Console(quiet=True), False)

        def run(lrs, seeds, steps):
            self.calls.append(({i: tuple(sorted(v)) for i, v in lrs.items()}, steps))
            # closeness to the method's peak in decades; longer horizons score every lr higher
            return {i: {lr: steps - abs(math.log10(lr / peaks[i])) for lr in v} for i, v in lrs.items()}

        study.run = run
        self.chosen = study.tune()
        self.record = study.record


def test_stage_one_extends_an_edge_best_then_halves_at_growing_horizons(tmp_path):
    s = _Scripted(
        tmp_path,
        {0: 1e-1, 1: 1e-3},
        ["lrs=[1.0e-4,1.0e-3,1.0e-2]", "max_extensions=2", "min_steps=10", "halving=2", "base.steps=30"],
    )
    assert s.calls[0] == ({0: (1e-4, 1e-3, 1e-2), 1: (1e-4, 1e-3, 1e-2)}, 10)
    assert s.calls[1][0] == {0: (pytest.approx(1e-1),)}  # LoRA's best was the top edge: one decade up
    assert s.calls[2][0] == {0: (pytest.approx(1.0),)}  # 1e-1 was still the edge best: one more, now interior
    assert [steps for _, steps in s.calls[3:]] == [20, 30] and len(s.calls[3][0][0]) == 3  # 5 lrs -> 3 -> 2
    assert s.chosen[0] == pytest.approx(1e-1) and s.chosen[1] == pytest.approx(1e-3) and s.record["edge"] == []


def test_an_lr_still_on_the_edge_after_every_extension_is_reported_untuned(tmp_path):
    s = _Scripted(
        tmp_path, {0: 1e2, 1: 1e-3}, ["lrs=[1.0e-3,1.0e-2]", "max_extensions=1", "min_steps=30", "base.steps=30"]
    )
    assert len(s.calls) == 2 and s.record["edge"] == ["lora r16"] and s.chosen[0] == pytest.approx(1e-1)
