#!/usr/bin/env bash
# The GPU smoke run, unattended, within 8 minutes (docs/benchmarks.md, "GPU smoke run"):
# set up .venv with the CUDA build of torch (scripts/bootstrap.sh does when nvidia-smi works),
# then bench/gpu_smoke.py: configs/exp025_full.toml for one fold, 300 steps in bf16-mixed, a
# gradient-level strategy for 20 steps, `cmi predict` of the test set; it prints steps/s and
# peak GPU memory and writes runs/gpu-smoke/results.json. Never part of CI.
#
#   bash bench/gpu_smoke.sh                      # on a machine with an NVIDIA GPU
#   bash bench/gpu_smoke.sh --cpu                # the same stages, tiny, on the CPU (rehearsal)
#   CMI_SMOKE_PYTHON=/path/to/python bash bench/gpu_smoke.sh --cpu   # an existing env, no set-up
#
# Other arguments go to bench/gpu_smoke.py (--steps, --strategy, --out, ...). The whole script
# stops after CMI_SMOKE_BUDGET_S seconds (default 480), set-up included.
set -euo pipefail
cd "$(dirname "$0")/.."
budget=${CMI_SMOKE_BUDGET_S:-480}

cpu=false
for arg in "$@"; do [ "$arg" = "--cpu" ] && cpu=true; done
if ! $cpu && ! { command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; }; then
  echo "gpu_smoke: no NVIDIA GPU here (nvidia-smi -L fails): this run is for a GPU machine and" \
    "never runs in CI. Rehearse it on the CPU: bash bench/gpu_smoke.sh --cpu" >&2
  exit 2
fi

python=${CMI_SMOKE_PYTHON:-}
if [ -z "$python" ]; then
  timeout "$budget" bash scripts/bootstrap.sh || {  # the CUDA build of torch with nvidia-smi
    echo "gpu_smoke: the set-up (scripts/bootstrap.sh) failed or ran past ${budget} s" >&2
    exit 1
  }
  python=.venv/bin/python
fi

left=$((budget - SECONDS - 10))  # 10 s for a graceful stop (Lightning's SIGTERM handling)
status=0
timeout --kill-after=10 "$left" "$python" bench/gpu_smoke.py "$@" || status=$?
if [ "$status" -eq 124 ]; then
  echo "gpu_smoke: stopped at the ${budget} s budget (set-up took $((budget - left)) s)" >&2
fi
echo "gpu_smoke: $SECONDS s in all, set-up included" >&2
exit "$status"
