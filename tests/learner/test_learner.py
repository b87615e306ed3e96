import pytest
import torch

from rlvr.learner.learner import Learner, build_scheduler

from .batches import fixed_batch
from .conftest import learner_of, trial_cfg


def _weights(learner: Learner) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in learner.policy.trainable_state_dict().items()}


def _mean_logprob(learner: Learner, batch, sign: float) -> float:
    vals = [
        sum(learner.logprobs(p, c)) / len(c)
        for p, c, a in zip(batch.prompt_ids, batch.completion_ids, batch.advantages)
        if a * sign > 0
    ]
    return sum(vals) / len(vals)


def test_updates_raise_positive_and_lower_negative_advantage_completions(tiny_path):
    learner = learner_of(trial_cfg(**{"learner.backend": "torch"}), tiny_path)
    batch = fixed_batch()
    pos0, neg0 = _mean_logprob(learner, batch, +1), _mean_logprob(learner, batch, -1)
    losses = [learner.train_step(batch)["loss"] for _ in range(5)]
    pos, neg = _mean_logprob(learner, batch, +1), _mean_logprob(learner, batch, -1)
    assert pos > pos0 + 0.1 and neg < neg0 - 0.1
    assert losses[-1] < losses[0]


def test_logprobs_match_a_direct_forward_of_the_model(tiny_path):
    learner = learner_of(trial_cfg(**{"learner.backend": "torch"}), tiny_path)
    prompt, completion = [5, 6, 7], [8, 9]
    with torch.no_grad():
        logits = learner.policy.model(input_ids=torch.tensor([prompt + completion])).logits[0]
    expected = torch.log_softmax(logits, -1)[[2, 3], completion].tolist()
    assert learner.logprobs(prompt, completion) == pytest.approx(expected, abs=1e-5)


def test_deepspeed_zero2_and_torch_backends_give_the_same_update(tiny_path):
    # micro-batches of 3 and two mini-batches exercise accumulation and the global normaliser
    over = {"learner.micro_batch_size": 3, "algorithm.mini_batches": 2}
    batch = fixed_batch()
    results = {}
    for backend in ("torch", "deepspeed"):
        learner = learner_of(trial_cfg(**over, **{"learner.backend": backend, "learner.zero_stage": 2}), tiny_path)
        metrics = learner.train_step(batch)
        results[backend] = (_weights(learner), metrics)
    (w_t, m_t), (w_d, m_d) = results["torch"], results["deepspeed"]
    assert m_t["grad_norm"] == pytest.approx(m_d["grad_norm"], rel=1e-4)
    assert m_t["loss"] == pytest.approx(m_d["loss"], rel=1e-4, abs=1e-6)
    for k in w_t:
        torch.testing.assert_close(w_t[k], w_d[k], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("backend", ["torch", "deepspeed"])
def test_resumed_learner_continues_exactly_like_an_uninterrupted_one(tiny_path, backend):
    # dropout on: the resumed run must also restore the RNG stream; warmup + cosine: the schedule too
    over = {
        "learner.backend": backend,
        "method.dropout": 0.1,
        "algorithm.ppo_epochs": 2,
        "algorithm.lr_schedule": "cosine",
        "algorithm.warmup_steps": 1,
    }
    batches = [fixed_batch(seed=s) for s in range(4)]
    straight = learner_of(trial_cfg(**over), tiny_path)
    for b in batches[:2]:
        straight.train_step(b)
    saved = straight.state()
    for b in batches[2:]:
        straight.train_step(b)

    resumed = learner_of(trial_cfg(**over), tiny_path)
    resumed.load_state(saved)
    for b in batches[2:]:
        last = resumed.train_step(b)
    assert last["step"] == 4 and resumed.optimizer_steps == straight.optimizer_steps
    w_s, w_r = _weights(straight), _weights(resumed)
    for k in w_s:
        assert torch.equal(w_s[k], w_r[k]), k


def test_several_ppo_epochs_move_the_ratio_off_one_and_clipping_binds(tiny_path):
    cfg = trial_cfg(**{"learner.backend": "torch", "algorithm.ppo_epochs": 4, "algorithm.lr": 5e-2})
    learner = learner_of(cfg, tiny_path)
    m = learner.train_step(fixed_batch())
    assert m["ratio_max"] > 1.0 and m["clip_frac"] > 0


def test_kl_to_the_adapter_free_reference_starts_at_zero(tiny_path):
    # LoRA's B starts at zero, so the policy equals its reference until the first step
    learner = learner_of(trial_cfg(**{"learner.backend": "torch", "algorithm.kl_coef": 0.1}), tiny_path)
    first = learner.train_step(fixed_batch())
    second = learner.train_step(fixed_batch())
    assert first["kl"] == pytest.approx(0.0, abs=1e-10) and second["kl"] > 0


def test_scheduler_warms_up_linearly_then_decays_by_cosine():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = build_scheduler(opt, "cosine", warmup=2, total=6)
    lrs = []
    for _ in range(6):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == pytest.approx([1 / 3, 2 / 3, 1.0, 0.8535534, 0.5, 0.1464466], abs=1e-6)


def test_adalora_trains_with_its_penalty_and_rank_allocation_hook(tiny_path):
    # No warm-up and a reallocation every step, so two steps must already prune ranks toward target_r.
    over = {
        "learner.backend": "torch",
        "method.name": "adalora",
        "method.rank": 16,
        "method.alpha": None,
        "method.target_modules": None,
        "method.options": {"target_r": 4, "tinit": 0, "tfinal": 0, "deltaT": 1},
    }
    learner = learner_of(trial_cfg(**over), tiny_path)
    assert learner.policy.extra_loss() is not None
    peft_cfg = learner.policy.model.peft_config["default"]
    assert peft_cfg.rank_pattern is None  # every module starts at the full initial rank
    for _ in range(2):
        m = learner.train_step(fixed_batch())
    assert learner.optimizer_steps == 2 and m["grad_norm"] > 0
    kept = [int(sum(mask)) for mask in peft_cfg.rank_pattern.values()]
    assert kept and sum(kept) < 16 * len(kept), f"update_and_allocate kept every rank: {kept}"


def test_zero_sharding_refuses_an_optimizer_that_works_per_matrix(tiny_path):
    over = {"learner.backend": "deepspeed", "learner.zero_stage": 2, "method.name": "lora_fa", "method.alpha": None}
    with pytest.raises(ValueError, match="learner.zero_stage: 2 .*LoraFAOptimizer"):
        learner_of(trial_cfg(**over), tiny_path)


def test_a_colocated_rank_hands_the_steps_cached_memory_back_before_the_engine_wakes(tiny_path):
    # The plan's colocation check counts the step's activations as free once it ends; a colocated rank makes
    # that true by emptying PyTorch's cache at the end of train_step (nothing is cached on CPU: 0 GiB).
    colocated = learner_of(trial_cfg(**{"learner.backend": "torch", "rollout.colocate": True}), tiny_path)
    apart = learner_of(trial_cfg(**{"learner.backend": "torch"}), tiny_path)
    assert colocated.spec.colocated and not apart.spec.colocated
    assert colocated.train_step(fixed_batch())["released_gib"] == 0.0
    assert "released_gib" not in apart.train_step(fixed_batch())
