"""The controller's weight-sync strategy is the trial plan's transport, built in one place (rlvr.trial.weight_sync)."""

from __future__ import annotations

from rlvr.config.schema import MethodConfig, ModelConfig, RolloutConfig, TrialConfig
from rlvr.config.trial_plan import TrialPlan
from rlvr.sync.buckets import bucket_bytes
from rlvr.trial.weight_sync import BucketedSync, TransferSync, weight_sync


def _strategy(**rollout):
    cfg = TrialConfig(
        method=MethodConfig(name="full"),
        rollout=RolloutConfig(**rollout),
        model=ModelConfig(gpus_per_engine=2, gpus_per_learner=1),
    )
    return weight_sync(TrialPlan.from_config(cfg), cfg.rollout, learner=None, engines=None)


def test_the_default_and_every_cpu_trial_sync_through_buckets():
    assert isinstance(_strategy(), BucketedSync)
    cpu = TrialConfig(method=MethodConfig(name="full"), rollout=RolloutConfig(weight_transfer="auto"))
    assert isinstance(weight_sync(TrialPlan.from_config(cpu), cpu.rollout, None, None), BucketedSync)


def test_auto_on_gpus_syncs_through_vllms_transfer_with_the_bucket_size_as_its_buffers():
    strategy = _strategy(weight_transfer="auto", sync_bucket_mb=64)
    assert isinstance(strategy, TransferSync) and not strategy.opened
    assert (strategy.transport, strategy.gpus_per_engine, strategy.buffer_bytes) == ("nccl", 2, bucket_bytes(64))
    strategy.close()  # nothing opened, nothing to release
