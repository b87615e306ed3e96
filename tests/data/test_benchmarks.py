"""Benchmark loading: shipped files, data-dir resolution, hub datasets, synthetic sets, clear errors."""

import json

import pytest

from rlvr.config.schema import BenchmarkSpec, DataConfig
from rlvr.data.benchmarks import REPO_ROOT, load_benchmark, resolve_data_dir

SHIPPED = {
    "aime24": 30,
    "aime25": 30,
    "amc23": 40,
    "hmmt25": 30,
    "math500": 500,
    "minerva_math": 272,
    "olympiadbench": 675,
}


@pytest.mark.parametrize("name, count", SHIPPED.items())
def test_every_shipped_benchmark_loads_with_all_its_rows(name, count):
    rows = load_benchmark(BenchmarkSpec(name=name), DataConfig().data_dir)
    assert len(rows) == count
    assert all(r["problem"] and r["answer"] for r in rows)
    assert len({r["id"] for r in rows}) == count


def test_limit_keeps_the_first_problems():
    full = load_benchmark(BenchmarkSpec(name="amc23"), DataConfig().data_dir)
    assert load_benchmark(BenchmarkSpec(name="amc23", limit=5), DataConfig().data_dir) == full[:5]


def test_relative_data_dir_resolves_against_the_repo_root_and_env_overrides(monkeypatch, tmp_path):
    monkeypatch.delenv("RLVR_DATA_DIR", raising=False)
    assert resolve_data_dir("../shared/data") == REPO_ROOT / "../shared/data"
    monkeypatch.setenv("RLVR_DATA_DIR", str(tmp_path))
    assert resolve_data_dir("../shared/data") == tmp_path


def test_missing_benchmark_file_error_names_the_benchmark_and_the_path(monkeypatch, tmp_path):
    monkeypatch.setenv("RLVR_DATA_DIR", str(tmp_path))
    with pytest.raises(
        FileNotFoundError, match=rf"benchmark aime24: {tmp_path}/benchmarks/aime24.jsonl does not exist"
    ):
        load_benchmark(BenchmarkSpec(name="aime24"), "unused")


def test_hub_benchmark_loads_through_datasets_with_column_mapping(tmp_path):
    # A local folder is loaded by datasets exactly like a hub repository, so no network is needed.
    repo = tmp_path / "hub_repo"
    repo.mkdir()
    recs = [
        {"question": "What is 1+1?", "solution": "It is \\boxed{2}."},
        {"question": "2+2?", "solution": "\\boxed{4}"},
    ]
    (repo / "test.jsonl").write_text("\n".join(json.dumps(r) for r in recs))
    rows = load_benchmark(BenchmarkSpec(name="mine", hub_name=str(repo)), "unused")
    assert [(r["problem"], r["answer"]) for r in rows] == [("What is 1+1?", "2"), ("2+2?", "4")]


def test_synthetic_benchmark_uses_levels_and_count_and_is_the_same_for_every_trial():
    spec = BenchmarkSpec(name="synthetic:addition")
    rows = load_benchmark(spec, "unused", levels=[2], synthetic_n=20)
    assert len(rows) == 20 and all(len(r["problem"]) == 7 for r in rows)  # 3-digit + 3-digit
    assert rows == load_benchmark(spec, "unused", levels=[2], synthetic_n=20)
