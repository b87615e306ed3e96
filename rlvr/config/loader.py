"""YAML composition, ``a.b.c=value`` overrides and the one place that turns raw input into typed configs.

Composition: wherever a section is expected, a string names a file of that section's folder
(``model: tiny`` -> ``configs/models/tiny.yaml``, ``method: paper/dora`` -> ``configs/methods/paper/dora.yaml``),
and a mapping with ``from: NAME`` loads that file and applies its other keys on top.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from rlvr.config.schema import SweepConfig, TrialConfig
from rlvr.config.study import StudyConfig

T = TypeVar("T", bound=BaseModel)

# Which configs/ folder a string reference in a given field resolves to.
SECTION_DIRS = {
    "model": "models",
    "models": "models",
    "method": "methods",
    "methods": "methods",
    "algorithm": "algorithms",
    "data": "data",
    "base": "trials",
}


class ConfigError(ValueError):
    """Bad configuration: the message names the file, the field path, the value and what is allowed."""


class ConfigProblems(ValueError):
    """Raised by a config's model validator: its cross-field problems, each 'field.path: value and what is
    allowed'. Pydantic reports it at the config's location; ``format_validation_error`` lists each problem."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


def config_root() -> Path:
    """The configs/ folder: $RLVR_CONFIG_DIR, else the one beside the package."""
    env = os.environ.get("RLVR_CONFIG_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "configs"


def _read_yaml(path: Path, where: str) -> Any:
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError(f"{where}: cannot read {path}: {e.strerror}") from None
    try:
        return yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None


def _available(folder: Path) -> str:
    names = sorted(str(p.relative_to(folder).with_suffix("")) for p in folder.rglob("*.yaml"))
    return ", ".join(names) if names else "(none)"


def _resolve_ref(section_dir: str, name: str, where: str) -> dict[str, Any]:
    folder = config_root() / section_dir
    path = Path(name) if name.endswith((".yaml", ".yml")) else folder / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(
            f"{where}: no config named {name!r} (looked for {path}); available in {folder}: {_available(folder)}"
        )
    data = _read_yaml(path, where)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return _compose(data, f"{path}")


def _compose(node: Any, where: str, key: str | None = None) -> Any:
    """Replace string references and ``from:`` mappings by the files they name, recursively."""
    section_dir = SECTION_DIRS.get(key or "")
    if section_dir and isinstance(node, str):
        return _resolve_ref(section_dir, node, f"{where}: {key}")
    if section_dir and key in ("models", "methods") and isinstance(node, list):
        return [_compose(item, f"{where}: {key}[{i}]", key[:-1]) for i, item in enumerate(node)]
    if isinstance(node, dict):
        node = dict(node)
        if section_dir and "from" in node:
            base = _resolve_ref(section_dir, str(node.pop("from")), f"{where}: {key}.from")
            node = deep_merge(base, node)
        return {k: _compose(v, where, k) for k, v in node.items()}
    return node


def deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """``top`` wins; nested mappings merge key by key."""
    out = dict(base)
    for k, v in top.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def set_dotted(data: dict[str, Any], dotted: str, value: Any, where: str, merge: bool = True) -> None:
    """Set ``a.b.c`` in a raw mapping, creating sections on the way; with ``merge`` a mapping value merges into
    the section it names instead of replacing it."""
    keys = dotted.split(".")
    node = data
    for depth, k in enumerate(keys[:-1]):
        child = node.get(k)
        if child is None:
            child = node[k] = {}
        if not isinstance(child, dict):
            raise ConfigError(f"{where}: {'.'.join(keys[: depth + 1])} is a {type(child).__name__}, not a section")
        node = child
    old = node.get(keys[-1])
    node[keys[-1]] = deep_merge(old, value) if merge and isinstance(value, dict) and isinstance(old, dict) else value


def apply_overrides(data: dict[str, Any], overrides: list[str], where: str = "command line") -> dict[str, Any]:
    """Apply ``a.b.c=value`` strings (value parsed as YAML) to a raw config mapping. A section named by
    reference (``method=uniform/dora``) replaces the section; other values set or merge."""
    for item in overrides:
        dotted, sep, raw = item.partition("=")
        if not sep or not dotted:
            raise ConfigError(f"{where}: override {item!r} is not of the form a.b.c=value")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            value = raw
        last = dotted.rsplit(".", 1)[-1]
        reference = last in SECTION_DIRS and isinstance(value, str)
        if last in SECTION_DIRS:
            value = _compose(value, where, last)
        set_dotted(data, dotted, value, f"{where}: override {item!r}", merge=not reference)
    return data


def _unknown_key_fix(model: type[BaseModel] | None, loc: tuple, value: Any) -> str:
    """How to fix an unknown key: a trial field given to a sweep goes under ``base``; anything else is a typo."""
    key = loc[0] if len(loc) == 1 else None
    if model is SweepConfig and key in TrialConfig.model_fields:
        while isinstance(value, dict) and len(value) == 1:  # {gpu_memory_gib: 40} -> resources.gpu_memory_gib
            inner, value = next(iter(value.items()))
            key = f"{key}.{inner}"
        example = f"base.{key}={value}" if not isinstance(value, dict) else f"base.{key}.FIELD=VALUE"
        return f"it is a trial field: a sweep's trial settings go under base (e.g. {example})"
    return "remove it or check its spelling"


def format_validation_error(
    err: ValidationError, source: str, prefix: str = "", model: type[BaseModel] | None = None
) -> str:
    """One line per problem of ``err`` (raised validating ``model`` from ``source``), naming the field path."""
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"])
        cross_field = (e.get("ctx") or {}).get("error")
        if isinstance(cross_field, ConfigProblems):  # already 'field: value and what is allowed', below loc
            lines += [f"  {prefix}{loc + '.' if loc else ''}{p}" for p in cross_field.problems]
            continue
        path = f"{prefix}{loc}" if loc else prefix.rstrip(".") or "(top level)"
        value = e.get("input")
        shown = repr(value) if not isinstance(value, dict) else "{...}"
        if len(shown) > 80:
            shown = shown[:77] + "..."
        if e["type"] == "extra_forbidden":
            lines.append(f"  {path}: unknown key (value {shown}); {_unknown_key_fix(model, e['loc'], value)}")
        elif e["type"] == "missing":
            lines.append(f"  {path}: required field is missing")
        else:
            lines.append(f"  {path}: {shown} is not allowed: {e['msg']}")
    return "\n".join([f"{source}: invalid configuration ({len(lines)} problem(s)):", *lines])


def build(
    model: type[T], data: dict[str, Any], source: str, prefix: str = "", context: dict[str, Any] | None = None
) -> T:
    """Typed config from a raw mapping, with errors naming the source and the field path; ``context`` is pydantic's
    validation context (``schema.UNCHECKED`` leaves out the cross-field rules)."""
    try:
        return model.model_validate(data, context=context)
    except ValidationError as e:
        raise ConfigError(format_validation_error(e, source, prefix, model)) from None


def find_config(name_or_path: str, section_dir: str) -> Path:
    """A path as given, else ``configs/<section_dir>/<name>.yaml``."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    candidate = config_root() / section_dir / f"{name_or_path}.yaml"
    if candidate.is_file():
        return candidate
    folder = config_root() / section_dir
    raise ConfigError(
        f"{name_or_path}: no such file, and no config of that name in {folder} (available: {_available(folder)})"
    )


def load_raw(path: Path, overrides: list[str] = ()) -> dict[str, Any]:
    data = _read_yaml(path, str(path))
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    data = _compose(data, str(path))
    return apply_overrides(data, list(overrides))


def load_trial(name_or_path: str, overrides: list[str] = ()) -> TrialConfig:
    """Load, compose, override and validate a trial config (the only entry point for trial config files)."""
    path = find_config(name_or_path, "trials")
    return build(TrialConfig, load_raw(path, overrides), str(path))


def load_sweep(name_or_path: str, overrides: list[str] = ()) -> SweepConfig:
    """Load, compose, override and validate a sweep config (the only entry point for sweep config files)."""
    path = find_config(name_or_path, "sweeps")
    return build(SweepConfig, load_raw(path, overrides), str(path))


def load_study(name_or_path: str, overrides: list[str] = ()):
    """Load, compose, override and validate a study config (configs/studies/)."""
    path = find_config(name_or_path, "studies")
    return build(StudyConfig, load_raw(path, overrides), str(path))


def dump(cfg: BaseModel) -> str:
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)
