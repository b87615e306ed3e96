"""The whole-model stream vLLM's transfer backends send (rlvr.peft_methods.merged_state), against the bucketed
export it replaces on GPU and the checkpoint the engine loaded."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
import torch

from rlvr.config.methods import method_names
from rlvr.peft_methods.merged_state import merged_names, merged_state
from rlvr.peft_methods.policy import build_policy
from rlvr.peft_methods.weights import from_bytes

from .conftest import perturb, small_cfg, tiny_model

MERGED_FAMILY = ["dora", "vera", "ia3", "ln_tuning", "miss", "full", "lora", "pissa"]


def _trained(name: str):
    policy = build_policy(tiny_model(), small_cfg(name), total_steps=10)
    perturb(policy)
    return policy


def _whole(params):
    return contextmanager(lambda: (yield))()


@pytest.mark.parametrize("name", MERGED_FAMILY)
def test_the_stream_is_the_checkpoint_with_the_bucketed_exports_changes_applied(name):
    assert name in method_names()
    policy = _trained(name)
    pristine = tiny_model().state_dict()  # the checkpoint the engine started from (same seed, same init)
    streamed = dict(merged_state(policy, _whole))
    # every checkpoint tensor, under its name and shape, nothing else: layerwise reload rebuilds whole layers
    assert [n for n, _, _ in merged_names(policy)] == list(streamed)
    assert set(streamed) == {n for n, p in tiny_model().named_parameters()}
    changed = from_bytes(policy.export(version=1, include_base=False, route="merged").base_weights)
    assert changed, "the perturbed policy changed nothing"
    for n, t in streamed.items():
        want = changed.get(n, pristine[n])
        assert t.dtype == policy.dtype and t.shape == want.shape, n
        assert torch.equal(t, want.to(t.dtype)), n


def test_the_stream_gathers_one_module_at_a_time_and_yields_inside_the_gather():
    # ZeRO-3: a tensor read after its gather ended would be a released partition
    policy = _trained("dora")
    open_now: list[int] = []

    @contextmanager
    def gather(params):
        open_now.append(sum(p.numel() for p in params))
        yield
        open_now.pop()

    total = sum(p.numel() for p in policy.model.parameters())
    for _ in merged_state(policy, gather):
        assert len(open_now) == 1 and open_now[0] < total / 4
