"""`rlvr model fetch`: put everything a sweep reads into the shared cache once, before any trial starts.

Hub models and datasets go into the hub cache (HF_HOME, on the volume every node mounts); tiny models are built
into RLVR_CACHE_DIR; local paths are only checked. `in_cache` answers, without the network, whether a need is
there: trials run with HF_HUB_OFFLINE=1 and load it from the cache, as `rlvr preflight` checks on every node.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rlvr.cluster.needs import MODEL_FILES, Need
from rlvr.config.loader import ConfigError
from rlvr.data.hub import snapshot_dir
from rlvr.models.pretrain import ensure_tiny, tiny_path


@dataclass(frozen=True)
class Found:
    """Where a need is, or why it is not there (``path`` None)."""

    need: Need
    path: str | None
    detail: str


def _snapshot(need: Need, download: bool) -> str:
    patterns = MODEL_FILES if need.kind == "model" else None
    return snapshot_dir(need.name, need.kind, need.revision, patterns, local_files_only=not download)


def _describe(path: str) -> str:
    files = [p for p in Path(path).rglob("*") if p.is_file()]
    size = sum(p.stat().st_size for p in files)
    return f"{len(files)} files, {size / 2**20:.1f} MiB in {path}"


def _missing_model_files(path: str) -> str | None:
    names = {p.name for p in Path(path).iterdir()}
    if "config.json" not in names:
        return "no config.json"
    if not any(n.endswith(".safetensors") for n in names):
        return "no *.safetensors weights"
    return None


def locate(need: Need, download: bool) -> Found:
    """Find ``need`` (downloading or building it when ``download``); never raises for a missing one."""
    if need.kind == "local":
        ok = Path(need.name).exists()
        return Found(need, need.name if ok else None, "local path" if ok else f"{need.name} does not exist")
    if need.kind == "tiny":
        path = ensure_tiny(need.tiny()) if download else tiny_path(need.tiny())
        if not path.is_dir():
            return Found(
                need, None, f"not built yet in {path} (trials build it on first use; `rlvr model fetch` builds it now)"
            )
        return Found(need, str(path), f"tiny model in {path}")
    try:
        path = _snapshot(need, download)
    except Exception as e:  # noqa: BLE001 - the hub's errors (offline, gated, missing) are the message
        import huggingface_hub.constants
        from huggingface_hub.errors import LocalEntryNotFoundError

        why = "" if isinstance(e, LocalEntryNotFoundError) else f": {type(e).__name__}: {str(e).splitlines()[0][:300]}"
        return Found(need, None, f"not in the hub cache {huggingface_hub.constants.HF_HUB_CACHE}{why}")
    problem = _missing_model_files(path) if need.kind == "model" else None
    if problem:
        return Found(need, None, f"snapshot {path} is incomplete: {problem}")
    return Found(need, path, _describe(path))


def hub_offline() -> bool:
    import huggingface_hub.constants

    return bool(huggingface_hub.constants.HF_HUB_OFFLINE)


def fetch(needs: list[Need]) -> list[Found]:
    """Download or build every need; a hub need while HF_HUB_OFFLINE is on is a usage error."""
    if hub_offline() and any(n.kind in ("model", "dataset") for n in needs):
        raise ConfigError(
            "HF_HUB_OFFLINE=1 is set (the image sets it so that trials never reach the hub): run the fetch with "
            "HF_HUB_OFFLINE=0, e.g. `HF_HUB_OFFLINE=0 rlvr model fetch CONFIG`"
        )
    return [locate(n, download=True) for n in needs]
