# GPU image of the rlvr cluster: CUDA, Python 3.11, the project with its [gpu] extra (vLLM, DeepSpeed, Ray).
#   docker build -t rlvr/rlvr:0.1.0 .                         (add --build-arg FLASH_ATTN=1 for flash-attn)
# cluster/ray-cluster.yaml and cluster/kuberay.yaml run this image on every node; docs/cluster.md has the steps.
FROM nvidia/cuda:12.8.1-cudnn-devel-ubuntu22.04

ARG PYTHON_VERSION=3.11
ARG FLASH_ATTN=0

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    RLVR_CONFIG_DIR=/opt/rlvr/configs \
    RAY_AUTH_MODE=token

RUN apt-get update \
 && apt-get install -y --no-install-recommends software-properties-common ca-certificates curl git openssh-client rsync build-essential \
 && add-apt-repository -y ppa:deadsnakes/ppa \
 && apt-get update \
 && apt-get install -y --no-install-recommends python${PYTHON_VERSION} python${PYTHON_VERSION}-venv python${PYTHON_VERSION}-dev \
 && rm -rf /var/lib/apt/lists/* \
 && python${PYTHON_VERSION} -m venv /opt/venv \
 && pip install --upgrade pip setuptools wheel

WORKDIR /opt/rlvr
# Dependencies first, so editing the code does not rebuild the multi-GB layer.
COPY pyproject.toml README.md ./
RUN mkdir -p rlvr && touch rlvr/__init__.py \
 && pip install ".[gpu,test]" \
 && pip uninstall -y rlvr
RUN if [ "$FLASH_ATTN" = "1" ]; then pip install flash-attn --no-build-isolation; fi

COPY rlvr ./rlvr
COPY configs ./configs
COPY ray_jobs ./ray_jobs
RUN pip install --no-deps -e . && python -c "import rlvr.sweep.controller, vllm, deepspeed, ray"

# The Ray cluster launcher and KubeRay start Ray themselves; a bare `docker run` gets a shell.
CMD ["bash"]
