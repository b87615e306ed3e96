"""The answer first: best within noise and worse, from seed-paired comparisons with the best configuration."""

import numpy as np

from rlvr.analysis.answer import BEST, UNRANKED, WITHIN, WORSE, answer
from rlvr.analysis.intervals import RunIntervals, Scores, bootstrap
from rlvr.analysis.rundir import RunDir
from rlvr.config.schema import AnalysisConfig


def _run(tmp_path, means: dict[str, float], seeds: int) -> tuple[RunDir, list[dict], RunIntervals]:
    cfg = AnalysisConfig(bootstrap_resamples=300)
    rng = np.random.default_rng(0)
    problems = tuple(("b", str(i)) for i in range(60))
    shift = rng.normal(0, 0.03, (seeds, 1))  # a seed moves every method alike
    rows, scores = [], {}
    for method, mean in means.items():
        rows += [
            {
                "trial_id": f"{method}{s}",
                "status": "done",
                "model": "m",
                "method": method,
                "seed": s,
                "label": f"m/uniform/{method}/seed{s}",
                "eval/average/avg_at_k": mean,
            }
            for s in range(seeds)
        ]
        values = np.clip(mean + shift + rng.normal(0, 0.005, (seeds, 1)) + rng.normal(0, 0.05, (1, 60)), 0, 1)
        scores[("m", method)] = Scores(problems, values, tuple(range(seeds)))
    ivs = RunIntervals({k: bootstrap(s, None, cfg) for k, s in scores.items()}, {}, {}, scores, cfg)
    return RunDir(str(tmp_path)), rows, ivs


def test_the_answer_names_the_best_within_noise_and_the_worse(tmp_path):
    text, header, table = answer(*_run(tmp_path, {"lora": 0.40, "dora": 0.398, "pissa": 0.10}, seeds=10))
    verdicts = {r[0]: r[-1] for r in table}
    assert [r[0] for r in table] == ["lora", "dora", "pissa"]
    assert verdicts == {"lora": BEST, "dora": WITHIN, "pissa": WORSE}
    assert text.startswith("On m, best within noise") and "lora (lr" in text and "Worse: pissa" in text


def test_one_seed_ranks_nothing_and_names_the_command_that_can(tmp_path):
    text, _, table = answer(*_run(tmp_path, {"lora": 0.40, "pissa": 0.10}, seeds=1))
    assert {r[-1] for r in table} == {UNRANKED}
    assert "cannot rank" in text and "`rlvr study demo-cpu`" in text
