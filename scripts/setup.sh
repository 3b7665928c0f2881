#!/usr/bin/env bash
# Create ./.venv (if missing) and install movierec with pinned dependencies.
# Usage: bash scripts/setup.sh [extras]   e.g. bash scripts/setup.sh dev,bench
#        (extras: dev, bench, text, spark; spark also needs Java 17: apt-get install openjdk-17-jre-headless)
# Says what it does, one line a step, on stderr (stdout stays free for the caller).
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-dev}"
PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null 2>&1 || PY=python3
say() { echo "setup: $*" >&2; }
if [ ! -x .venv/bin/python ]; then
  say "creating .venv with $("$PY" --version 2>&1)"
  "$PY" -m venv .venv
fi
stamp=".venv/.movierec-installed-$extras"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ constraints.txt -nt "$stamp" ]; then
  if [ ! -f "$stamp" ]; then
    why="not installed with these extras yet"
  elif [ pyproject.toml -nt "$stamp" ]; then
    why="pyproject.toml changed since the last install"
  else
    why="constraints.txt changed since the last install"
  fi
  say "updating pip in .venv"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
  say "installing movierec[$extras] (editable) with versions pinned by constraints.txt ($why); the first time takes minutes"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[$extras]" 2>&1 \
    | grep -v '^WARNING: Location' || true
  say "checking that movierec and torch import"
  .venv/bin/python -c "import movierec, torch" # fail loudly if the install did not work
  rm -f .venv/.movierec-installed-*
  touch "$stamp"
  say "done: .venv has movierec[$extras]"
else
  say "already set up: .venv has movierec[$extras] (pyproject.toml and constraints.txt unchanged since)"
fi
# the spark extra (als-spark) runs Spark, which needs Java 17: say how to get it when it is missing
case ",$extras," in
  *,spark,*)
    java_problem="$(.venv/bin/python -c "from movierec.models.als_spark import java_problem; print(java_problem() or '')")"
    if [ -n "$java_problem" ]; then
      say "$java_problem"
    fi
    ;;
esac
