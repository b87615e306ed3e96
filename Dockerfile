# syntax=docker/dockerfile:1.7
# GPU image of the rlvr cluster: Python 3.11, the project with its [gpu] extra (vLLM, DeepSpeed, Ray), the
# benchmark files, run as the non-root user `ray`. Build from the repository root, with the benchmarks folder
# (the one holding benchmarks/*.jsonl) as the build context named `data`:
#   docker build --build-context data=../shared/data -t rlvr/rlvr:0.1.0 .
# CUDA: the pinned torch 2.13.0 and vllm 0.32.0 wheels are CUDA 13.0 builds that bring their own CUDA libraries
# (cuda-toolkit 13.0.3, NCCL 2.29.7 from PyPI; rlvr/cluster/stack.py), so the base is CUDA 13.0's small `base`
# image: the same CUDA major, the NVIDIA container settings, and a start-up check of the host driver
# (NVIDIA_REQUIRE_CUDA). Host: NVIDIA driver >= 580.65.06 and GPUs of compute capability >= 7.5 (Turing or newer).
# cluster/ray-cluster.yaml and cluster/kuberay.yaml run this image on every node; docs/cluster.md has the steps.

ARG PYTHON_VERSION=3.11
ARG CUDA_IMAGE=nvidia/cuda:13.0.1-base-ubuntu22.04

# ---- build: every wheel into /opt/venv; the compilers stay in this stage (DeepSpeed is built from its sdist)
FROM ubuntu:22.04 AS build
ARG PYTHON_VERSION
ENV DEBIAN_FRONTEND=noninteractive PIP_NO_CACHE_DIR=1 PATH=/opt/venv/bin:$PATH
RUN apt-get update \
 && apt-get install -y --no-install-recommends software-properties-common gpg-agent ca-certificates build-essential git \
 && add-apt-repository -y ppa:deadsnakes/ppa \
 && apt-get update \
 && apt-get install -y --no-install-recommends python${PYTHON_VERSION} python${PYTHON_VERSION}-venv python${PYTHON_VERSION}-dev \
 && python${PYTHON_VERSION} -m venv /opt/venv \
 && pip install --upgrade pip setuptools wheel
WORKDIR /src
# Dependencies only, from the lock (exact versions and hashes of ".[gpu]", made by scripts/lock.sh), so the image
# holds the versions the project was tested with and editing the code keeps this multi-GB layer.
COPY requirements/gpu.lock ./
RUN pip install --require-hashes --no-deps -r gpu.lock

# ---- runtime: the CUDA 13.0 base, Python, the venv, the code, the benchmarks
FROM ${CUDA_IMAGE} AS runtime
ARG PYTHON_VERSION
ENV DEBIAN_FRONTEND=noninteractive
# Python headers and gcc: Triton compiles its small launcher modules the first time vLLM runs a kernel.
# rsync: the Ray cluster launcher copies the bootstrap config and file mounts into the container with
# `rsync -e 'docker exec -i'` (ray autoscaler/_private/command_runner.py, DockerCommandRunner.run_rsync_up).
RUN apt-get update \
 && apt-get install -y --no-install-recommends software-properties-common gpg-agent ca-certificates \
 && add-apt-repository -y ppa:deadsnakes/ppa \
 && apt-get update \
 && apt-get install -y --no-install-recommends python${PYTHON_VERSION} python${PYTHON_VERSION}-dev gcc libc6-dev rsync \
 && apt-get purge -y software-properties-common gpg-agent && apt-get autoremove -y \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --create-home --uid 1000 --shell /bin/bash ray \
 && mkdir -p /mnt/rlvr-cache && chown ray:ray /mnt/rlvr-cache
COPY --from=build /opt/venv /opt/venv
WORKDIR /opt/rlvr
COPY --chown=ray:ray pyproject.toml README.md ./
COPY --chown=ray:ray rlvr ./rlvr
COPY --chown=ray:ray configs ./configs
COPY --chown=ray:ray ray_jobs ./ray_jobs
COPY --from=data --chown=ray:ray benchmarks ./data/benchmarks
# Where trials find things (rlvr/cluster/stack.py CLUSTER_ENV): benchmarks in the image, model weights and hub
# datasets on the shared volume that both cluster configs mount at /mnt/rlvr-cache, fetched there once by
# `rlvr model fetch` (run it with HF_HUB_OFFLINE=0); trials stay offline. Ray's token auth is on.
ENV PATH=/opt/venv/bin:$PATH \
    VIRTUAL_ENV=/opt/venv \
    PYTHONUNBUFFERED=1 \
    RLVR_CONFIG_DIR=/opt/rlvr/configs \
    RLVR_DATA_DIR=/opt/rlvr/data \
    HF_HOME=/mnt/rlvr-cache/hf \
    RLVR_CACHE_DIR=/mnt/rlvr-cache/rlvr \
    HF_HUB_OFFLINE=1 \
    HF_DATASETS_CACHE=/tmp/hf-datasets \
    RAY_AUTH_MODE=token
# The import check includes cuda.bindings and flashinfer: two wheels of the lock once shipped the same
# cuda/bindings files (docs/cluster.md, "The lock's CUDA bindings"), and a clash shows here, not in a trial.
RUN pip install --no-deps --no-build-isolation -e . \
 && python -c "import rlvr.cluster.preflight, rlvr.sweep.controller, vllm, deepspeed, ray" \
 && python -c "from cuda.bindings import driver; import flashinfer" \
 && test -s data/benchmarks/aime24.jsonl
USER ray
# The Ray cluster launcher and KubeRay start Ray themselves; a bare `docker run` gets a shell.
CMD ["bash"]
