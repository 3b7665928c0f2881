"""`benchmarks/mf_throughput.py` end to end on a small synthetic file: every epoch and sweep
measured, the counts it was asked for, the same data for both models, the results envelope.

The script runs as a user runs it (a subprocess), into a temporary results file. Timings are
never asserted, only that they were measured and that each rate is the file's ratings over
its own seconds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from movierec.data.synthetic import write_synthetic

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "mf_throughput.py"
N_RATINGS = 6_000


@pytest.fixture(scope="module")
def measured(tmp_path_factory) -> tuple[dict, str]:
    tmp = tmp_path_factory.mktemp("throughput")
    data = tmp / "ratings.csv"
    write_synthetic(data, n_users=150, n_items=80, n_ratings=N_RATINGS, seed=3)
    out = tmp / "mf_throughput.json"
    cmd = [sys.executable, str(SCRIPT), "--file", str(data), "--epochs", "2", "--als-iterations", "3",
           "--threads", "2", "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=ROOT, env=dict(os.environ))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(out.read_text()), proc.stdout + proc.stderr


def test_every_epoch_and_sweep_is_measured(measured):
    doc, _ = measured
    f = doc["figures"]
    assert (f["n_ratings"], f["n_users"], f["n_items"]) == (N_RATINGS, 150, 80)
    assert [e["epoch"] for e in f["mf"]["epochs"]] == [1, 2]
    assert f["mf"]["params"]["epochs"] == 2 and f["mf"]["params"]["patience"] == 0
    assert all(e["ratings_per_s"] > 0 and e["seconds"] > 0 for e in f["mf"]["epochs"])
    assert [s["iteration"] for s in f["als"]["iterations"]] == [1, 2, 3]
    assert f["als"]["params"]["iterations"] == 3
    for sweep in f["als"]["iterations"]:
        # a sweep's rate is the file's ratings over that sweep's own seconds
        assert sweep["ratings_per_s"] == pytest.approx(N_RATINGS / sweep["seconds"], rel=1e-9)


def test_headline_is_the_median_after_the_first(measured):
    doc, _ = measured
    f = doc["figures"]
    mf_rates = [e["ratings_per_s"] for e in f["mf"]["epochs"]]
    als_rates = sorted(s["ratings_per_s"] for s in f["als"]["iterations"][1:])
    assert f["mf"]["ratings_per_s"] == pytest.approx(mf_rates[1])
    assert f["als"]["ratings_per_s"] == pytest.approx((als_rates[0] + als_rates[1]) / 2)
    assert f["als_over_mf"] == pytest.approx(f["als"]["ratings_per_s"] / f["mf"]["ratings_per_s"])


def test_threads_loads_and_command_are_recorded(measured):
    doc, printed = measured
    f = doc["figures"]
    # the threads each fit really trained on: torch's for mf, implicit's for ALS
    assert f["threads"] == f["mf"]["threads"] == f["als"]["threads"] == 2
    for when in ("start", "end"):
        assert f["load_average"][when] is None or len(f["load_average"][when]) == 3
    assert doc["benchmark"] == "mf_throughput" and "benchmarks/mf_throughput.py" in doc["command"]
    assert "--als-iterations 3" in doc["command"]
    assert "| mf (2 epochs) | 2 |" in printed and "| als (3 sweeps) | 2 |" in printed


def test_a_missing_file_is_one_sentence(tmp_path):
    proc = subprocess.run([sys.executable, str(SCRIPT), "--file", str(tmp_path / "nope.csv")],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode != 0 and "is not a file" in proc.stderr and "Traceback" not in proc.stderr
