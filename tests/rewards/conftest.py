import json
from pathlib import Path

import pytest

from rlvr.config.schema import RewardConfig
from rlvr.rewards.pool import RewardPool

MATH500 = Path(__file__).resolve().parents[3] / "shared" / "data" / "benchmarks" / "math500.jsonl"


@pytest.fixture(scope="session")
def pool():
    """One warm pool shared by the reward tests; a short deadline keeps the adversarial batch quick."""
    with RewardPool(RewardConfig(workers=2, timeout_s=1.5)) as p:
        yield p


@pytest.fixture(scope="session")
def math500_gold():
    rows = [json.loads(line) for line in MATH500.read_text().splitlines()]
    return {r["id"]: r["answer"] for r in rows}
