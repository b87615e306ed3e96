"""evaluate(): real engine and real verifier produce per-sample and per-benchmark tables; write_eval writes them."""

import pyarrow.parquet as pq
import pytest

from rlvr.config.schema import (
    BenchmarkSpec,
    DataConfig,
    EvalConfig,
    ModelConfig,
    RewardConfig,
    RolloutConfig,
    TinyModelConfig,
)
from rlvr.eval.runner import evaluate, write_eval
from rlvr.rewards.pool import RewardPool
from rlvr.rollout.types import Completion, SamplingSpec

TINY = TinyModelConfig(hidden_size=64, intermediate_size=128, num_layers=2, num_heads=2, num_kv_heads=1)


class AnswerBook:
    """A RolloutEngine that answers from a table, so the runner's metrics can be checked against known
    correctness: sample j of a problem is right when j < right[problem]."""

    def __init__(self, tokenizer, right: dict[str, int]):
        self.tok, self.right = tokenizer, right

    def generate(self, prompts, spec: SamplingSpec):
        out = []
        for i, p in enumerate(prompts):
            problem = self.tok.decode(p).split("user\n", 1)[1].split("<|im_end|>")[0]
            a, b = problem.split("+")
            good = self.right.get(problem, 0)
            texts = [f"\\boxed{{{int(a) + int(b) + (j >= good)}}}" for j in range(spec.n)]
            out.append([Completion(i, self.tok(t)["input_ids"], [0.0] * len(t), t, "stop") for t in texts])
        return out

    def load_policy(self, update):
        pass

    def score(self, prompt, completion):
        return []

    def close(self):
        pass


@pytest.fixture(scope="module")
def reward():
    with RewardPool(RewardConfig(workers=1, timeout_s=5.0)) as p:
        yield p


def test_metrics_follow_the_samples_correctness(reward):
    from rlvr.data.benchmarks import load_benchmark
    from rlvr.models.tiny import build_tokenizer

    tok = build_tokenizer()
    spec = BenchmarkSpec(name="synthetic:addition", k=4)
    data = DataConfig(holdout=3)
    problems = [p["problem"] for p in load_benchmark(spec, data.data_dir, data.levels, data.holdout)]
    engine = AnswerBook(tok, {problems[0]: 4, problems[1]: 1})
    samples, summary = evaluate(engine, tok, [spec], EvalConfig(max_new_tokens=8), data, reward, seed=0)
    assert samples.num_rows == 12
    assert samples.column("correct").to_pylist() == [True] * 4 + [True, False, False, False] + [False] * 4
    row = summary.to_pylist()[0]
    assert row["avg_at_k"] == pytest.approx(5 / 12) and row["pass_at_k"] == pytest.approx(2 / 3)
    assert summary.column("benchmark").to_pylist() == ["synthetic:addition", "average"]


@pytest.mark.slow
def test_hf_engine_on_a_tiny_model_fills_both_tables_and_write_eval_stores_them(tmp_path, reward):
    from rlvr.models.tiny import build_model, build_tokenizer, save_tiny
    from rlvr.rollout.hf_engine import HFEngine
    from rlvr.rollout.spec import EngineSpec

    tok = build_tokenizer()
    path = save_tiny(build_model(TINY), tok, tmp_path / "tiny")
    engine = HFEngine(str(path), EngineSpec(ModelConfig(), RolloutConfig(engine="hf")), seed=0)
    specs = [BenchmarkSpec(name="synthetic:addition", k=2, limit=3), BenchmarkSpec(name="amc23", k=2, limit=2)]
    try:
        samples, summary = evaluate(engine, tok, specs, EvalConfig(max_new_tokens=6), DataConfig(), reward, seed=1)
    finally:
        engine.close()
    assert samples.num_rows == 3 * 2 + 2 * 2
    assert set(samples.column("benchmark").to_pylist()) == {"synthetic:addition", "amc23"}
    assert all(0 < t <= 6 for t in samples.column("tokens").to_pylist())
    assert summary.column("n_problems").to_pylist() == [3, 2, 5]
    s_path, m_path = write_eval(str(tmp_path / "trial"), 7, samples, summary)
    assert s_path.endswith("eval/step_000007/samples.parquet")
    back = pq.read_table(m_path)
    assert back.column("step").to_pylist() == [7, 7, 7]
    assert pq.read_table(s_path).num_rows == samples.num_rows
