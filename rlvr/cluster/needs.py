"""What a sweep (or one trial) needs before it can start: models, hub datasets, benchmark files.

The list `rlvr model fetch` downloads into the shared cache and `rlvr preflight` checks on every node type.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rlvr.config.grid import expand
from rlvr.config.loader import ConfigError, load_sweep, load_trial
from rlvr.config.schema import TinyModelConfig, TrialConfig
from rlvr.data.benchmarks import resolve_data_dir

MODEL_FILES = ["*.json", "*.safetensors", "*.txt", "*.model", "*.jinja", "*.tiktoken"]
"""A model's snapshot: config, weights, tokenizer and chat template; never the duplicate .bin/.pth weights."""

LOCAL_DATA_SUFFIXES = (".jsonl", ".json", ".parquet")


@dataclass(frozen=True)
class Need:
    """One thing trials read. kind: model (hub), dataset (hub), tiny (built and cached by rlvr), local (a path)."""

    kind: str
    name: str
    revision: str | None = None
    tiny_json: str | None = None  # the TinyModelConfig of a tiny model: its cache key

    def tiny(self):
        return TinyModelConfig.model_validate_json(self.tiny_json)


def load_trials(config: str, overrides: list[str] = ()) -> list[TrialConfig]:
    """Every trial of a sweep config, or the one trial of a trial config (a name is looked up as a sweep first)."""
    try:
        return [spec.config for spec in expand(load_sweep(config, list(overrides)))]
    except ConfigError as as_sweep:
        try:
            return [load_trial(config, list(overrides))]
        except ConfigError as as_trial:
            raise ConfigError(
                f"{config}: neither a sweep nor a trial config.\nAs a sweep: {as_sweep}\nAs a trial: {as_trial}"
            ) from None


def _model_need(trial: TrialConfig) -> Need:
    model = trial.model
    if model.tiny is not None:
        return Need("tiny", model.name, tiny_json=model.tiny.model_dump_json())
    if Path(model.name).exists() or model.name.startswith(("/", "./", "../")):
        return Need("local", model.name)
    return Need("model", model.name, model.revision)


def _data_needs(trial: TrialConfig) -> list[Need]:
    out = []
    source = trial.data.source
    if source.endswith(LOCAL_DATA_SUFFIXES):
        out.append(Need("local", source))
    elif not source.startswith("synthetic:"):
        out.append(Need("dataset", source))
    for spec in trial.eval.benchmarks:
        if spec.hub_name is not None:
            out.append(Need("dataset", spec.hub_name))
        elif not spec.name.startswith("synthetic:"):
            out.append(Need("local", str(resolve_data_dir(trial.data.data_dir) / "benchmarks" / f"{spec.name}.jsonl")))
    return out


def needs_of(trials: list[TrialConfig]) -> list[Need]:
    """Models first, then data, each once, in the order the trials name them."""
    models = [_model_need(t) for t in trials]
    data = [n for t in trials for n in _data_needs(t)]
    return list(dict.fromkeys(models + data))
