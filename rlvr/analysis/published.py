"""The study's published average accuracies (arXiv 2512.23165), as data in one place.

Average accuracy (%) over the math benchmarks, keyed by the base model and this project's method names.
"""

from __future__ import annotations

STUDY = "arXiv 2512.23165"

STUDY_BENCHMARKS: dict[str, int] = {
    "aime24": 32,
    "aime25": 32,
    "amc23": 32,
    "hmmt25": 32,
    "math500": 4,
    "minerva_math": 4,
}
"""The benchmarks (and samples per problem) the study's average is taken over; only an average over the same
set is comparable with the published one (configs/trials/study.yaml evaluates exactly these)."""

PUBLISHED_AVERAGE: dict[str, dict[str, float]] = {
    "DeepSeek-R1-Distill-Qwen-1.5B": {
        "dora": 46.6,
        "full": 44.9,
        "adalora": 44.2,
        "miss": 43.4,
        "lora": 42.5,
        "vera": 40.7,
        "lora_rank1": 40.5,
        "ia3": 22.3,
        "milora": 18.0,
        "pissa": 0.2,
    },
    "DeepSeek-R1-Distill-Qwen-7B": {"dora": 55.0, "lora_plus": 55.0, "lora": 54.8},
}


def published_model(model: str | None) -> str | None:
    """The study's model a run's model name refers to (hub name or a path ending in it), else None."""
    tail = (model or "").rstrip("/").rsplit("/", 1)[-1].lower()
    return next((m for m in PUBLISHED_AVERAGE if m.lower() == tail), None)


def comparable_with_published(benchmarks: list[tuple[str, int | None]]) -> bool:
    """Whether an average over these (benchmark, k) is taken like the study's: the same benchmarks, same k."""
    return dict(benchmarks) == STUDY_BENCHMARKS


def published_average(model: str | None, method: str | None) -> float | None:
    """The study's average accuracy (%) for this model and method, or None where it published none."""
    key = published_model(model)
    return None if key is None else PUBLISHED_AVERAGE[key].get(method or "")
