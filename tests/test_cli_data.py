"""`movierec data fetch` and `movierec data describe` through the Typer runner."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import mirror_dir
from movierec.cli import app
from movierec.data.fetch import is_cached
from movierec.errors import ConfigError, FetchError

runner = CliRunner()
MOVIEREC = Path(sys.executable).with_name("movierec")


def describe_json(*args: str) -> dict:
    result = runner.invoke(app, ["data", "describe", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_describe_ml100k_json():
    stats = describe_json("ml-100k")
    assert (stats["n_ratings"], stats["n_users"], stats["n_items"]) == (100_000, 943, 1682)
    assert stats["density"] == pytest.approx(100_000 / (943 * 1682))
    assert (stats["rating_min"], stats["rating_max"]) == (1, 5)
    assert sum(stats["rating_histogram"].values()) == 100_000
    assert stats["has_timestamps"] and stats["time_first"].startswith("1997")
    assert {"age", "gender", "occupation"} <= set(stats["user_features"])
    assert stats["n_genres"] == 18


def test_describe_plots(tmp_path):
    data = tmp_path / "r.csv"
    data.write_text("user,item,rating,timestamp\n" + "".join(f"{u},{i},{1 + (u * i) % 5},{86400 * (u + i)}\n"
                                                             for u in range(1, 9) for i in range(1, 12) if (u + i) % 3))
    result = runner.invoke(app, ["data", "describe", "--data", str(data), "--json", "--plots", str(tmp_path / "plots")])
    assert result.exit_code == 0, result.output
    stats = json.loads(result.stdout)
    pngs = sorted((tmp_path / "plots").glob("*.png"))
    assert len(pngs) == 3 and sorted(map(Path, stats["plots"])) == pngs
    for png in pngs:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 1000


def test_describe_table_output():
    result = runner.invoke(app, ["data", "describe", "ml-latest-small"])
    assert result.exit_code == 0, result.output
    assert "100,836" in result.stdout and "610" in result.stdout and "9,724" in result.stdout


def test_describe_user_file(tmp_path):
    path = tmp_path / "mine.tsv"
    path.write_text("who\twhat\tstars\n1\ta\t4\n2\ta\t2\n2\tb\t5\n")
    stats = describe_json("--data", str(path), "--user-col", "who", "--item-col", "what",
                          "--rating-col", "stars", "--rating-range", "1,5")
    assert (stats["n_ratings"], stats["n_users"], stats["n_items"]) == (3, 2, 2)
    assert stats["density"] == pytest.approx(0.75) and not stats["has_timestamps"]
    assert stats["name"] == "mine"


def test_describe_needs_exactly_one_source(tmp_path):
    result = runner.invoke(app, ["data", "describe"])
    assert result.exit_code != 0 and isinstance(result.exception, ConfigError)
    path = tmp_path / "r.csv"
    path.write_text("1,2,3\n")
    result = runner.invoke(app, ["data", "describe", "ml-100k", "--data", str(path)])
    assert result.exit_code != 0 and isinstance(result.exception, ConfigError)


def test_fetch_command(tmp_path):
    env = {"MOVIEREC_CACHE": str(tmp_path / "cache"), "MOVIEREC_MIRROR": str(mirror_dir())}
    result = runner.invoke(app, ["data", "fetch", "ml-latest-small"], env=env)
    assert result.exit_code == 0, result.output
    assert "ml-latest-small is ready in" in result.stdout
    assert is_cached("ml-latest-small", tmp_path / "cache")
    # cached: works without the mirror; --force fetches again (and fails without one)
    env["MOVIEREC_MIRROR"] = str(tmp_path / "empty")
    assert runner.invoke(app, ["data", "fetch", "ml-latest-small"], env=env).exit_code == 0
    forced = runner.invoke(app, ["data", "fetch", "ml-latest-small", "--force"], env=env)
    assert forced.exit_code != 0 and isinstance(forced.exception, FetchError)
    assert is_cached("ml-latest-small", tmp_path / "cache")


def test_fetch_command_file_url(tmp_path):
    env = {"MOVIEREC_CACHE": str(tmp_path / "cache"), "MOVIEREC_MIRROR": mirror_dir().resolve().as_uri()}
    result = runner.invoke(app, ["data", "fetch", "ml-100k"], env=env)
    assert result.exit_code == 0, result.output
    assert is_cached("ml-100k", tmp_path / "cache")


def test_console_script_describe_json(tmp_path):
    env = {**os.environ, "MOVIEREC_CACHE": str(tmp_path / "cache"), "MOVIEREC_MIRROR": str(mirror_dir())}
    proc = subprocess.run([str(MOVIEREC), "data", "describe", "ml-100k", "--json"], capture_output=True,
                          text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    stats = json.loads(proc.stdout)
    assert (stats["n_ratings"], stats["n_users"], stats["n_items"]) == (100_000, 943, 1682)
