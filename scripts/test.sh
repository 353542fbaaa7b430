#!/usr/bin/env bash
# The project's one test command (README and .ci/run): set up, lint, check layering, run tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/python scripts/lint_imports.py
.venv/bin/python -m pytest -m "not slow" "$@"
