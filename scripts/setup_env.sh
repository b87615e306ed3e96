#!/usr/bin/env bash
# Creates .venv with the CPU stack from the lock (requirements/cpu.lock: every package at an exact version, with
# hashes; scripts/lock.sh regenerates it from pyproject.toml), the project itself, and the system packages the
# tests use. Re-running is a no-op while pyproject.toml, the lock and this script are unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${RLVR_VENV:-.venv}
PYTHON=${PYTHON:-python3.11}
STAMP="$VENV/.rlvr-setup"
want=$(cat pyproject.toml requirements/cpu.lock scripts/setup_env.sh | sha256sum | cut -c1-16)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
  exit 0
fi

echo "setting up $VENV (a few minutes on a fresh machine)"
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
pip=("$VENV/bin/python" -m pip install --quiet --disable-pip-version-check)
# torch's CPU wheel is not on PyPI: it comes from this machine's wheel folder, else from PyTorch's CPU index.
torch_source=(--extra-index-url https://download.pytorch.org/whl/cpu)
[ -d /opt/wheels ] && torch_source=(--find-links /opt/wheels)
# --no-deps: the lock is the whole environment, so nothing may resolve anything else (such as a CUDA torch).
"${pip[@]}" "${torch_source[@]}" --require-hashes --no-deps -r requirements/cpu.lock
"${pip[@]}" --no-deps --no-build-isolation -e .

# Headless Chromium renders the report in the report test.
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

echo "$want" > "$STAMP"
echo "environment ready: $VENV"
