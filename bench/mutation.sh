#!/usr/bin/env bash
# Mutation testing of the core with mutmut (docs/mutation.md); not part of the test command.
#
#   bash bench/mutation.sh [MUTANT_GLOB ...]      e.g. 'cmi_core.weighting*' 'cmi_core.train.optim*'
#
# Works on a snapshot of the work tree in .cache/mutation (so editing goes on while it runs;
# mutmut's results there are kept and reused by the next run), mutates the modules of
# [tool.mutmut] only_mutate in pyproject.toml, and runs for each mutant only the selected fast
# tests that call the mutated function. CMI_MUTATION_MINUTES (default 45) caps the run; what
# finished is kept and a second run resumes. Ends with the list of surviving mutants.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
minutes=${CMI_MUTATION_MINUTES:-45}
work=.cache/mutation
[ -x .venv/bin/mutmut ] || .venv/bin/python -m pip install --quiet -e '.[mutation]'

mkdir -p "$work"
git ls-files -z --cached --others --exclude-standard \
  | tar --null --ignore-failed-read -T - -cf - 2>/dev/null | tar -xf - -C "$work"
cd "$work"
status=0
OMP_NUM_THREADS=1 timeout "${minutes}m" "$root/.venv/bin/mutmut" run --max-children 1 "$@" \
  || status=$?
[ "$status" -eq 124 ] && echo "mutation: stopped at the ${minutes}-minute cap; run again to resume"
"$root/.venv/bin/mutmut" results
