"""The tenant learner: K trials' learners in one process on one copy of the base, each tenant's metrics, logprobs,
exports, weights and RNG exactly (torch.equal) those of its solo Learner, whatever the other tenants do between
its calls; its frozen weights are the base's storage; checkpoints move between solo and tenant learners."""

from __future__ import annotations

from functools import partial

import pytest
import torch

from rlvr.config.methods import method_names, method_spec
from rlvr.config.schema import MethodConfig
from rlvr.config.sharing import shares_batch
from rlvr.learner.actor import merge_rank_metrics, rank_states
from rlvr.learner.learner import Learner
from rlvr.learner.spec import LearnerSpec
from rlvr.learner.tenants import TenantLearners, aliased_copy
from rlvr.models.loading import load_model
from rlvr.peft_methods.policy import build_policy
from rlvr.sync.digest import weights_digest

from .batches import fixed_batch
from .conftest import trial_cfg

PROBE = ([5, 6, 7], [8, 9, 10])


def _spec(**over) -> LearnerSpec:
    return LearnerSpec.from_trial(trial_cfg(**{"learner.backend": "torch", **over}))


# three shareable methods with dropout (LoRA, PiSSA's randomised SVD init, VeRA) and AdaLoRA's budget schedule
TENANTS = {
    0: _spec(**{"method.name": "lora", "method.dropout": 0.1, "seed": 1}),
    1: _spec(**{"method.name": "pissa", "method.dropout": 0.1, "seed": 2, "algorithm.lr_schedule": "cosine"}),
    2: _spec(**{"method.name": "vera", "method.alpha": None, "method.dropout": 0.2, "seed": 3}),
    3: _spec(**{"method.name": "adalora", "method.options": {"target_r": 4}, "seed": 4, "algorithm.lr": 3e-3}),
}


class _Solo:
    """A solo Learner answering ``call`` as a tenant does."""

    def __init__(self, spec: LearnerSpec, path: str):
        self.learner = Learner(spec, path)

    def call(self, method: str, *args):
        return getattr(self.learner, method)(*args)


def _observe(call, step: int) -> dict:
    """One step's observable results: the update's metrics, then the probe's logprobs and the export."""
    metrics = call("train_step", fixed_batch(seed=step))
    update = call("export", step + 1, step == 0)
    return {"metrics": metrics, "logprobs": call("logprobs", *PROBE), "export": update}


def _assert_same(got: dict, want: dict) -> None:
    assert got["metrics"] == want["metrics"]
    assert got["logprobs"] == want["logprobs"]
    for field in ("route", "lora_tensors", "lora_config", "base_weights"):
        assert getattr(got["export"], field) == getattr(want["export"], field), field


def _assert_same_state(got: dict, want: dict) -> None:
    assert got.keys() == want.keys()
    assert got["trainable"].keys() == want["trainable"].keys()
    assert all(torch.equal(got["trainable"][k], want["trainable"][k]) for k in got["trainable"])
    assert torch.equal(got["rng"], want["rng"])  # the dropout stream continues where the solo run's does
    assert (got["step"], got["optimizer_steps"]) == (want["step"], want["optimizer_steps"])
    assert _same_tree(got["optimizer"], want["optimizer"]) and got["scheduler"] == want["scheduler"]


def _same_tree(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same_tree(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_same_tree(x, y) for x, y in zip(a, b))
    return a == b


def test_interleaved_tenants_each_compute_exactly_their_solo_run(tiny_path):
    pool = TenantLearners(TENANTS[0], tiny_path)
    for t, spec in TENANTS.items():
        pool.add(t, spec)
    got: dict[int, list] = {t: [] for t in TENANTS}
    for step in range(3):
        order = list(TENANTS) if step % 2 == 0 else list(reversed(TENANTS))
        for t in order:
            got[t].append(_observe(partial(pool.call, t), step))
    for t, spec in TENANTS.items():
        solo = _Solo(spec, tiny_path)
        for step in range(3):
            _assert_same(got[t][step], _observe(solo.call, step))
        _assert_same_state(pool.call(t, "state"), solo.learner.state())
        assert pool.call(t, "record") == solo.learner.record()
    assert len({g[-1]["metrics"]["loss"] for g in got.values()}) == len(TENANTS)  # they did train differently


def _own_bytes(model: torch.nn.Module, base: torch.nn.Module) -> int:
    """Bytes of the model's parameters and buffers that are not the base's storage."""
    shared = {t.untyped_storage().data_ptr() for t in list(base.parameters()) + list(base.buffers())}
    own = {}
    for t in list(model.parameters()) + list(model.buffers()):
        s = t.untyped_storage()
        if s.data_ptr() not in shared:
            own[s.data_ptr()] = s.nbytes()
    return sum(own.values())


def test_tenants_hold_the_base_once(tiny_path):
    pool = TenantLearners(TENANTS[0], tiny_path)
    base_bytes = sum(p.numel() * p.element_size() for p in pool.base.parameters())
    for t in (0, 2, 3):
        pool.add(t, TENANTS[t])
        learner = pool.learner(t)
        model = learner.policy.model
        base = dict(pool.base.named_parameters())
        named = model.named_parameters()
        frozen = {n.removeprefix("base_model.model.").replace(".base_layer", ""): p for n, p in named}
        assert {n: frozen[n].data_ptr() for n in base} == {n: p.data_ptr() for n, p in base.items()}
        assert not any(frozen[n].requires_grad or frozen[n] is base[n] for n in base)
        trainable = sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)
        own = _own_bytes(model, pool.base)
        # a tenant's own tensors are its adapter (and VeRA's shared projections), not a base
        assert own < 0.5 * base_bytes, (t, own, base_bytes)
        assert own >= trainable
    assert weights_digest(pool.base.state_dict()) == weights_digest(load_model(_spec().model, tiny_path).state_dict())


