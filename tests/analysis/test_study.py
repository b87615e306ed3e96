"""The study's table over a synthetic run: seeds pooled, missing data named, LoRA and published references."""

import pytest

from rlvr.analysis.published import published_average
from rlvr.analysis.rundir import RunDir
from rlvr.analysis.study import frontier_points, pareto_front, setting, study_table, trial_rows

from .fake_run import make_run


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    run = RunDir(str(make_run(tmp_path_factory.mktemp("study"))))
    header, rows = study_table(trial_rows(run))
    return header, {r[1]: dict(zip(header, r)) for r in rows}


def test_header_names_each_benchmark_with_its_k(table):
    header, _ = table
    assert header[6:10] == ["aime24 Avg@32", "aime24 Pass@32", "math500 Avg@4", "math500 Pass@4"]
    assert header[-3:] == ["average", "Δ LoRA", "published avg"]


def test_seeds_pool_into_mean_and_std_in_percent(table):
    lora = table[1]["lora r16"]
    assert lora["average"] == "52.0 ± 2.8" and lora["aime24 Avg@32"] == "32.0 ± 2.8"
    assert lora["trials"] == "2 done" and lora["Δ LoRA"] == "ref"


def test_failed_and_running_configurations_show_their_state_never_zero(table):
    full, ia3 = table[1]["full"], table[1]["ia3"]
    assert full["average"] == full["aime24 Avg@32"] == "failed" and full["trials"] == "1 failed"
    assert ia3["average"] == ia3["math500 Pass@4"] == "running" and ia3["trials"] == "1 running"


def test_trial_absent_from_results_is_described_from_its_config_and_record(table):
    ia3 = table[1]["ia3"]
    assert (ia3["group"], ia3["trainable %"], ia3["rank"]) == ("other", "0.02", "—")


def test_benchmark_not_evaluated_shows_a_dash(table):
    vera = table[1]["vera r32"]
    assert vera["math500 Avg@4"] == vera["math500 Pass@4"] == "—"
    assert vera["aime24 Avg@32"] == "20.0"


def test_difference_to_lora_needs_two_seeds_and_published_average(table):
    dora, pissa = table[1]["dora r32"], table[1]["pissa r32"]
    # one seed of DoRA and PiSSA: no number that would read as a ranking
    assert dora["Δ LoRA"] == pissa["Δ LoRA"] == "1 seed" and table[1]["lora r16"]["Δ LoRA"] == "ref"
    # the fake run evaluates two of the study's six benchmarks: its average is not the published one's
    assert dora["published avg"] == "46.6 (not comparable)" and pissa["published avg"] == "0.2 (not comparable)"


def test_published_average_is_shown_plainly_only_over_the_studys_benchmarks():
    from rlvr.analysis.published import STUDY_BENCHMARKS

    row = {
        "trial_id": "t",
        "status": "done",
        "model": "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B",
        "method": "dora",
        "rank": 32,
        "label": "x/paper/dora/seed1",
        "eval/average/avg_at_k": 0.5,
    }
    for b, k in STUDY_BENCHMARKS.items():
        row.update({f"eval/{b}/avg_at_k": 0.5, f"eval/{b}/pass_at_k": 0.6, f"eval/{b}/k": k})
    header, (cells,) = study_table([row])
    assert dict(zip(header, cells))["published avg"] == "46.6"


def test_rows_are_sorted_best_average_first(table):
    assert list(table[1])[:4] == ["dora r32", "lora r16", "vera r32", "pissa r32"]


def test_published_average_matches_hub_names_and_paths_only_for_the_studys_models():
    assert published_average("/models/DeepSeek-R1-Distill-Qwen-7B/", "lora_plus") == 55.0
    assert published_average("deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B", "rslora") is None
    assert published_average("tiny-qwen2", "lora") is None


def test_setting_keeps_only_extra_grid_axes_of_a_label():
    assert setting("m/paper/lora/seed3") == ""
    assert setting("m/paper/lora/seed3/lr=1e-05/0123456789ab") == "lr=1e-05"


def test_pareto_front_keeps_points_nothing_beats_on_both_axes():
    pts = [(1.0, 60.0), (0.5, 52.0), (1.0, 1.5), (0.01, 20.0), (100.0, 55.0)]
    assert pareto_front(pts) == [(0.01, 20.0), (0.5, 52.0), (1.0, 60.0)]


def test_frontier_points_leave_out_configurations_without_an_average(tmp_path):
    rows = trial_rows(RunDir(str(make_run(tmp_path, with_spectral=False))))
    names = {p[1] for p in frontier_points(rows)}
    assert names == {"lora r16", "dora r32", "pissa r32", "vera r32"}


def test_half_written_metrics_line_of_a_running_trial_is_skipped(tmp_path):
    run = RunDir(str(make_run(tmp_path, with_spectral=False)))
    assert [m["step"] for m in run.trial("aaaaaaaaaa07").metrics()] == [1, 2, 3]


def test_difference_to_lora_with_two_seeds_each_is_the_mean_difference():
    from rlvr.analysis.study import delta_lora, group_trials

    rows = [
        {
            "trial_id": f"{m}{s}",
            "status": "done",
            "model": "m",
            "method": m,
            "label": f"m/p/{m}/seed{s}",
            "eval/average/avg_at_k": acc,
        }
        for m, s, acc in (("lora", 1, 0.5), ("lora", 2, 0.6), ("dora", 1, 0.7), ("dora", 2, 0.6))
    ]
    lora, dora = group_trials(rows)
    assert delta_lora(dora, lora) == "+10.0" and delta_lora(lora, lora) == "ref"
