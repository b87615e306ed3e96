"""What the GPU image is built from and where a cluster keeps its files: the one place that the Dockerfile, the
cluster configs, docs/cluster.md, `rlvr model fetch` and `rlvr preflight` agree on (tests/test_packaging.py
holds them to it).

The pinned wheels carry their own CUDA: on PyPI, torch 2.13.0 requires cuda-toolkit==13.0.3 and
nvidia-nccl-cu13==2.29.7, and vllm 0.32.0 requires torch==2.13.0 and nvidia-cutlass-dsl[cu13] (read from the
wheels' metadata; docs/cluster.md has the command). The image only has to match that CUDA major, and the host
needs a driver that runs CUDA 13.0.
"""

from __future__ import annotations

WHEELS = {"torch": "2.13.0", "vllm": "0.32.0"}
"""The pins these facts were read for: bumping either in pyproject.toml means re-reading the wheels' CUDA."""

WHEELS_CUDA = "13.0"
WHEELS_NCCL = "2.29.7"

MIN_DRIVER = "580.65.06"
"""CUDA 13.0 runs on NVIDIA driver 580.65.06 or newer (its release notes); older drivers make CUDA unusable."""

MIN_COMPUTE_CAPABILITY = (7, 5)
"""CUDA 13 dropped Maxwell, Pascal and Volta: Turing (T4) or newer, e.g. A10G, L4, A100, H100."""

CACHE_ROOT = "/mnt/rlvr-cache"
"""The shared volume every node mounts: model weights and hub datasets, fetched once for the whole cluster."""

CLUSTER_ENV = {
    "HF_HOME": f"{CACHE_ROOT}/hf",
    "RLVR_CACHE_DIR": f"{CACHE_ROOT}/rlvr",
    "RLVR_DATA_DIR": "/opt/rlvr/data",
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_CACHE": "/tmp/hf-datasets",
}
"""The image's environment: hub cache and tiny-model cache on the shared volume, the benchmarks baked into the
image, trials that never reach the hub (they load what `rlvr model fetch` put in the cache), and the Arrow
files datasets prepares from a cached snapshot on each node's own disk (no file locks across nodes)."""


def major(version: str) -> int:
    return int(version.split(".")[0])