def test_milora_and_olora_would_write_a_shared_base_in_place_and_pissa_would_not(tiny_path):
    base = load_model(_spec().model, tiny_path)
    digest = weights_digest(base.state_dict())
    for name in ("milora", "olora"):  # would corrupt a shared base: they write W - s B0 A0 into its storage
        view = aliased_copy(base)
        build_policy(view, _spec(**{"method.name": name}).method, total_steps=8)
        assert weights_digest(base.state_dict()) != digest, name
        base = load_model(_spec().model, tiny_path)
    view = aliased_copy(base)
    build_policy(view, _spec(**{"method.name": "pissa"}).method, total_steps=8)  # rebinds weight.data: no write
    assert weights_digest(base.state_dict()) == digest


# what the tiny shapes need: AdaLoRA's target below its initial rank, rank-1 LoRA at rank 1
TINY_FIXES = {"adalora": {"method.options": {"target_r": 4}}, "lora_rank1": {"method.rank": 1}}


def _tiny(name: str, seed: int = 0) -> LearnerSpec:
    alpha = 16 if method_spec(name).alpha_key else None
    fixes = TINY_FIXES.get(name, {})
    return _spec(**{"method.name": name, "method.alpha": alpha, "method.dropout": 0.1, **fixes, "seed": seed})


def test_every_method_that_shares_a_batch_is_a_tenant_equal_to_its_solo_learner(tiny_path):
    names = [n for n in method_names() if shares_batch(MethodConfig(name=n))]
    assert {"lora", "pissa", "milora", "olora", "vera", "adalora", "miss"} <= set(names)
    pool = TenantLearners(_spec(), tiny_path)
    for t, name in enumerate(names):
        pool.add(t, _tiny(name, seed=5 + t))  # checks the base's digest
        pool.call(t, "train_step", fixed_batch(seed=t))
    for t, name in enumerate(names):
        solo = _Solo(_tiny(name, seed=5 + t), tiny_path)
        solo.call("train_step", fixed_batch(seed=t))
        _assert_same(_observe(partial(pool.call, t), 1), _observe(solo.call, 1))


def test_a_changed_base_is_caught_at_the_next_build(tiny_path):
    pool = TenantLearners(_spec(), tiny_path)
    pool.add(0, _spec())
    with torch.no_grad():
        next(pool.base.parameters()).add_(1.0)
    with pytest.raises(RuntimeError, match="the shared base changed"):
        pool.add(1, _spec(**{"seed": 9}))


def test_a_dropped_slot_takes_a_fresh_tenant_and_a_failing_tenant_leaves_the_others_alone(tiny_path):
    a, b = TENANTS[0], _spec(**{"method.name": "lora", "method.dropout": 0.2, "seed": 7})
    pool = TenantLearners(a, tiny_path)
    pool.add(0, a)
    pool.add(1, TENANTS[1])
    for step in range(2):
        pool.call(0, "train_step", fixed_batch(seed=step))
        pool.call(1, "train_step", fixed_batch(seed=step))
    pool.drop(1)
    pool.add(1, b)
    got_b = [_observe(partial(pool.call, 1), step) for step in (2, 3)]
    bad = fixed_batch(seed=0)
    bad.prompt_ids[0][0] = 10**6  # no such token: the forward raises
    with pytest.raises(IndexError):
        pool.call(1, "train_step", bad)
    assert pool.tenants() == [0]
    with pytest.raises(KeyError, match="no tenant 1"):
        pool.call(1, "logprobs", *PROBE)
    got_a = [_observe(partial(pool.call, 0), step) for step in (2, 3)]

    # solo learners one after another: two in one process at once would share torch's global RNG
    solo_b = _Solo(b, tiny_path)
    for step, got in zip((2, 3), got_b):
        _assert_same(got, _observe(solo_b.call, step))
    solo_a = _Solo(a, tiny_path)
    for step in range(2):
        solo_a.call("train_step", fixed_batch(seed=step))
    for step, got in zip((2, 3), got_a):
        _assert_same(got, _observe(solo_a.call, step))


