"""Verdicts follow the intervals and never claim more; the report's findings section over a synthetic run."""

import numpy as np
import pytest

from rlvr.analysis.findings import (
    CONTRADICTED,
    HOLDS,
    INCONCLUSIVE,
    LORA_UNTRAINED,
    ONE_SEED,
    UNTRAINED,
    findings_table,
    robust_verdict,
    verdict,
)
from rlvr.analysis.intervals import Interval, RunIntervals, Scores, analysis_config, bootstrap, run_intervals
from rlvr.analysis.rundir import RunDir
from rlvr.analysis.significance import UNDECIDABLE, TMean
from rlvr.analysis.study import group_trials, study_table, trial_rows
from rlvr.config.schema import AnalysisConfig

from .fake_run import make_run


def iv(low, high, seeds=3):
    mid = (low + high) / 2
    t = TMean(mid, (high - low) / 2 / 4.3027, seeds - 1) if seeds > 1 else None
    return Interval(mid, low, high, seeds, 100, low, high, t)


@pytest.mark.parametrize(
    "rule, line, interval, p, expected",
    [
        ("above", 0.0, iv(0.01, 0.05), 0.01, HOLDS),
        ("above", 0.0, iv(-0.01, 0.05), 0.2, INCONCLUSIVE),
        ("above", 0.0, iv(-0.05, -0.01), 0.01, CONTRADICTED),
        # significant alone, not after Holm over the family
        ("above", 0.0, iv(0.01, 0.05), 0.08, INCONCLUSIVE),
        ("below", 0.0, iv(-0.05, -0.01), 0.01, HOLDS),
        ("below", 0.0, iv(0.01, 0.05), 0.01, CONTRADICTED),
        # LoRA at 0.40, collapse = losing 0.20 or more
        ("collapse", -0.2, iv(-0.39, -0.30), 0.001, HOLDS),
        ("collapse", -0.2, iv(-0.25, -0.10), 0.5, INCONCLUSIVE),
        ("collapse", -0.2, iv(-0.15, -0.05), 0.01, CONTRADICTED),
        ("above", 0.0, iv(0.01, 0.05, seeds=1), None, ONE_SEED),
    ],
)
def test_verdict_needs_the_holm_adjusted_test_and_the_bootstrap_to_agree(rule, line, interval, p, expected):
    assert verdict(rule, interval, line, p, alpha=0.05) == expected


def test_an_ablation_is_robust_only_when_an_equivalence_test_shows_it():
    narrow = [iv(-0.008, 0.008, seeds=10), iv(-0.01, 0.005, seeds=10)]
    assert robust_verdict(narrow, margin=0.02, alpha=0.05) == HOLDS
    assert robust_verdict([narrow[0], iv(0.04, 0.06, seeds=10)], margin=0.02, alpha=0.05) == CONTRADICTED
    # with 3 seeds and standard errors this large no result could show equivalence within +-2 points
    assert robust_verdict([iv(-0.05, 0.05)], margin=0.02, alpha=0.05) == UNDECIDABLE
    assert robust_verdict([iv(-0.005, 0.005, seeds=1)], margin=0.02, alpha=0.05) == ONE_SEED


@pytest.fixture(scope="module")
def run_and_intervals(tmp_path_factory):
    run = RunDir(str(make_run(tmp_path_factory.mktemp("findings"))))
    rows = trial_rows(run)
    return run, rows, run_intervals(run, rows, analysis_config(run))


def test_run_intervals_cover_every_evaluated_configuration_against_its_lora(run_and_intervals):
    _, rows, ivs = run_and_intervals
    names = {name for _, name in ivs.average}
    assert names == {"lora r16", "dora r32", "pissa r32", "vera r32"}
    pissa = next(v for (_, n), v in ivs.vs_lora.items() if n == "pissa r32")
    # paired on the one seed both sides share: no t interval, the bootstrap over problems only
    assert pissa.seeds == 1 and pissa.t is None and pissa.problems == 80 and pissa.high < -0.3
    # vera has no math500: its difference is taken on the 40 aime24 problems both evaluated
    assert next(v for (_, n), v in ivs.vs_lora.items() if n == "vera r32").problems == 40
    header, table = study_table(rows, ivs.vs_lora)
    cells = {r[1]: dict(zip(header, r)) for r in table}
    # one seed: no ranking number
    assert cells["pissa r32"]["Δ LoRA"] == "1 seed"


