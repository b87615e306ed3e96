"""Queued dispatch (rollout.dispatch_groups) over real HF engines in this process, each behind a one-thread
executor as a Ray actor runs its calls one at a time: every group comes back once, in prompt order, with the
same completions whichever engine made it, and a slower engine takes fewer prompts. Then the trial's EngineSet
over two vLLM actors with dispatch trains exactly like one engine (slow)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from rlvr.config.schema import ModelConfig, RolloutConfig, TinyModelConfig
from rlvr.rollout.registry import make_engine
from rlvr.rollout.spec import EngineSpec
from rlvr.rollout.types import SamplingSpec
from rlvr.trial.dispatch import QueuedRound

SPEC = SamplingSpec(n=3, temperature=1.0, max_new_tokens=8, seed=11)


@pytest.fixture(scope="module")
def engines(tmp_path_factory):
    """Two HF engines on the same random tiny model (the same policy, as a trial's engines serve)."""
    import torch

    from rlvr.models.tiny import build_model, build_tokenizer, save_tiny

    torch.manual_seed(0)
    tiny = TinyModelConfig(hidden_size=64, intermediate_size=128, num_layers=2, num_heads=2, num_kv_heads=1)
    path = str(save_tiny(build_model(tiny), build_tokenizer(), tmp_path_factory.mktemp("tiny")))
    args = dict(model_path=path, spec=EngineSpec(ModelConfig(name="tiny", dtype="float32"), RolloutConfig()), seed=0)
    built = [make_engine("hf", **args) for _ in range(2)]
    yield built
    for e in built:
        e.close()


@pytest.fixture(scope="module")
def prompts():
    from rlvr.models.tiny import build_tokenizer

    tok = build_tokenizer()
    return [tok.encode(f"{a}+{b}=") for a, b in zip(range(10, 30, 2), range(40, 70, 3))]


def run_round(engines, prompts, chunk, delays):
    """One queued round; engine ``e`` sleeps ``delays[e]`` s before each call (a slower engine)."""
    pools = [ThreadPoolExecutor(max_workers=1) for _ in engines]
    rng = threading.Lock()  # HF generate samples from torch's process-wide RNG; each Ray actor has its own process

    def call(e, part, spec):
        time.sleep(delays[e])
        with rng:
            return engines[e].generate(part, spec)

    try:
        rnd = QueuedRound(
            lambda e, part, spec: pools[e].submit(call, e, part, spec), len(engines), prompts, SPEC, chunk
        )
        return rnd.collect(), rnd.taken
    finally:
        for p in pools:
            p.shutdown()


def flat(groups):
    return [(c.prompt_index, c.token_ids, c.logprobs) for g in groups for c in g]


def test_every_group_once_in_prompt_order_and_independent_of_the_engine_that_made_it(engines, prompts):
    alone, taken_alone = run_round(engines[:1], prompts, 2, [0.0])
    shared, taken = run_round(engines, prompts, 2, [0.0, 0.05])
    assert taken_alone == [len(prompts)] and sum(taken) == len(prompts)
    assert [len(g) for g in shared] == [SPEC.n] * len(prompts)
    assert [c.prompt_index for g in shared for c in g] == [i for i in range(len(prompts)) for _ in range(SPEC.n)]
    assert flat(shared) == flat(alone)
    # a chunk is generated with its own seed: the same chunks give the same completions on every run
    assert flat(run_round(engines, prompts, 2, [0.05, 0.0])[0]) == flat(alone)
    # and another seed gives others
    other = QueuedRound(
        lambda e, part, spec: _done(engines[0].generate(part, spec)),
        1,
        prompts,
        SamplingSpec(n=3, temperature=1.0, max_new_tokens=8, seed=12),
        2,
    ).collect()
    assert flat(other) != flat(alone)


def test_a_slower_engine_takes_fewer_prompts(engines, prompts):
    _, taken = run_round(engines, prompts, 1, [0.0, 0.3])
    assert sum(taken) == len(prompts)
    # both start with two chunks; the fast one takes the rest while the slow one is on its second
    assert taken[1] < taken[0] and taken[1] <= 3


def _done(value):
    from concurrent.futures import Future

    f = Future()
    f.set_result(value)
    return f


@pytest.mark.slow
def test_two_engines_with_queued_dispatch_train_exactly_like_one_engine(uninterrupted, tmp_path):
    # the real EngineSet over two vLLM actors: chunks of one group, each with its one-call seeds
    from rlvr.trial.runner import run_trial

    from .trial_helpers import assert_same_run, small_trial

    run_trial(small_trial("rollout.num_engines=2", "rollout.dispatch_groups=1"), str(tmp_path))
    assert_same_run(tmp_path, uninterrupted)
