"""`benchmarks/scale.py` end to end on its tiny size: rows, resume, refusal rows, the rendered table.

The script runs as a user runs it (a subprocess per call, each model in its own child process
and a real `movierec serve`), into a temporary results file and work folder. Timings are
never asserted, only that they were measured.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "scale.py"
_spec = importlib.util.spec_from_file_location("_bench_render_scale", ROOT / "benchmarks" / "render.py")
render = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(render)


def run_scale(tmp: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(SCRIPT), "--size", "tiny", "--workdir", str(tmp / "work"),
           "--results", str(tmp / "scale.json"), "--requests", "20", "--memory-limit", "3G", *args]
    full_env = {k: v for k, v in os.environ.items() if k != "MOVIEREC_MEMORY_LIMIT"}
    full_env.update(env or {})
    proc = subprocess.run(cmd, capture_output=True, text=True, env=full_env, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def rows(tmp: Path) -> dict:
    return json.loads((tmp / "scale.json").read_text())["figures"]["sizes"]["tiny"]["rows"]


@pytest.fixture(scope="module")
def measured(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    tmp = tmp_path_factory.mktemp("scale")
    return tmp, run_scale(tmp, "--models", "pop,als")


def test_rows_hold_every_measurement(measured):
    tmp, proc = measured
    doc = json.loads((tmp / "scale.json").read_text())
    entry = doc["figures"]["sizes"]["tiny"]
    assert (entry["users"], entry["items"], entry["ratings"]) == (1_000, 300, 20_000)
    assert 0 < entry["rmse_floor"] < 1 and "pop" in entry["registered"]
    assert set(entry["rows"]) == {"pop", "als"}
    for name, row in entry["rows"].items():
        assert row["status"] == "ok", row
        assert set(row["seconds"]) == {"load", "split", "fit", "eval", "save"}
        assert all(v >= 0 for v in row["seconds"].values())
        assert row["peak_rss"]["child"] > 0 and row["peak_rss"]["server"] > 0
        assert row["peak_rss"]["fit"] >= row["peak_rss"]["load"] > 0
        assert row["bundle_bytes"] > 0
        assert row["serve"]["requests"] == 20 and 0 < row["serve"]["p50_ms"] <= row["serve"]["p99_ms"]
        assert row["split"]["train"] + row["split"]["test"] == 20_000
        assert row["quality"]["evaluated_users"] == row["split"]["test_users_with_history"]
        assert "ndcg@10" in row["quality"] and "hr@10" in row["quality"]
        assert "rmse" not in row["quality"]  # pop and als rank; they predict no ratings
        assert row["memory_limit"] == 3 * 2**30 and row["movierec_memory_limit"] == "3G"
        assert row["machine"]["cpu_count"] and len(row["loadavg_start"]) == 3 and row["command"]
    assert "noise-only RMSE floor" in proc.stdout


def test_a_second_run_skips_measured_models(measured):
    tmp, _ = measured
    before = rows(tmp)
    proc = run_scale(tmp, "--models", "pop,als")
    assert proc.stdout.count("already measured") == 2
    assert rows(tmp) == before


def test_a_model_refused_by_check_fits_is_a_row_with_its_sentence(measured):
    tmp, _ = measured
    before = rows(tmp)
    run_scale(tmp, "--models", "ease", env={"MOVIEREC_MEMORY_LIMIT": "1000"})
    after = rows(tmp)
    ease = after["ease"]
    assert ease["status"] == "refused"
    assert ease["message"].startswith("ease needs ") and "1000 B" in ease["message"]
    assert "fit" not in ease["seconds"] and "serve" not in ease  # refused before fitting
    assert {k: after[k] for k in before} == before

    table = render.render_scale(render.Results(tmp))
    assert "**TINY**" in table and f"refused: {ease['message']}" in table
    assert "| als |" in table and "| pop |" in table
    assert "**Not yet run**: 1M, 5M, 25M." in table


def test_fresh_measures_a_model_again(measured):
    tmp, _ = measured
    before = rows(tmp)
    run_scale(tmp, "--models", "pop", "--fresh")
    after = rows(tmp)
    assert after["pop"]["status"] == "ok" and after["pop"]["started"] != before["pop"]["started"]
    assert after["als"] == before["als"]


def test_another_protocol_is_a_table_of_its_own(measured):
    tmp, _ = measured
    temporal = rows(tmp)
    run_scale(tmp, "--models", "pop", "--protocol", "leave-last")
    sizes = json.loads((tmp / "scale.json").read_text())["figures"]["sizes"]
    assert sizes["tiny"]["rows"] == temporal
    pop = sizes["tiny leave-last"]["rows"]["pop"]
    assert pop["status"] == "ok" and pop["split"]["protocol"] == "leave-last"
    # every user with two ratings or more keeps one to test: far more users ranked than by a global cut
    assert pop["quality"]["evaluated_users"] > 10 * max(temporal["pop"]["quality"]["evaluated_users"], 1)
    assert "**TINY LEAVE-LAST**" in render.render_scale(render.Results(tmp))


def test_unknown_model_is_one_sentence(tmp_path):
    proc = subprocess.run([sys.executable, str(SCRIPT), "--size", "tiny", "--models", "nope",
                           "--workdir", str(tmp_path), "--results", str(tmp_path / "s.json")],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 1
    assert proc.stderr.strip().startswith("Unknown model(s) nope; choose from:")
    assert not (tmp_path / "s.json").exists()


def test_param_overrides_reach_the_fit_and_the_table(tmp_path):
    """`--param MODEL:KEY=VALUE` is what the child fits with (3 fixed epochs, not mf's
    early-stopped default run), recorded in the row with the epochs run, shown in the table."""
    run_scale(tmp_path, "--models", "mf", "--param", "mf:epochs=3", "--param", "mf:patience=0")
    mf = rows(tmp_path)["mf"]
    assert mf["status"] == "ok", mf
    assert mf["params"] == {"epochs": 3, "patience": 0}
    assert mf["training"]["epochs"] == 3 and mf["training"]["stopped_early"] is False
    assert mf["training"]["epoch_s"] > 0
    assert "| mf (epochs=3, patience=0; 3 epochs of " in render.render_scale(render.Results(tmp_path))


def test_size_params_are_the_default_overrides_and_param_wins():
    scale = importlib.util.module_from_spec(spec := importlib.util.spec_from_file_location("_bench_scale", SCRIPT))
    spec.loader.exec_module(scale)
    assert scale.model_overrides("two-tower", "25m", {}) == scale.SIZE_PARAMS["25m"]["two-tower"]
    assert scale.model_overrides("two-tower", "25m", {"two-tower": {"epochs": 5}})["epochs"] == 5
    assert scale.model_overrides("two-tower", "1m", {}) == {}
    assert scale.parse_overrides(["mf:lr=0.01", "mf:refit=false"]) == {"mf": {"lr": 0.01, "refit": False}}


@pytest.mark.parametrize("param, sentence", [
    ("epochs=3", "--param takes MODEL:KEY=VALUE (e.g. two-tower:epochs=3), got 'epochs=3'."),
    ("als:epochs=3", "--param names als, not among the models measured (pop)."),
    ("pop:nope=1", "nope"),
])
def test_a_bad_param_is_one_sentence_before_anything_is_written(tmp_path, param, sentence):
    proc = subprocess.run([sys.executable, str(SCRIPT), "--size", "tiny", "--models", "pop", "--param", param,
                           "--workdir", str(tmp_path / "work"), "--results", str(tmp_path / "s.json")],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 1
    assert len(proc.stderr.strip().splitlines()) == 1 and sentence in proc.stderr
    assert not (tmp_path / "s.json").exists() and not (tmp_path / "work").exists()


def test_a_row_measured_under_load_is_marked_on_its_own(measured, tmp_path):
    """One row whose 1-minute load exceeded the CPU count gets a dagger and the note; the
    quiet rows do not; when every row was loaded, the whole table says so."""
    tmp, _ = measured
    doc = json.loads((tmp / "scale.json").read_text())
    tiny = doc["figures"]["sizes"]["tiny"]["rows"]
    for row in tiny.values():
        row["loadavg_start"], row["loadavg_end"] = [0.5, 0.5, 0.5], [1.0, 1.0, 1.0]
    tiny["als"]["loadavg_end"] = [9.0, 5.0, 3.0]
    (tmp_path / "scale.json").write_text(json.dumps(doc))
    table = render.render_scale(render.Results(tmp_path))
    assert "| als † |" in table and "| pop |" in table
    assert "† **Measured under load**" in table and "the others ran on a quiet machine" in table
    for row in tiny.values():
        row["loadavg_start"] = [9.0, 5.0, 3.0]
    (tmp_path / "scale.json").write_text(json.dumps(doc))
    table = render.render_scale(render.Results(tmp_path))
    assert "†" not in table and "**Measured under load** (other jobs running)" in table
