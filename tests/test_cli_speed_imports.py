"""The CLI does not import what a command does not use (issue 9, finding 8).

`import torch` alone costs seconds and ~200 MB; `--help`, `--version`, `data describe`
and `recommend` from a saved model (mf and ease) must not pay for it, nor for implicit,
optuna, scikit-learn or matplotlib. Each case runs in a fresh interpreter and reads
`sys.modules` after the command has run (no timings are asserted).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("torch", "implicit", "optuna", "sklearn", "matplotlib")
SCRIPT = Path(sys.executable).parent / "movierec"

#: runs `movierec ARGS...` in this interpreter, then prints the heavy modules it loaded
PROBE = """
import json, sys
heavy = {heavy!r}
args = json.loads(sys.argv[1])
if args is None:
    import movierec.cli  # import only
    code = 0
else:
    from movierec.cli import main
    sys.argv = ["movierec", *args]
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code or 0
loaded = sorted(m for m in heavy if m in sys.modules)
print("\\nPROBE " + json.dumps({{"code": code, "loaded": loaded}}))
""".format(heavy=HEAVY)


def probe(args: list[str] | None) -> tuple[dict, str]:
    """Run the CLI with `args` (None: only import it) in a fresh interpreter."""
    proc = subprocess.run([sys.executable, "-c", PROBE, json.dumps(args)], capture_output=True, text=True,
                          env={**os.environ, "MOVIEREC_DEBUG": "1"}, timeout=300)
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("PROBE ")]
    assert line, f"probe did not finish:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return json.loads(line[-1][len("PROBE "):]), proc.stdout


@pytest.fixture(scope="module")
def bundles(tmp_path_factory, ml100k):
    """Saved model folders of mf (a torch model) and ease, trained on ML-100K."""
    from movierec.artifacts import save_bundle
    from movierec.artifacts.train import train

    root = tmp_path_factory.mktemp("speed_bundles")
    paths = {}
    for name, params in (("mf", {"epochs": 2, "patience": 0}), ("ease", {})):
        paths[name] = save_bundle(train(name, ml100k, params=params), root / name)
    return paths


def test_import_cli_loads_nothing_heavy():
    result, _ = probe(None)
    assert result == {"code": 0, "loaded": []}


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["recommend", "--help"], ["models", "--help"]])
def test_help_and_version_load_nothing_heavy(args):
    result, out = probe(args)
    assert result["code"] == 0, out
    assert result["loaded"] == []


def test_data_describe_loads_nothing_heavy():
    result, out = probe(["data", "describe", "ml-100k", "--json"])
    assert result["code"] == 0, out
    assert json.loads(out.split("\nPROBE ")[0].strip().splitlines()[-1])["n_ratings"] == 100_000
    assert result["loaded"] == []


@pytest.mark.parametrize("model", ["mf", "ease"])
def test_recommend_from_saved_model_loads_nothing_heavy(bundles, model):
    result, out = probe(["recommend", "--model-dir", str(bundles[model]), "--user", "42", "-k", "5", "--json"])
    assert result["code"] == 0, out
    doc = json.loads(out.split("\nPROBE ")[0].strip().splitlines()[-1])
    assert len(doc["items"]) == 5 and all(row["title"] for row in doc["items"])
    assert result["loaded"] == []


def test_loaded_mf_answers_like_the_trained_one_without_torch(bundles, ml100k):
    """The torch-free inference path of mf gives the trained model's scores: recommend,
    predict and fold-in from the saved folder equal the in-memory model's."""
    code = f"""
import json, sys
import numpy as np
from movierec.artifacts import load_bundle
m = load_bundle({str(bundles['mf'])!r}).model
rec = m.recommend([42], k=10)
new = m.recommend_new([50, 172, 181], k=5)
print(json.dumps({{"items": rec.items_of(0).tolist(), "pred": m.predict([42], [50]).tolist(),
                  "new": new.items_of(0).tolist(), "torch": "torch" in sys.modules}}))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(proc.stdout.strip().splitlines()[-1])
    assert doc["torch"] is False
    from movierec.artifacts import load_bundle

    model = load_bundle(bundles["mf"]).model  # the same state, in this process
    assert doc["items"] == model.recommend([42], k=10).items_of(0).tolist()
    assert doc["pred"] == pytest.approx(model.predict([42], [50]).tolist(), abs=1e-6)
    assert doc["new"] == model.recommend_new([50, 172, 181], k=5).items_of(0).tolist()


def test_model_modules_other_than_neumf_import_without_torch():
    """Every model module but neumf (whose inference runs its network) loads without torch."""
    code = """
import importlib, pkgutil, sys
import movierec.models as pkg
skip = {"movierec.models.neumf", "movierec.models._nets", "movierec.models._two_tower_net"}
for info in pkgutil.iter_modules(pkg.__path__, "movierec.models."):
    if info.name not in skip:
        importlib.import_module(info.name)
print(sorted(m for m in ("torch", "implicit", "optuna", "sklearn", "matplotlib") if m in sys.modules))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == "[]"


def test_console_script_recommend_and_version(bundles):
    """The installed `movierec` script: --version and a recommendation from a saved ease model."""
    assert SCRIPT.is_file(), f"console script missing next to {sys.executable}"
    version = subprocess.run([str(SCRIPT), "--version"], capture_output=True, text=True, timeout=120)
    import movierec

    assert version.returncode == 0 and version.stdout.strip() == f"movierec {movierec.__version__}"
    rec = subprocess.run([str(SCRIPT), "recommend", "--model-dir", str(bundles["ease"]), "--user", "42", "--json"],
                         capture_output=True, text=True, timeout=120)
    assert rec.returncode == 0, rec.stderr
    assert len(json.loads(rec.stdout)["items"]) == 10