def test_findings_table_gives_each_claim_a_verdict_or_says_the_run_lacks_it(run_and_intervals):
    _, rows, ivs = run_and_intervals
    header, table = findings_table(group_trials(rows), ivs)
    by = {(r[0], r[1]): dict(zip(header, r)) for r in table}
    pissa = by[("SVD inits collapse: PiSSA", "pissa r32")]
    assert pissa["verdict"] == ONE_SEED and pissa["study Δ"] == "-42.3" and pissa["seeds"] == "1"
    assert by[("SVD inits collapse: MiLoRA", "milora")]["verdict"] == "not in this run"
    assert {r[-1] for r in table if not r[0].startswith("ablation")} == {ONE_SEED, "not in this run"}
    assert all(r[-1] == "not in this run" for r in table if r[0].startswith("ablation"))


def test_ablation_settings_are_read_from_the_sweep_labels_grid_part():
    from rlvr.analysis.findings import _axis_value

    assert _axis_value("rank=16,alpha=32", "rank") == "16" and _axis_value("lr=1e-05", "lr") == "1e-05"
    assert (
        _axis_value("loss=dr_grpo,scale_rewards=False", "loss") == "dr_grpo" and _axis_value("lr=1e-05", "rank") is None
    )


def _row(method, rank, setting, seed, acc):
    return {
        "trial_id": f"{method}{rank}{setting}{seed}",
        "status": "done",
        "model": "m",
        "method": method,
        "rank": rank,
        "preset": "uniform",
        "label": f"m/uniform/{method}/seed{seed}" + (f"/{setting}" if setting else ""),
        "eval/average/avg_at_k": acc,
    }


def test_a_configuration_is_compared_with_lora_at_its_own_rank():
    from rlvr.analysis.study import lora_reference

    groups = group_trials(
        [
            _row("lora", 8, "", 1, 0.5),
            _row("lora", 32, "", 1, 0.6),
            _row("dora", 32, "", 1, 0.6),
            _row("dora", 8, "", 1, 0.6),
        ]
    )
    assert [lora_reference(g, groups).rank for g in groups if g.method == "dora"] == [32, 8]


def test_an_lr_grid_reads_a_finding_at_loras_best_lr_and_with_each_side_at_its_own_best():
    rows = [_row(m, 8, f"lr={lr}", 42, 0.0) for m in ("lora", "pissa") for lr in ("1e-05", "0.001")]
    groups = group_trials(rows)
    problems = tuple(("b", str(i)) for i in range(50))
    acc = {
        ("lora", "lr=1e-05"): 0.5,
        ("lora", "lr=0.001"): 0.6,
        ("pissa", "lr=1e-05"): 0.55,
        ("pissa", "lr=0.001"): 0.05,
    }
    cfg = AnalysisConfig(bootstrap_resamples=200)
    seed_shift = np.array([[0.0], [0.01], [-0.02], [0.015]])  # shared by every method on a seed
    noise = np.random.default_rng(0).normal(0, 0.002, (4, 50))
    scores = {
        (g.model, g.name): Scores(problems, acc[(g.method, g.setting)] + seed_shift + noise, (1, 2, 3, 4))
        for g in groups
    }
    ivs = RunIntervals({k: bootstrap(s, None, cfg) for k, s in scores.items()}, {}, {}, scores, cfg)
    for g in groups:
        if g.method == "pissa":
            ref = ("m", f"lora r8 {g.setting}")
            ivs.vs_lora[(g.model, g.name)], ivs.reference[(g.model, g.name)] = (
                bootstrap(scores[(g.model, g.name)], scores[ref], cfg),
                ref,
            )
    header, table = findings_table(groups, ivs)
    pissa = [dict(zip(header, r)) for r in table if r[0].startswith("SVD inits collapse: PiSSA")]
    # collapsed at LoRA's best lr (1e-3), but at its own best lr (1e-5) it loses only 5 points to LoRA's best;
    # the pair at 1e-5, where LoRA is not at its best, is left out
    assert [(r["configuration"], r["verdict"]) for r in pissa] == [
        ("pissa r8 lr=0.001", HOLDS),
        ("pissa r8 lr=1e-05", CONTRADICTED),
    ]
    assert pissa[-1]["vs"] == "lora r8 lr=0.001" and pissa[-1]["Δ here [t interval]"].startswith("-5.0")
    # the published -42.3 lies inside the collapsed pair's interval, not inside the tuned pair's
    assert [r["study Δ inside"] for r in pissa] == ["no", "no"] and pissa[0]["study Δ"] == "-42.3"


