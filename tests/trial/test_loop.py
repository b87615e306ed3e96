"""The controller's loop in one process, with real parts and no Ray: an HF engine, a torch learner and a
RewardPool attached in place of the trial's actors. Dynamic sampling and the async prefetch, asserted on what
the learner was actually given."""

from __future__ import annotations

import pytest
import torch

from rlvr.learner.batch import RolloutBatch
from rlvr.learner.learner import Learner
from rlvr.learner.spec import LearnerSpec
from rlvr.rewards.pool import RewardPool
from rlvr.rollout.registry import make_engine
from rlvr.rollout.spec import EngineSpec
from rlvr.trial.controller import TrialController
from rlvr.trial.rollouts import Rollout

from .trial_helpers import COMPARED, small_trial

G = 4  # small_trial's group size


class InProcessEngines:
    """EngineSet's interface over one engine in this process; generation runs when the launch is collected.
    Keeps every batch of groups it generated."""

    def __init__(self, engine):
        self.engine, self.generated = engine, []

    def launch(self, prompts, spec):
        return prompts, spec

    def collect(self, launched):
        self.generated.append(self.engine.generate(*launched))
        return self.generated[-1]

    def load_policy(self, update):
        # A trial's engine has a process and an RNG of its own: building the adapter must not draw from the
        # learner's (peft initialises the weights it then overwrites).
        with torch.random.fork_rng():
            self.engine.load_policy(update)

    def score(self, prompt, completion):
        return [self.engine.score(prompt, completion)]

    def close(self):
        self.engine.close()


class InProcessLearner:
    """LearnerGroup's interface over one Learner; keeps every batch it trained on."""

    def __init__(self, learner: Learner):
        self.learner, self.batches = learner, []

    def submit_train_step(self, batch: RolloutBatch):
        self.batches.append(batch)
        return self.learner.train_step(batch)

    def train_step_result(self, metrics):
        return metrics

    def export(self, version, include_base):
        return self.learner.export(version, include_base)

    def logprobs(self, prompt_ids, completion_ids):
        return self.learner.logprobs(prompt_ids, completion_ids)

    def record(self):
        return self.learner.record()

    def state(self):
        return {"world_size": 1, "ranks": [self.learner.state()]}

    def load_state(self, state):
        self.learner.load_state(state["ranks"][0])

    def close(self):
        pass


class RecordingRewards(RewardPool):
    """A RewardPool that keeps the rewards of every batch it scored."""

    def __init__(self, cfg):
        super().__init__(cfg)
        self.scored = []

    def score(self, items):
        out = super().score(items)
        self.scored.append([r.reward for r in out])
        return out


def _controller(trial_dir, *overrides: str) -> TrialController:
    cfg = small_trial("rollout.engine=hf", "learner.backend=torch", *overrides)
    ctl = TrialController(cfg, str(trial_dir))
    plan = ctl.plan
    engine = make_engine("hf", model_path=ctl.model_path, spec=EngineSpec.from_trial(cfg, plan), seed=cfg.seed)
    learner = Learner(LearnerSpec.from_trial(cfg, plan), ctl.model_path)
    ctl.attach(InProcessEngines(engine), RecordingRewards(cfg.reward), InProcessLearner(learner))
    ctl.restore()
    return ctl


@pytest.fixture
def controllers():
    made = []
    yield made
    for ctl in made:
        ctl.stop()


def test_dynamic_sampling_trains_only_on_groups_whose_rewards_differ(tmp_path, controllers):
    ctl = _controller(tmp_path, "algorithm.dynamic_sampling=true", "algorithm.max_resample_rounds=3")
    controllers.append(ctl)
    m = ctl.train_step()
    drawn = [scored[i : i + G] for scored in ctl.rewards.scored for i in range(0, len(scored), G)]
    mixed = [g for g in drawn if max(g) > min(g)]
    assert len(mixed) < len(drawn), "the seeded rounds hold uniform groups (the case under test)"
    assert m["resample_rounds"] == len(ctl.rewards.scored) - 1
    # the learner got the first mixed groups, in the order drawn, up to prompts_per_step
    kept = mixed[:4]
    assert m["groups_kept"] == len(kept) and m["batch_short"] == 4 - len(kept)
    (batch,) = ctl.learner.batches
    assert len(batch) == len(kept) * G
    assert m["reward_mean"] == pytest.approx(sum(map(sum, kept)) / (len(kept) * G))
    for i in range(len(kept)):
        assert any(a != 0 for a in batch.advantages[i * G : (i + 1) * G]), (
            "a uniform group would have all-zero advantages"
        )
        assert len({tuple(p) for p in batch.prompt_ids[i * G : (i + 1) * G]}) == 1


