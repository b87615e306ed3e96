"""Every method of the registry trains end to end in a real trial: rollouts, rewards, update, sync, probe.

The HF engine serves most methods (quick to start); vLLM serves one method of each sync route. Those three and
full fine-tuning are the session's cold runs (COLD_METHODS, tests/conftest.py), which the pool tests run again
through warm pools and compare with; the other methods lease warm pools here as a sweep's trials do (ordered by
pool key, one pool held at a time), so every method also runs through a reset pool's parts, and the module pays
one start-up per key rather than per method.
"""

from __future__ import annotations

import json

import pytest

from rlvr.config.methods import method_info, method_names, method_spec
from rlvr.config.trial_plan import TrialPlan
from rlvr.pool.warm import WarmPool, pool_key
from rlvr.sync.probe import probe_limits
from rlvr.trial.runner import run_trial

from .trial_helpers import COLD_METHODS, read_metrics, read_trainable, small_trial, two_step_trial

ON_VLLM = {"lora": "native", "pissa": "converted", "dora": "merged"}


def method_overrides(name: str) -> list[str]:
    """The uniform preset at a small rank (AdaLoRA's must stay above its target rank 8)."""
    out = [f"method=uniform/{name}"]
    if method_spec(name).has_rank and name not in ("lora_rank1", "adalora"):
        out.append("method.rank=8")
    return out


def method_trial(name: str):
    if name in COLD_METHODS:
        return two_step_trial(name)  # on the demo's engine, vLLM
    engine = "vllm" if name in ON_VLLM else "hf"
    return small_trial(*method_overrides(name), "steps=2", f"rollout.engine={engine}")


@pytest.fixture(scope="module")
def pool():
    """The one warm pool held at a time: replaced when a trial's key differs (each holds the local Ray's CPUs)."""
    held: dict[str, WarmPool] = {}

    def lease_for(cfg) -> WarmPool:
        key = pool_key(cfg)
        if key not in held:
            for old in held.values():
                old.close()
            held.clear()
            held[key] = WarmPool(f"pool-{key}")
        return held[key]

    yield lease_for
    for old in held.values():
        old.close()


# The cold runs first: a cold trial needs the local Ray's CPUs that a held pool would take.
ORDER = sorted(method_names(), key=lambda n: (n not in COLD_METHODS, pool_key(method_trial(n))))


@pytest.mark.slow
@pytest.mark.parametrize("name", ORDER)
def test_method_runs_a_two_step_trial(name, local_ray, pool, cold_run, tmp_path):
    cfg, trial_dir = method_trial(name), tmp_path
    if name in COLD_METHODS:
        trial_dir = cold_run(name)  # ran to its 2 steps (the fixture checks it)
    else:
        assert run_trial(cfg, str(trial_dir), pool=pool(cfg))["steps_done"] == 2
    metrics = read_metrics(trial_dir)
    assert [m["step"] for m in metrics] == [1, 2]
    gap = probe_limits(cfg.rollout.probe_tolerance, cfg.model.dtype, TrialPlan.from_config(cfg).route).gap
    assert all(m["probe_gap"] is not None and m["probe_gap"] <= gap for m in metrics)
    assert read_trainable(trial_dir, 2)
    assert json.loads((trial_dir / "record.json").read_text())["trainable_params"] > 0


def test_vllm_representatives_cover_every_sync_route():
    assert {method_info(n).route for n in method_names()} == set(ON_VLLM.values())
    assert all(method_info(n).route == route for n, route in ON_VLLM.items())
    assert all(method_trial(n).rollout.engine == "vllm" for n in ON_VLLM)
