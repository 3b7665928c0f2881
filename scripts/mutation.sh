#!/usr/bin/env bash
# Mutation testing of the core modules with mutmut 3 (not part of the per-commit CI run).
#
#   scripts/mutation.sh                       # every core module (about 40 minutes on 2 busy cores)
#   scripts/mutation.sh src/movierec/ranking.py src/movierec/data/idmap.py
#   MUTATION_RERUN=1 scripts/mutation.sh src/movierec/ranking.py   # rerun only last run's survivors
#   MUTATION_RERUN=summary scripts/mutation.sh                     # only rewrite the reports
#
# Each module is mutated in its own scratch copy of src/ and tests/ (under
# $MUTATION_WORKDIR, default .mutation/), running only the fast test files that cover it
# (MODULE_TESTS below); MODULE_MUTANTS restricts a module to some functions (mutmut
# mutant-name globs), e.g. base.py to its cold-start methods. With MUTATION_RERUN=1 the
# scratch copy is kept, its tests refreshed, and only the mutants that survived (or had no
# covering test), then any an interrupted run left unchecked, are run again (the others keep
# their result).
#
# Writes benchmarks/results/mutation.json (per module: mutants, killed, survived, timeout,
# equivalent, raw and adjusted kill rate, every survivor's diff and, when explained, why it
# is equivalent) and benchmarks/results/mutation.md (the table for BENCHMARKS.md).
# Equivalent mutants (no test can tell them from the original) are listed with a one-line
# reason in benchmarks/results/mutation_equivalent.json: {module: {mutant: reason}}.
#   raw % = (killed + timeout) / mutants;  adjusted % = (killed + timeout) / (mutants - equivalent)
# A timeout counts as detected (the mutant made the tests hang, which fails the run).
# Target: adjusted >= 90% per module, every survivor killed by a test or explained.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PYTHON:-$ROOT/.venv/bin/python}
MUTMUT=${MUTMUT:-$ROOT/.venv/bin/mutmut}
JOBS=${JOBS:-2}
WORK=${MUTATION_WORKDIR:-$ROOT/.mutation}
OUT=${MUTATION_OUT:-$ROOT/benchmarks/results}
RERUN=${MUTATION_RERUN:-0}
export MOVIEREC_MIRROR=${MOVIEREC_MIRROR:-$ROOT/../shared/datasets}

