"""The one place that maps RolloutConfig.engine to an engine class."""

from __future__ import annotations

from rlvr.rollout.hf_engine import HFEngine
from rlvr.rollout.types import RolloutEngine
from rlvr.rollout.vllm_engine import VLLMEngine

ENGINES: dict[str, type] = {"vllm": VLLMEngine, "hf": HFEngine}


def make_engine(name: str, **kwargs) -> RolloutEngine:
    """Build the engine called ``name`` (rollout.engine) with the engines' shared constructor arguments:
    model_path, spec (rlvr.rollout.spec.EngineSpec), seed."""
    if name not in ENGINES:
        raise ValueError(f"rollout.engine: {name!r} is not an engine; allowed: {', '.join(ENGINES)}")
    return ENGINES[name](**kwargs)