@pytest.mark.parametrize("name", ["lora", "milora"])
def test_a_checkpoint_moves_between_a_solo_learner_and_a_tenant(tiny_path, name):
    spec = _spec(**{"method.name": name, "method.dropout": 0.1, "seed": 11})
    solo = _Solo(spec, tiny_path)
    for step in range(2):
        solo.call("train_step", fixed_batch(seed=step))
    saved = {"world_size": 1, "ranks": [solo.learner.state()]}  # a solo LearnerGroup's checkpoint
    want = _observe(solo.call, 2)

    pool = TenantLearners(spec, tiny_path)
    pool.add(0, TENANTS[0])
    pool.call(0, "train_step", fixed_batch(seed=5))
    pool.add(1, spec)
    (own,) = rank_states(saved, 1)
    pool.call(1, "load_state", own)
    _assert_same(_observe(partial(pool.call, 1), 2), want)

    back = {"world_size": 1, "ranks": [pool.call(1, "state", True)]}
    resumed = _Solo(spec, tiny_path)
    resumed.learner.load_state(rank_states(back, 1)[0])
    _assert_same(_observe(resumed.call, 3), _observe(partial(pool.call, 1), 3))


def test_tenants_refuse_what_cannot_share_naming_the_field(tiny_path):
    pool = TenantLearners(_spec(), tiny_path)
    with pytest.raises(ValueError, match="method.name='dora' cannot share a batch"):
        pool.add(0, _spec(**{"method.name": "dora"}))
    with pytest.raises(ValueError, match="learner differs from the pool's"):
        pool.add(0, _spec(**{"learner.micro_batch_size": 2}))
    with pytest.raises(ValueError, match="'reset' is no tenant call"):
        pool.call(0, "reset", _spec())
    with pytest.raises(ValueError, match="learner.backend='deepspeed'"):
        TenantLearners(_spec(**{"learner.backend": "deepspeed"}), tiny_path)
    with pytest.raises(ValueError, match="learner.num_learners=2"):
        TenantLearners(_spec(**{"learner.num_learners": 2}), tiny_path)


@pytest.mark.slow
def test_two_tenants_through_the_ray_actor_equal_their_solo_runs(tiny_path, local_ray):
    import ray

    from rlvr.learner.actor import learner_options
    from rlvr.learner.tenants import TenantLearnerActor, TenantLearnerGroup

    specs = [TENANTS[0], TENANTS[1]]
    actor = TenantLearnerActor.options(**learner_options(specs[0], None, 0, 0)).remote(specs[0], tiny_path)
    groups = [TenantLearnerGroup(actor, t, spec) for t, spec in enumerate(specs)]
    try:
        ray.get([ref for g, spec in zip(groups, specs) for ref in g.reset(spec)])
        got = {t: [] for t in range(2)}
        for step in range(2):
            pending = [g.submit_train_step(fixed_batch(seed=step)) for g in groups]
            for t, g in enumerate(groups):
                got[t].append((g.train_step_result(pending[t]), g.logprobs(*PROBE)))
        states = [g.state() for g in groups]
        with pytest.raises(RuntimeError, match="no vLLM weight transfer"):
            groups[0].open_transfer("nccl", [], 1, 1 << 20)
        groups[1].close()
        assert ray.get(actor.tenants.remote()) == [0]
        last = groups[0].train_step(fixed_batch(seed=2))
    finally:
        ray.kill(actor)
    for t, spec in enumerate(specs):
        solo = Learner(spec, tiny_path)
        for step in range(2):
            metrics = merge_rank_metrics([solo.train_step(fixed_batch(seed=step))])
            assert got[t][step] == (metrics, solo.logprobs(*PROBE))
        _assert_same_state(states[t]["ranks"][0], solo.state())
        if t == 0:
            assert last == merge_rank_metrics([solo.train_step(fixed_batch(seed=2))])
