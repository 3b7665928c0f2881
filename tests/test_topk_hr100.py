"""benchmarks/topk.py's HR@100 figures: the loo "rated >= 4" column is what compare reports
with its default relevance threshold (issue 10's HR@100 target)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from movierec.experiments import CompareSpec, compare

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(BENCH))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCH))
    return module


def test_loo_hr100_rated4_equals_compare_with_threshold_4(tmp_path):
    topk = _load("topk")
    assert 100 in topk.KS
    result = topk.run_one("ml-100k", "loo", ["pop", "genre-pop"], trials=0, retune=False, root=tmp_path, seed=42,
                          log=lambda msg: None)
    rows = {r["model"]: r for r in result["table"]}
    liked = compare(CompareSpec(dataset="ml-100k", protocol="leave-last", holdout=1, models=["pop", "genre-pop"],
                                ks=[100], metrics=["hr"], relevance_threshold="auto", config_root=tmp_path))
    for name in ("pop", "genre-pop"):
        assert rows[name]["hr@100_rated4"] == pytest.approx(liked.results[name].summary["hr@100"])
        assert rows[name]["hr@100"] != pytest.approx(rows[name]["hr@100_rated4"])  # every-item relevance differs
    assert rows["pop"]["hr@100_rated4"] == pytest.approx(0.404, abs=0.001)  # issue 10's "measured today: pop .404"
    text = topk.markdown(result)
    assert "HR@100 (rated >= 4)" in text and f"{rows['pop']['hr@100_rated4']:.4f}" in text
