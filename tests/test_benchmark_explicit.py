"""`benchmarks/explicit_ml100k.py` on two folds, mf against Surprise SVD only: every fit of the
head-to-head timed in wall and CPU seconds, the medians and per-fold ratios it reports, the
load averages, and the tuned mf config scored beside the default.

The script runs as a user runs it (a subprocess) into a temporary results file; timings are
never asserted, only that they were measured and summarised consistently.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("surprise")

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "explicit_ml100k.py"
FOLDS = ["u1", "u2"]


@pytest.fixture(scope="module")
def figures(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("explicit") / "explicit.json"
    cmd = [sys.executable, str(SCRIPT), "--folds", ",".join(FOLDS), "--no-blend", "--svd-only", "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(out.read_text())["figures"]


def test_head_to_head_rows_are_timed_in_wall_and_cpu_seconds(figures):
    results = figures["results"]
    assert set(results) == {"surprise SVD", "mf", "global-mean", "bias", "item-knn"}
    for name in ("surprise SVD", "mf"):
        for fold in FOLDS:
            row = results[name][fold]
            assert row["fit_s"] > 0 and row["cpu_s"] > 0 and 0.5 < row["rmse"] < 1.2
    for fold in FOLDS:
        tuned = figures["tuned"]["mf"]["per_fold"][fold]
        assert tuned["fit_s"] > 0 and tuned["cpu_s"] > 0 and 0.5 < tuned["rmse"] < 1.2


def test_head_to_head_is_medians_and_per_fold_ratios(figures):
    svd = figures["results"]["surprise SVD"]
    for label, rows in (("mf", figures["results"]["mf"]), ("mf (tuned config)", figures["tuned"]["mf"]["per_fold"])):
        versus = figures["head_to_head"][label]
        assert versus["folds"] == FOLDS
        assert versus["rmse"] == pytest.approx(np.mean([rows[f]["rmse"] for f in FOLDS]))
        assert versus["svd_rmse"] == pytest.approx(np.mean([svd[f]["rmse"] for f in FOLDS]))
        for key in ("fit_s", "cpu_s"):
            assert versus[f"{key}_median"] == pytest.approx(np.median([rows[f][key] for f in FOLDS]))
            assert versus[f"svd_{key}_median"] == pytest.approx(np.median([svd[f][key] for f in FOLDS]))
            # the median of the per-fold ratios (each fold's pair measured back to back)
            ratios = [rows[f][key] / svd[f][key] for f in FOLDS]
            assert versus[f"{key}_ratio_median"] == pytest.approx(np.median(ratios))


def test_loads_and_the_tuned_config_are_recorded(figures):
    loads = figures["load_average"]
    assert set(loads) == {"start", "folds", "end"} and set(loads["folds"]) == set(FOLDS)
    tuned = figures["tuned"]["mf"]
    assert tuned["config"].endswith("ml100k-folds/mf.json") and tuned["params"]["patience"] == 0
    assert tuned["cpu_s_median"] > 0 and figures["summary"]["mf"]["cpu_s_median"] > 0
