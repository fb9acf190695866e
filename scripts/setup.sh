#!/usr/bin/env bash
# Create .venv and install scenesearch with its dev tools. Idempotent; safe to rerun.
# CPU machines get the pinned CPU torch (constraints/cpu.txt); with a working nvidia-smi the
# default (CUDA) torch is installed instead. SCENESEARCH_CPU=1 forces the CPU pin.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
. .venv/bin/activate
python -m pip install -q --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
constraint=(-c constraints/cpu.txt)
if [ "${SCENESEARCH_CPU:-}" != "1" ] && command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    constraint=()
fi
python -m pip install -q "${constraint[@]}" -e ".[dev]" 2>&1 | grep -v "^WARNING: Location" || true
python -c "import scenesearch.indexer, scenesearch.search, scenesearch.ui, scenesearch.eval" # fail loudly if the install is broken
