"""`rlvr model fetch`: the list of what a sweep needs, downloads into the hub cache, and trials that then load
model, training set and benchmark offline from that cache. This machine has no hub: the download itself is
faked at huggingface_hub.snapshot_download, which writes the cache layout the real one writes (refs/main ->
snapshots/<commit>/files); everything after it (offline resolution, transformers, datasets) is the real stack."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import huggingface_hub
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from rlvr.cluster.fetch import fetch
from rlvr.cluster.needs import MODEL_FILES, Need, load_trials, needs_of
from rlvr.config.loader import ConfigError

REPO = Path(__file__).resolve().parents[2]
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _hub_repos(root: Path) -> dict[str, Path]:
    """Three 'hub repositories' as local folders: a tiny model, a training set, a benchmark."""
    from rlvr.config.schema import TinyModelConfig
    from rlvr.models.tiny import build_model, build_tokenizer, save_tiny

    # head_dim 32: vLLM's CPU attention has no kernel for smaller heads.
    tiny = TinyModelConfig(num_layers=1, hidden_size=128, intermediate_size=256, num_heads=4, num_kv_heads=2)
    model = save_tiny(build_model(tiny), build_tokenizer(), root / "model")
    (model / "pytorch_model.bin").write_bytes(b"a duplicate of the weights that fetch must not download")
    train = root / "train" / "data"
    train.mkdir(parents=True)
    pq.write_table(
        pa.table({"prompt": ["1+1?", "2+3?", "4+4?"], "solution": ["2", "5", "8"]}), train / "train-00000.parquet"
    )
    bench = root / "bench"
    bench.mkdir()
    (bench / "test.jsonl").write_text(
        "\n".join(json.dumps({"problem": f"{i}+{i}?", "answer": str(2 * i)}) for i in range(5))
    )
    return {"org/tiny-test": model, "org/math-train": root / "train", "org/bench": bench}


@pytest.fixture
def fake_hub(tmp_path, monkeypatch):
    """snapshot_download that copies a local folder into the hub cache under HF_HOME, as a download would."""
    repos = _hub_repos(tmp_path / "hub_repos")
    cache = tmp_path / "hf" / "hub"
    calls = []

    def snapshot_download(repo_id, repo_type=None, revision=None, allow_patterns=None, local_files_only=False, **_):
        calls.append((repo_id, repo_type, allow_patterns))
        folder = cache / huggingface_hub.file_download.repo_folder_name(repo_id=repo_id, repo_type=repo_type or "model")
        snapshot = folder / "snapshots" / COMMIT
        src = repos[repo_id]
        for f in src.rglob("*"):
            rel = f.relative_to(src)
            if f.is_file() and (allow_patterns is None or any(rel.match(p) for p in allow_patterns)):
                (snapshot / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(f, snapshot / rel)
        (folder / "refs").mkdir(parents=True, exist_ok=True)
        (folder / "refs" / "main").write_text(COMMIT)
        return str(snapshot)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    return tmp_path / "hf", calls


def _trial_yaml(tmp_path: Path) -> Path:
    raw = {
        "name": "fetch-test",
        "model": {"name": "org/tiny-test", "dtype": "float32"},
        "data": {"source": "org/math-train", "problem_field": "prompt", "answer_field": "solution"},
        "eval": {"benchmarks": [{"name": "bench", "hub_name": "org/bench", "k": 1}]},
        "rollout": {"engine": "hf"},
        "learner": {"backend": "torch"},
    }
    path = tmp_path / "trial.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


# Run in a fresh process: HF_HUB_OFFLINE is read when huggingface_hub is imported, as in a trial's actors.
LOAD_OFFLINE = """
import sys
from rlvr.cluster.needs import load_trials
from rlvr.data.benchmarks import load_benchmark
from rlvr.data.train_sets import load_train_set
from rlvr.models.loading import load_model, load_tokenizer, resolve_model_path
[cfg] = load_trials(sys.argv[1])
path = resolve_model_path(cfg.model)
model, tok = load_model(cfg.model, path), load_tokenizer(cfg.model, path)
print("model", type(model).__name__, sum(p.numel() for p in model.parameters()), tok("1+1=").input_ids[:3])
print("train", len(load_train_set(cfg.data, seed=0)))
print("bench", len(load_benchmark(cfg.eval.benchmarks[0], cfg.data.data_dir)))
"""


def _offline(hf_home: Path, *args: str, code: str | None = None) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "HF_HOME": str(hf_home),
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_CACHE": str(hf_home.parent / "ds"),
        "PYTHONPATH": str(REPO),
        "COLUMNS": "250",
    }
    cmd = [sys.executable, "-c", code, *args] if code else [sys.executable, "-m", "rlvr.cli", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, cwd=REPO)


def test_paper_sweep_needs_its_model_training_set_and_benchmark_files():
    needs = needs_of(load_trials("paper-1.5b"))
    assert needs[:2] == [
        Need("model", "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B"),
        Need("dataset", "open-r1/DAPO-Math-17k-Processed"),
    ]
    assert [Path(n.name).name for n in needs[2:]] == [
        "aime24.jsonl",
        "aime25.jsonl",
        "amc23.jsonl",
        "hmmt25.jsonl",
        "math500.jsonl",
        "minerva_math.jsonl",
    ]
    assert all(n.kind == "local" for n in needs[2:])
    hub = needs_of(
        load_trials("paper-1.5b", ["base.eval.benchmarks=[{name: hmmt25, k: 32, hub_name: MathArena/hmmt_feb_2025}]"])
    )
    assert hub[2:] == [Need("dataset", "MathArena/hmmt_feb_2025")]


def test_fetch_downloads_each_need_once_and_trials_then_load_everything_offline(fake_hub, tmp_path):
    hf_home, calls = fake_hub
    trial = _trial_yaml(tmp_path)
    needs = needs_of(load_trials(str(trial)))
    found = fetch(needs)
    assert calls == [
        ("org/tiny-test", "model", MODEL_FILES),
        ("org/math-train", "dataset", None),
        ("org/bench", "dataset", None),
    ]
    assert all(f.path for f in found), [f.detail for f in found]
    assert not list((hf_home / "hub").rglob("pytorch_model.bin")), "fetch downloaded duplicate .bin weights"

    out = _offline(hf_home, str(trial), code=LOAD_OFFLINE)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = dict(line.split(" ", 1) for line in out.stdout.splitlines())
    assert lines["model"].startswith("Qwen2ForCausalLM") and lines["train"] == "3" and lines["bench"] == "5"

    listed = _offline(hf_home, "model", "fetch", str(trial), "--dry-run")
    assert listed.returncode == 0 and listed.stdout.count("cached ") == 3, listed.stdout + listed.stderr[-2000:]

    empty = _offline(tmp_path / "empty-hf", str(trial), code=LOAD_OFFLINE)
    assert empty.returncode != 0, "loaded without a cache: the test would not show that the cache was used"


def test_fetch_refuses_while_the_hub_is_switched_off(monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ConfigError, match="HF_HUB_OFFLINE=0"):
        fetch([Need("model", "org/any")])


def test_fetch_cli_with_a_local_model_downloads_nothing(tmp_path):
    from rlvr.config.schema import TinyModelConfig
    from rlvr.models.tiny import build_model, build_tokenizer, save_tiny

    model = save_tiny(
        build_model(TinyModelConfig(num_layers=1, hidden_size=32, intermediate_size=64)),
        build_tokenizer(),
        tmp_path / "m",
    )
    trial = tmp_path / "local.yaml"
    trial.write_text(yaml.safe_dump({"name": "local", "model": {"name": str(model)}}))
    out = _offline(tmp_path / "hf", "model", "fetch", str(trial))
    assert out.returncode == 0, out.stderr[-2000:]
    assert f"cached   local    {model}" in out.stdout
    missing = tmp_path / "gone.yaml"
    missing.write_text(yaml.safe_dump({"name": "gone", "model": {"name": str(tmp_path / "gone")}}))
    out = _offline(tmp_path / "hf", "model", "fetch", str(missing))
    assert out.returncode == 1 and "does not exist" in out.stdout


VLLM_OFFLINE = """
import os, sys
os.environ.update(VLLM_CPU_KVCACHE_SPACE="1", VLLM_ENABLE_V1_MULTIPROCESSING="0")
from vllm import LLM, SamplingParams
llm = LLM(model="org/tiny-test", dtype="float32", max_model_len=64, enforce_eager=True,
          distributed_executor_backend="uni")
[out] = llm.generate(["1+1="], SamplingParams(max_tokens=4, temperature=0))
print("tokens", len(out.outputs[0].token_ids))
"""


@pytest.mark.slow
def test_vllm_serves_the_fetched_model_offline_by_its_hub_name(fake_hub, tmp_path):
    hf_home, _ = fake_hub
    fetch([Need("model", "org/tiny-test")])
    out = _offline(hf_home, code=VLLM_OFFLINE)
    assert out.returncode == 0 and "tokens 4" in out.stdout, out.stderr[-3000:]
