#!/usr/bin/env bash
# Set up .venv with cmi-trainer and the right PyTorch build, on a machine with only Python 3.11.
#   - NVIDIA GPU present (nvidia-smi works): PyPI's default (CUDA) torch build.
#   - no GPU: torch 2.13.0, which pip takes as a CPU wheel where one is available locally;
#     elsewhere set CMI_TORCH_INDEX_URL to PyTorch's CPU wheel index to avoid the CUDA download.
# Re-running is cheap: an installed torch is kept.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3.11}
command -v "$python" >/dev/null || python=python3
[ -x .venv/bin/python ] || "$python" -m venv .venv
pip=(.venv/bin/python -m pip install --quiet --disable-pip-version-check)

if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    echo "bootstrap: GPU found, installing the CUDA build of torch" >&2
    "${pip[@]}" "torch>=2.4,<2.14"
  else
    echo "bootstrap: no GPU, installing the CPU build of torch" >&2
    "${pip[@]}" ${CMI_TORCH_INDEX_URL:+--index-url "$CMI_TORCH_INDEX_URL"} "torch==2.13.0"
  fi
fi
"${pip[@]}" -e '.[dev,ray]' 2>&1 | grep -v "is ignored: it is neither" || true
.venv/bin/python -c "import cmi_core, torch; print(f'bootstrap: cmi-trainer {cmi_core.__version__}, torch {torch.__version__}')" >&2