def test_async_prefetch_is_trained_on_next_and_survives_a_checkpoint(tmp_path, controllers):
    overrides = ("algorithm.async_rollout=true", "steps=3")
    ctl = _controller(tmp_path, *overrides)
    controllers.append(ctl)
    ctl.train_step()
    prefetched = ctl.state.prefetched
    assert isinstance(prefetched, Rollout) and len(prefetched) == 4 and len(prefetched.results) == 4 * G
    ctl.checkpoint()
    want = ctl.train_step()

    # after the first run's step: both learners draw dropout from this process's one torch RNG
    resumed = _controller(tmp_path, *overrides)
    controllers.append(resumed)
    assert resumed.state.step == 1 and resumed.state.prefetched == prefetched
    got = resumed.train_step()
    assert {k: got[k] for k in COMPARED if k in got} == {k: want[k] for k in COMPARED if k in want}
    # step 2 trained on the batch step 1 prefetched, in both runs, and each prefetched step 3's batch
    expected = prefetched.learner_batch(ctl.cfg.algorithm, ctl.cfg.rollout.max_new_tokens)
    assert ctl.learner.batches[-1] == expected and resumed.learner.batches[-1] == expected
    assert resumed.state.prefetched == ctl.state.prefetched != prefetched


def test_overlong_filter_takes_exactly_the_truncated_completions_out_of_the_loss(tmp_path, controllers):
    # the tiny model's answers are all 12 tokens at temperature 1: a hot sampler makes some run past the limit
    ctl = _controller(tmp_path, "algorithm.overlong=filter", "rollout.temperature=2.5")
    controllers.append(ctl)
    m = ctl.train_step()
    (batch,) = ctl.learner.batches
    truncated = [c.truncated for group in ctl.engines.generated[-1] for c in group]
    assert 0 < sum(truncated) < len(truncated), (
        "the seeded batch mixes finished and cut-off answers (the case under test)"
    )
    assert batch.in_loss == [not t for t in truncated]
    assert m["truncated_frac"] == pytest.approx(sum(truncated) / len(truncated))
    assert m["overlong_filtered_frac"] == pytest.approx(sum(truncated) / len(truncated))
    assert m["overlong_penalty_mean"] == 0.0


def test_length_metrics_and_the_soft_overlong_penalty_are_what_the_batch_shows(tmp_path, controllers):
    # a hot sampler spreads the lengths over the soft penalty's ramp (the last 11 of 12 tokens)
    ctl = _controller(
        tmp_path,
        "algorithm.overlong=soft",
        "algorithm.overlong_buffer=11",
        "algorithm.overlong_penalty=0.5",
        "rollout.temperature=2.5",
    )
    controllers.append(ctl)
    m = ctl.train_step()
    lengths = [len(c.token_ids) for group in ctl.engines.generated[-1] for c in group]
    by_hand = [-0.5 * min(max(n - (12 - 11), 0), 11) / 11 for n in lengths]
    assert len(set(by_hand)) > 1, "the seeded batch has ragged lengths, penalised differently (the case under test)"
    assert m["response_len"] == pytest.approx(sum(lengths) / len(lengths))
    assert m["response_len_max"] == max(lengths)
    assert m["overlong_penalty_mean"] == pytest.approx(sum(by_hand) / len(by_hand))
    assert m["overlong_filtered_frac"] == 0.0
    (batch,) = ctl.learner.batches
    assert all(batch.in_loss)


class SleepingEngines(InProcessEngines):
    """InProcessEngines that log generation, sleep, wake-up and policy loads in order."""

    def __init__(self, engine, log):
        super().__init__(engine)
        self.log = log

    def collect(self, launched):
        self.log.append("generate")
        return super().collect(launched)

    def sleep(self):
        self.log.append("sleep")

    def wake_up(self):
        self.log.append("wake")

    def load_policy(self, update):
        self.log.append("load")
        super().load_policy(update)


class LoggingLearner(InProcessLearner):
    def __init__(self, learner, log):
        super().__init__(learner)
        self.log = log

    def submit_train_step(self, batch):
        self.log.append("train")
        return super().submit_train_step(batch)


def test_colocated_engines_sleep_while_the_learner_trains_and_wake_before_the_sync(tmp_path, controllers):
    cfg = small_trial("rollout.engine=hf", "learner.backend=torch")
    cfg.rollout.colocate = True  # validation would also ask for vLLM on GPUs: the loop's order is what is tested
    ctl = TrialController(cfg, str(tmp_path))
    controllers.append(ctl)
    assert ctl.plan.slots.colocated
    log: list[str] = []
    engine = make_engine("hf", model_path=ctl.model_path, spec=EngineSpec.from_trial(cfg, ctl.plan), seed=cfg.seed)
    learner = Learner(LearnerSpec.from_trial(cfg, ctl.plan), ctl.model_path)
    ctl.attach(SleepingEngines(engine, log), RecordingRewards(cfg.reward), LoggingLearner(learner, log))
    ctl.restore()
    log.clear()
    ctl.train_step()
    ctl.train_step()
    assert log == ["generate", "sleep", "train", "wake", "load"] * 2


def test_a_step_whose_batch_kept_no_group_trains_nothing_and_keeps_the_policy(tmp_path, controllers):
    # a cold sampler gives every prompt one answer, so no group has mixed rewards and no refill round is allowed
    ctl = _controller(
        tmp_path, "algorithm.dynamic_sampling=true", "algorithm.max_resample_rounds=0", "rollout.temperature=0.01"
    )
    controllers.append(ctl)
    m = ctl.train_step()
    assert (m["groups_kept"], m["batch_short"], m["resample_rounds"]) == (0, 4, 0)
    assert ctl.learner.batches == [] and ctl.state.version == m["policy_version"] == 0
    assert m["probe_gap"] is None and m["reward_mean"] is None and ctl.state.step == 1
