"""The layers of docs/architecture.md hold, and nothing imports in a circle.

`.importlinter` states the layers (cli -> testing -> artifacts -> experiments/reporting
-> evaluation -> models/training -> ranking -> data -> config/errors); `lint-imports`
checks them. Import cycles are found with grimp (import-linter's import graph), between
top-level subpackages and between single modules. The bite tests plant a violation in
a copy of the package and run the same checks on it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "movierec"

CYCLES_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import grimp

    def strongly_connected(nodes, edges):
        # iterative Tarjan: the groups of nodes that reach each other
        index, low, on, stack, out, counter = {}, {}, set(), [], [], 0
        for root in nodes:
            if root in index:
                continue
            work = [(root, iter(sorted(edges.get(root, ()))))]
            index[root] = low[root] = counter; counter += 1; stack.append(root); on.add(root)
            while work:
                v, it = work[-1]
                w = next(it, None)
                if w is not None:
                    if w not in index:
                        index[w] = low[w] = counter; counter += 1; stack.append(w); on.add(w)
                        work.append((w, iter(sorted(edges.get(w, ())))))
                    elif w in on:
                        low[v] = min(low[v], index[w])
                    continue
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    group = []
                    while True:
                        w = stack.pop(); on.discard(w); group.append(w)
                        if w == v:
                            break
                    if len(group) > 1:
                        out.append(sorted(group))
        return out

    graph = grimp.build_graph("movierec")
    modules = sorted(graph.modules)
    edges = {m: set(graph.find_modules_directly_imported_by(m)) for m in modules}
    top = lambda m: ".".join(m.split(".")[:2])
    packages = {}
    for a, targets in edges.items():
        for b in targets:
            if top(a) != top(b):
                packages.setdefault(top(a), set()).add(top(b))
    print(json.dumps({
        "file": __import__("movierec").__file__,
        "modules": strongly_connected(modules, edges),
        "packages": strongly_connected(sorted({top(m) for m in modules}), packages),
    }))
    """
)


def _lint_imports() -> list[str]:
    exe = Path(sys.executable).parent / "lint-imports"
    return [str(exe)] if exe.exists() else [shutil.which("lint-imports") or "lint-imports"]


def _run(cmd: list[str], src_root: Path | None = None) -> subprocess.CompletedProcess:
    """Run `cmd` from the project root, importing movierec from `src_root` when given."""
    env = dict(os.environ)
    if src_root is not None:
        env["PYTHONPATH"] = str(src_root) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def _cycles(src_root: Path | None = None) -> dict:
    import json

    proc = _run([sys.executable, "-c", CYCLES_SCRIPT], src_root)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture()
def package_copy(tmp_path) -> Path:
    """A copy of src/movierec under tmp_path/src, to plant violations in."""
    shutil.copytree(SRC, tmp_path / "src" / "movierec", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path / "src"


def test_layers_contract_is_kept():
    proc = _run(_lint_imports() + ["--config", str(ROOT / ".importlinter"), "--no-cache"])
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]


def test_no_import_cycles_between_subpackages():
    found = _cycles()
    assert found["file"].startswith(str(SRC)), found["file"]
    assert found["packages"] == [], f"top-level subpackages import each other: {found['packages']}"


def test_no_import_cycles_between_modules():
    found = _cycles()
    assert found["modules"] == [], f"modules that import each other in a circle: {found['modules']}"


def test_a_planted_upward_import_breaks_the_layers(package_copy):
    """models importing the CLI (a lower layer importing a higher one) fails lint-imports."""
    base = package_copy / "movierec" / "models" / "base.py"
    base.write_text(base.read_text() + "\n\ndef _planted():\n    import movierec.cli  # noqa: F401\n")
    proc = _run(_lint_imports() + ["--config", str(ROOT / ".importlinter"), "--no-cache"], package_copy)
    assert proc.returncode != 0
    assert "movierec.models is not allowed to import movierec.cli" in proc.stdout, proc.stdout[-3000:]


def test_an_unlisted_top_level_module_breaks_the_layers(package_copy):
    """A new top-level module outside every layer fails (the contract is exhaustive)."""
    (package_copy / "movierec" / "stray.py").write_text('"""Not in any layer."""\n')
    proc = _run(_lint_imports() + ["--config", str(ROOT / ".importlinter"), "--no-cache"], package_copy)
    assert proc.returncode != 0
    assert "movierec.stray" in proc.stdout + proc.stderr, proc.stdout[-3000:]


def test_a_planted_cycle_is_found(package_copy):
    """data importing ranking back (ranking imports nothing of data, so plant both ways)."""
    data_init = package_copy / "movierec" / "data" / "readers.py"
    data_init.write_text(data_init.read_text() + "\n\ndef _planted():\n    import movierec.ranking  # noqa: F401\n")
    ranking = package_copy / "movierec" / "ranking.py"
    ranking.write_text(ranking.read_text() + "\n\ndef _planted():\n    import movierec.data.readers  # noqa: F401\n")
    found = _cycles(package_copy)
    assert found["file"].startswith(str(package_copy)), found["file"]
    assert ["movierec.data", "movierec.ranking"] in found["packages"]
    assert any({"movierec.data.readers", "movierec.ranking"} <= set(group) for group in found["modules"])
