"""Optional metric sinks besides the trial directory's metrics.jsonl: TensorBoard, Weights & Biases, MLflow.

Each is imported only when configured; a configured sink whose package is missing fails at trial start with
the package to install, never at step 500.
"""

from __future__ import annotations

import importlib
from typing import Any

from rlvr.config.schema import LoggingConfig


def _require(module: str, field: str, package: str):
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(f"logging.{field} is set but {package!r} is not installed; pip install {package}") from None


class MetricSinks:
    """Fan-out of per-step scalar metrics to the configured sinks."""

    def __init__(self, cfg: LoggingConfig, trial_dir: str, run_name: str, config: dict[str, Any]):
        self._writers: list[Any] = []
        self._mlflow = None
        if cfg.tensorboard:
            if "://" in trial_dir:
                raise ValueError(f"logging.tensorboard: needs a local trial directory, got {trial_dir}")
            _require("tensorboard", "tensorboard", "tensorboard")
            from torch.utils.tensorboard import SummaryWriter

            self._writers.append(SummaryWriter(log_dir=f"{trial_dir}/tensorboard"))
        if cfg.wandb_project:
            wandb = _require("wandb", "wandb_project", "wandb")
            self._wandb = wandb.init(
                project=cfg.wandb_project, name=run_name, id=run_name.replace("/", "-"), config=config, resume="allow"
            )
        else:
            self._wandb = None
        if cfg.mlflow_uri:
            mlflow = _require("mlflow", "mlflow_uri", "mlflow")
            mlflow.set_tracking_uri(cfg.mlflow_uri)
            mlflow.start_run(run_name=run_name)
            self._mlflow = mlflow

    def log(self, metrics: dict[str, Any], step: int) -> None:
        scalars = {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        for writer in self._writers:
            for k, v in scalars.items():
                writer.add_scalar(k, v, step)
        if self._wandb is not None:
            self._wandb.log(scalars, step=step)
        if self._mlflow is not None:
            self._mlflow.log_metrics(scalars, step=step)

    def close(self) -> None:
        for writer in self._writers:
            writer.close()
        if self._wandb is not None:
            self._wandb.finish()
        if self._mlflow is not None:
            self._mlflow.end_run()
