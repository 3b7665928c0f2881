#!/usr/bin/env bash
# Set everything up and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh dev,bench,text,spark
source scripts/env.sh
# Tests fetch into a private cache so they never depend on what a user has cached.
export MOVIEREC_CACHE="${MOVIEREC_TEST_CACHE:-$PWD/.movierec-cache/test}"
exec .venv/bin/python -m pytest -n 2 -q "$@"
