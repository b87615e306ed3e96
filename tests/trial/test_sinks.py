"""Metric sinks: TensorBoard writes the scalars it is given; a configured sink that is not installed fails early."""

from __future__ import annotations

import pytest

from rlvr.config.schema import LoggingConfig
from rlvr.trial.sinks import MetricSinks


def test_tensorboard_sink_writes_scalars(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    sinks = MetricSinks(LoggingConfig(tensorboard=True), str(tmp_path), "t", {})
    sinks.log({"reward_mean": 0.5, "note": "skipped", "flag": True}, step=3)
    sinks.close()
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    assert events.Tags()["scalars"] == ["reward_mean"]
    assert [(e.step, e.value) for e in events.Scalars("reward_mean")] == [(3, 0.5)]


def test_missing_sink_package_names_the_field_and_the_install():
    pytest.importorskip("tensorboard")  # the sink under test is another one
    try:
        import mlflow  # noqa: F401
    except ImportError:
        with pytest.raises(
            ImportError, match=r"logging.mlflow_uri is set but 'mlflow' is not installed; pip install mlflow"
        ):
            MetricSinks(LoggingConfig(mlflow_uri="file:///tmp/x"), "/tmp", "t", {})
    else:
        pytest.skip("mlflow is installed here")


def test_tensorboard_refuses_a_remote_trial_dir():
    with pytest.raises(ValueError, match="logging.tensorboard: needs a local trial directory"):
        MetricSinks(LoggingConfig(tensorboard=True), "s3://bucket/run", "t", {})
