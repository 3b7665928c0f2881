#!/usr/bin/env bash
# Create ./.venv (if missing) and install movierec with pinned dependencies.
# Usage: bash scripts/setup.sh [extras]   e.g. bash scripts/setup.sh dev,bench
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-dev}"
PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null 2>&1 || PY=python3
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=".venv/.movierec-installed-$extras"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ constraints.txt -nt "$stamp" ]; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[$extras]" 2>&1 \
    | grep -v '^WARNING: Location' || true
  .venv/bin/python -c "import movierec, torch" # fail loudly if the install did not work
  rm -f .venv/.movierec-installed-*
  touch "$stamp"
fi
