#!/usr/bin/env bash
# Mutation testing of the core modules with mutmut 3 (not part of the per-commit CI run).
#
#   scripts/mutation.sh                       # every core module (slow: hours on 2 cores)
#   scripts/mutation.sh src/movierec/ranking.py src/movierec/data/idmap.py
#
# Each module is mutated in its own scratch copy of src/ and tests/ (under
# $MUTATION_WORKDIR, default .mutation/), running only the fast test files that cover it
# (the MODULE_TESTS map below). Writes benchmarks/results/mutation.json (killed / survived /
# timeout per module and every survivor's diff) and benchmarks/results/mutation.md (a
# table for BENCHMARKS.md). Survivors must be killed by a new test or explained there as
# equivalent mutants. Target: >= 90% killed per module.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PYTHON:-$ROOT/.venv/bin/python}
MUTMUT=${MUTMUT:-$ROOT/.venv/bin/mutmut}
JOBS=${JOBS:-2}
WORK=${MUTATION_WORKDIR:-$ROOT/.mutation}
OUT=${MUTATION_OUT:-$ROOT/benchmarks/results}
export MOVIEREC_MIRROR=${MOVIEREC_MIRROR:-$ROOT/../shared/datasets}

# module -> the test files (and pytest options) that should kill its mutants
declare -A MODULE_TESTS=(
  [src/movierec/evaluation/metrics.py]="tests/test_metrics.py"
  [src/movierec/data/split.py]="tests/test_splits.py"
  [src/movierec/data/idmap.py]="tests/test_idmap.py"
  [src/movierec/ranking.py]="tests/test_ranking.py"
  [src/movierec/artifacts/bundle.py]="tests/test_artifacts.py"
  [src/movierec/artifacts/registry.py]="tests/test_registry.py"
  [src/movierec/models/base.py]="tests/test_contract.py -k fold_in or batch_equals_single or candidates"
)
DEFAULT_MODULES=(
  src/movierec/evaluation/metrics.py
  src/movierec/data/split.py
  src/movierec/data/idmap.py
  src/movierec/ranking.py
  src/movierec/artifacts/bundle.py
  src/movierec/artifacts/registry.py
  src/movierec/models/base.py
)

MODULES=("$@")
[ ${#MODULES[@]} -eq 0 ] && MODULES=("${DEFAULT_MODULES[@]}")
mkdir -p "$WORK" "$OUT"
RESULTS=()

for module in "${MODULES[@]}"; do
  tests=${MODULE_TESTS[$module]:-}
  if [ -z "$tests" ]; then
    echo "no tests mapped for $module; add it to MODULE_TESTS in $0" >&2
    exit 2
  fi
  slug=$(echo "${module#src/}" | tr '/.' '__')
  dir=$WORK/$slug
  echo "== $module  (tests: $tests)" >&2
  rm -rf "$dir" && mkdir -p "$dir"
  cp -r src tests "$dir"/
  find "$dir" -name __pycache__ -prune -exec rm -rf {} +
  # the project's pyproject (pytest settings) plus a [tool.mutmut] section for this module
  "$PY" - "$dir" "$module" "$tests" <<'EOF'
import json, shlex, sys
from pathlib import Path
dir_, module, tests = sys.argv[1], sys.argv[2], sys.argv[3]
words = shlex.split(tests)
files = [w for w in words if w.startswith("tests/")]
extra = []
if "-k" in words:
    extra = ["-k", " ".join(words[words.index("-k") + 1:])]
text = Path("pyproject.toml").read_text()
text += "\n[tool.mutmut]\n"
text += 'source_paths = ["src/movierec"]\n'
text += f"only_mutate = {json.dumps([module])}\n"
text += f"pytest_add_cli_args = {json.dumps(['-p', 'no:randomly', '-p', 'no:cacheprovider', '-q', '-x'] + extra)}\n"
text += f"pytest_add_cli_args_test_selection = {json.dumps(files)}\n"
text += "use_git_change_detection = false\n"
Path(dir_, "pyproject.toml").write_text(text)
EOF
  (cd "$dir" && "$MUTMUT" run --max-children "$JOBS" > run.log 2>&1) || echo "mutmut exited non-zero for $module (see $dir/run.log)" >&2
  (cd "$dir" && "$MUTMUT" export-cicd-stats > /dev/null 2>&1 || true)
  # survivors and their diffs
  (cd "$dir" && "$MUTMUT" results 2>/dev/null | awk -F': ' '/: survived$/ {print $1}' > survivors.txt || true)
  : > "$dir/survivors.diff"
  while read -r name; do
    [ -z "$name" ] && continue
    { echo "### $name"; (cd "$dir" && "$MUTMUT" show "$name" 2>/dev/null | grep -E '^[-+][^-+]' || true); } >> "$dir/survivors.diff"
  done < "$dir/survivors.txt"
  RESULTS+=("$module=$dir")
done

"$PY" - "$OUT" "${RESULTS[@]}" <<'EOF'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
summary_path = out / "mutation.json"
summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
for item in sys.argv[2:]:
    module, dir_ = item.split("=", 1)
    stats_file = Path(dir_, "mutants", "mutmut-cicd-stats.json")
    stats = json.loads(stats_file.read_text()) if stats_file.exists() else {}
    survivors = []
    for block in Path(dir_, "survivors.diff").read_text().split("### ")[1:]:
        name, _, diff = block.partition("\n")
        survivors.append({"mutant": name.strip(), "diff": diff.strip()})
    total = int(stats.get("total", 0))
    killed = int(stats.get("killed", 0))
    summary[module] = {
        "total": total,
        "killed": killed,
        "survived": int(stats.get("survived", 0)),
        "timeout": int(stats.get("timeout", 0)),
        "no_tests": int(stats.get("no_tests", 0)),
        "suspicious": int(stats.get("suspicious", 0)),
        "killed_pct": round(100.0 * killed / total, 1) if total else None,
        "survivors": survivors,
    }
summary_path.write_text(json.dumps(summary, indent=2) + "\n")
lines = ["| module | mutants | killed | survived | timeout | no tests | killed % |", "|---|---:|---:|---:|---:|---:|---:|"]
for module, s in sorted(summary.items()):
    lines.append(f"| `{module}` | {s['total']} | {s['killed']} | {s['survived']} | {s['timeout']} | {s['no_tests']} | {s['killed_pct']} |")
(out / "mutation.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
EOF