def _family(deltas: dict[str, float], untrained: tuple[str, ...] = ()) -> RunIntervals:
    """LoRA and methods on 5 shared seeds, each ``deltas[method]`` above LoRA with per-seed differences spread by
    -2, -1, 0, 1, 2 times 0.005 (se 0.0035, 4 df); a seed shifts every method alike."""
    cfg = AnalysisConfig(bootstrap_resamples=300)
    problems = tuple(("b", str(i)) for i in range(40))
    shift = np.random.default_rng(1).normal(0, 0.02, (5, 1))
    spread = 0.005 * np.arange(-2, 3)[:, None]

    def make(d):
        return Scores(problems, 0.4 + shift + (d + spread if d else 0) + np.zeros((1, 40)), tuple(range(5)))

    scores = {("m", "lora"): make(0.0)} | {("m", m): make(d) for m, d in deltas.items()}
    ivs = RunIntervals({k: bootstrap(s, None, cfg) for k, s in scores.items()}, {}, {}, scores, cfg)
    for key in scores:
        if key != ("m", "lora"):
            ivs.vs_lora[key], ivs.reference[key] = bootstrap(scores[key], scores[("m", "lora")], cfg), ("m", "lora")
        # the base is 0.1 below each trained method (spread per seed), or the method itself where it never moved
        moved = Scores(problems, scores[key].values - 0.1 - spread, tuple(range(5)))
        start = scores[key] if key[1] in untrained else moved
        ivs.vs_base[key] = bootstrap(scores[key], start, cfg)
    return ivs


def _verdicts(ivs: RunIntervals) -> dict[str, dict[str, str]]:
    groups = [group for key in ivs.scores for group in group_trials([_row(key[1], None, "", 1, 0.4)])]
    header, table = findings_table(groups, ivs)
    return {r[1]: dict(zip(header, r)) for r in table if r[2] == "lora"}


def test_holm_corrects_over_the_family_of_claims():
    # four effects of t = 3.8 on 4 df (p = 0.02 each) are significant alone, not after Holm over the family
    # (4 x 0.02 = 0.08); the collapse stays
    ivs = _family({"dora": 0.0133, "adalora": 0.0133, "miss": 0.0133, "full": 0.0133, "pissa": -0.3})
    rows = _verdicts(ivs)
    small = ("dora", "adalora", "miss", "full")
    assert all(ivs.vs_lora[("m", m)].p_value(0.0) < 0.05 < float(rows[m]["p (Holm)"]) for m in small)
    assert {rows[m]["verdict"] for m in small} == {INCONCLUSIVE} and rows["pissa"]["verdict"] == HOLDS


def test_a_method_that_never_left_the_base_is_untrained_not_a_bottleneck():
    rows = _verdicts(_family({"vera": -0.1, "ia3": -0.1}, untrained=("vera",)))
    assert rows["vera"]["verdict"] == UNTRAINED and rows["vera"]["p (Holm)"] == "—"
    assert rows["ia3"]["verdict"] == HOLDS
    assert _verdicts(_family({"ia3": -0.1}, untrained=("lora",)))["ia3"]["verdict"] == LORA_UNTRAINED


def test_the_published_delta_is_tested_against_our_interval():
    # IA3 published -20.2 points; our interval around -20 contains it, one around -3 does not
    assert _verdicts(_family({"ia3": -0.202}))["ia3"]["study Δ inside"] == "yes"
    assert _verdicts(_family({"ia3": -0.03}))["ia3"]["study Δ inside"] == "no"