# module -> the test files (and pytest options) that should kill its mutants; mutmut forks a
# fresh pytest per mutant, so module fixtures are rebuilt each time: slow fits are left out
declare -A MODULE_TESTS=(
  [src/movierec/evaluation/metrics.py]="tests/test_metrics.py"
  [src/movierec/data/split.py]="tests/test_splits.py"
  [src/movierec/data/idmap.py]="tests/test_idmap.py"
  [src/movierec/ranking.py]="tests/test_ranking.py"
  [src/movierec/artifacts/bundle.py]="tests/test_artifacts.py -k not (round_trip_answers_identically and (mf or ease))"
  [src/movierec/artifacts/registry.py]="tests/test_registry.py"
  [src/movierec/models/base.py]="tests/test_fold_in.py"
  [src/movierec/models/_fold_in.py]="tests/test_fold_in.py"
)
# module -> mutant-name globs (only these functions are mutated-and-counted); default: all
declare -A MODULE_MUTANTS=(
  [src/movierec/models/base.py]="movierec.models.base.xǁRecommenderǁfold_in__mutmut_* movierec.models.base.xǁRecommenderǁrecommend_new__mutmut_*"
)
DEFAULT_MODULES=(
  src/movierec/evaluation/metrics.py
  src/movierec/data/split.py
  src/movierec/data/idmap.py
  src/movierec/ranking.py
  src/movierec/artifacts/bundle.py
  src/movierec/artifacts/registry.py
  src/movierec/models/base.py
  src/movierec/models/_fold_in.py
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
  globs=${MODULE_MUTANTS[$module]:-}
  slug=$(echo "${module#src/}" | tr '/.' '__')
  dir=$WORK/$slug
  echo "== $module  (tests: $tests${globs:+; mutants: $globs})" >&2
  start=$(date +%s)
  if [ "$RERUN" = summary ] && [ -d "$dir/mutants" ]; then
    :  # only summarise the last results
  elif [ "$RERUN" = 1 ] && [ -d "$dir/mutants" ]; then
    # fresh tests (in the scratch copy and mutmut's own copy); forget the test<->function map
    rm -rf "$dir/tests" "$dir/mutants/tests" "$dir/mutants/mutmut-stats.json"
    cp -r tests "$dir/tests" && cp -r tests "$dir/mutants/tests"
    find "$dir" -name __pycache__ -prune -exec rm -rf {} +
    mapfile -t names < <(cd "$dir" && "$MUTMUT" results 2>/dev/null | awk -F': ' '/: (survived|no tests)$/ {gsub(/^ +/, "", $1); print $1}')
    if [ ${#names[@]} -gt 0 ]; then
      (cd "$dir" && "$MUTMUT" run --max-children "$JOBS" "${names[@]}" > rerun.log 2>&1) || echo "mutmut exited non-zero for $module (see $dir/rerun.log)" >&2
    fi
    # then any mutant an interrupted run never checked (the others keep their result)
    # shellcheck disable=SC2086
    (cd "$dir" && "$MUTMUT" run --max-children "$JOBS" $globs >> rerun.log 2>&1) || echo "mutmut exited non-zero for $module (see $dir/rerun.log)" >&2
  else
    rm -rf "$dir" && mkdir -p "$dir"
    cp -r src tests "$dir"/
    find "$dir" -name __pycache__ -prune -exec rm -rf {} +
    # the project's pyproject (pytest settings) plus a [tool.mutmut] section for this module
    "$PY" - "$dir" "$module" "$tests" <<'PYEOF'
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
PYEOF
    # shellcheck disable=SC2086
    (cd "$dir" && "$MUTMUT" run --max-children "$JOBS" $globs > run.log 2>&1) || echo "mutmut exited non-zero for $module (see $dir/run.log)" >&2
  fi
  (cd "$dir" && "$MUTMUT" results --all true > results.txt 2>/dev/null || true)
  echo "   $(( $(date +%s) - start )) s" >&2
  RESULTS+=("$module=$dir=$globs")
done

"$PY" - "$OUT" "${RESULTS[@]}" <<'PYEOF'
"""Summarise mutmut's results per module: counts, kill rates, survivors' diffs, equivalents."""
import ast, difflib, fnmatch, json, sys
from pathlib import Path

out = Path(sys.argv[1])
summary_path = out / "mutation.json"
summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
equivalent_path = out / "mutation_equivalent.json"
equivalent = json.loads(equivalent_path.read_text()) if equivalent_path.exists() else {}


def functions(path: Path) -> dict[str, str]:
    """Function name -> source, for every function (and method) in the mutated file."""
    text = path.read_text()
    return {node.name: ast.get_source_segment(text, node) for node in ast.walk(ast.parse(text))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}


def diff(mutant: str, funcs: dict[str, str]) -> str:
    name = mutant.rsplit(".", 1)[-1]
    orig = funcs.get(name.rsplit("__mutmut_", 1)[0] + "__mutmut_orig", "")
    new = funcs.get(name, "")
    lines = difflib.unified_diff(orig.splitlines()[1:], new.splitlines()[1:], lineterm="", n=0)
    return "\n".join(l for l in lines if l[:1] in "+-" and not l.startswith(("+++", "---")))


for item in sys.argv[2:]:
    module, dir_, globs = item.split("=", 2)
    patterns = globs.split()
    status = {}
    for line in Path(dir_, "results.txt").read_text().splitlines():
        name, sep, state = line.strip().rpartition(": ")
        if sep and (not patterns or any(fnmatch.fnmatch(name, p) for p in patterns)):
            status[name] = state
    funcs = functions(Path(dir_, "mutants", module))
    explained = equivalent.get(module, {})
    count = lambda s: sum(1 for v in status.values() if v == s)  # noqa: E731
    total, killed, timeout = len(status), count("killed"), count("timeout")
    survivors = sorted(n for n, s in status.items() if s not in ("killed", "timeout"))
    n_equiv = sum(1 for n in survivors if n in explained)
    summary[module] = {
        "mutated": globs or "whole module",
        "total": total,
        "killed": killed,
        "survived": count("survived"),
        "timeout": timeout,
        "other": {s: count(s) for s in sorted(set(status.values())) if s not in ("killed", "survived", "timeout")},
        "equivalent": n_equiv,
        "raw_pct": round(100.0 * (killed + timeout) / total, 1) if total else None,
        "adjusted_pct": round(100.0 * (killed + timeout) / (total - n_equiv), 1) if total - n_equiv else None,
        "survivors": [{"mutant": n, "status": status[n], "diff": diff(n, funcs), "equivalent": explained.get(n)}
                      for n in survivors],
    }
summary_path.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
lines = ["| module | mutants | killed | survived | timeout | equivalent | raw % | adjusted % |",
         "|---|---:|---:|---:|---:|---:|---:|---:|"]
for module, s in sorted(summary.items()):
    if "raw_pct" not in s:
        continue
    name = f"`{module}`" + (" (fold_in, recommend_new)" if s["mutated"] != "whole module" else "")
    lines.append(f"| {name} | {s['total']} | {s['killed']} | {s['survived']} | {s['timeout']} | {s['equivalent']} "
                 f"| {s['raw_pct']} | {s['adjusted_pct']} |")
real = [s for s in summary.values() if "raw_pct" in s]
if real:
    t = sum(s["total"] for s in real)
    d = sum(s["killed"] + s["timeout"] for s in real)
    e = sum(s["equivalent"] for s in real)
    lines.append(f"| **all** | {t} | {sum(s['killed'] for s in real)} | {sum(s['survived'] for s in real)} | "
                 f"{sum(s['timeout'] for s in real)} | {e} | {100.0 * d / t:.1f} | {100.0 * d / (t - e):.1f} |")
unexplained = [(m, v["mutant"]) for m, s in summary.items() for v in s.get("survivors", []) if not v.get("equivalent")]
(out / "mutation.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
print(f"{len(unexplained)} survivors neither killed nor explained", file=sys.stderr)
PYEOF
