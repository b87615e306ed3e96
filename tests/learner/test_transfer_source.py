"""The learner's whole-model stream for vLLM's transfer (rlvr.learner.transfer.policy_source) under ZeRO-3: the
metadata gives every tensor's full shape (not its rank's partition), the iteration passes vLLM's own sender check,
and the values are the plain torch learner's."""

import pytest
import torch

from rlvr.config.loader import load_trial

from .batches import fixed_batch
from .conftest import learner_of
from .test_zero3 import _overrides

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("name", ["full", "dora"])
def test_the_stream_under_zero3_is_whole_and_equals_the_torch_learners(name, tiny_path):
    from vllm.distributed.weight_transfer.nccl_engine import NCCLTrainerWeightTransferEngine

    from rlvr.learner.transfer import policy_source

    streams = []
    for backend in ("torch", "deepspeed"):
        learner = learner_of(load_trial("demo-cpu", [*_overrides(name), f"learner.backend={backend}"]), tiny_path)
        learner.train_step(fixed_batch(seed=0))
        source = policy_source(learner.policy, learner.backend.gathered)
        meta = source.metadata()
        streams.append((meta, dict(NCCLTrainerWeightTransferEngine._checked_iter(source, meta))))
    (meta_t, sent_t), (meta_z, sent_z) = streams
    assert meta_z == meta_t
    for k, t in sent_t.items():
        torch.testing.assert_close(sent_z[k], t, rtol=1e-4, atol=5e-5)  # test_zero3's tolerance for one Adam step
