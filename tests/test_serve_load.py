"""benchmarks/serve_load.py runs end to end: servers up, wrk driven by the generated Lua
scripts, every endpoint measured with zero errors, the results file written (a one-second
smoke run; the figures themselves are measured by hand on a quiet machine)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_serve_load_smoke(ml100k, tmp_path):
    if shutil.which("wrk") is None:
        message = "wrk is not installed (`apt-get install wrk`; CI's .ci/run does)"
        if os.environ.get("CI"):  # CI installs wrk: a missing wrk is a failure there
            pytest.fail(message)
        pytest.skip(message)
    from movierec.artifacts import ModelRegistry
    from movierec.artifacts.train import train

    registry = tmp_path / "registry"
    ModelRegistry(registry).add(train("ease", ml100k, seed=0), "ease")
    out = tmp_path / "serve_load.json"
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "serve_load.py"), "--registry", str(registry),
                          "--duration", "1", "--warmup", "0", "--check", "20", "--out", str(out)],
                         capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    figures = json.loads(out.read_text())["figures"]
    runs = figures["endpoints"]
    assert {"ceiling", "ceiling_payload", "recommend", "recommend_cold", "similar"} <= set(runs)
    for name, r in runs.items():
        assert r["requests"] > 0 and r["rps"] > 0, name
        assert r["errors"] == {"non_2xx": 0, "socket": 0, "detail": {"connect": 0, "read": 0, "write": 0, "timeout": 0}}
        assert 0 < r["p50_ms"] <= r["p99_ms"] <= r["max_ms"], name
        assert r["ratio_to_ceiling"] > 0
    assert runs["ceiling"]["ratio_to_ceiling"] == 1.0  # the ceiling ran first and last: ratios use the mean
    assert runs["ceiling"]["rps"] == pytest.approx(sum(runs["ceiling"]["rps_runs"]) / 2, abs=0.1)
    assert runs["recommend"]["bytes_per_answer"] > 3 * runs["ceiling"]["bytes_per_answer"]  # real answers
    assert figures["model"]["name"] == "ease" and set(figures["targets"]) == {
        "recommend_throughput_ge_90pct_of_ceiling", "recommend_zero_errors", "recommend_p99_lt_5ms",
        "recommend_cold_ge_0.3_of_ceiling", "recommend_uncached_ge_0.5_of_ceiling", "recommend_uncached_p99_lt_5ms"}
    assert "load average" in run.stdout
