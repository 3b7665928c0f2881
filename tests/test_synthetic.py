"""Synthetic planted-taste ratings: exact counts, no duplicates, skew, floor, file formats, CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from movierec.cli import app
from movierec.data import load_ratings
from movierec.data.movielens import get_spec, read_ratings
from movierec.data.synthetic import _allocate_counts, generate_ratings, read_meta, write_synthetic
from movierec.errors import ConfigError

SMALL = dict(n_users=300, n_items=400, n_ratings=20_000)


@pytest.fixture(scope="module")
def small():
    return generate_ratings(**SMALL, seed=7)


def test_deterministic_for_a_seed(small):
    frame, meta = small
    again, meta_again = generate_ratings(**SMALL, seed=7)
    pd.testing.assert_frame_equal(frame, again)
    assert meta == meta_again
    other, _ = generate_ratings(**SMALL, seed=8)
    assert not frame.equals(other)


def test_counts_exact_and_no_duplicates(small):
    frame, meta = small
    assert len(frame) == SMALL["n_ratings"] == meta["n_ratings"]
    assert not frame.duplicated(["userId", "movieId"]).any()
    assert sorted(frame["userId"].unique()) == list(range(1, SMALL["n_users"] + 1))
    assert frame["movieId"].between(1, SMALL["n_items"]).all()
    assert meta["n_items_rated"] == frame["movieId"].nunique()
    assert list(frame.columns) == ["userId", "movieId", "rating", "timestamp"]


def test_half_star_scale_and_timestamps(small):
    frame, meta = small
    r = frame["rating"].to_numpy()
    assert r.min() >= 0.5 and r.max() <= 5.0
    assert np.all(r * 2 == np.round(r * 2))
    assert len(np.unique(r)) == 10
    # rows sorted by user, then increasing time; all inside the span
    assert frame["userId"].is_monotonic_increasing
    assert (frame.groupby("userId")["timestamp"].diff().dropna() >= 0).all()
    params = meta["params"]
    assert frame["timestamp"].between(params["start"], params["end"]).all()


def test_integer_scale():
    frame, meta = generate_ratings(50, 60, 1000, seed=1, scale="int")
    assert set(np.unique(frame["rating"])) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    assert meta["rating_scale"] == [1.0, 5.0]


def test_zipf_popularity_and_skewed_activity():
    frame, _ = generate_ratings(1000, 2000, 50_000, seed=0)
    counts = np.sort(frame["movieId"].value_counts().to_numpy())[::-1]
    top10 = counts[:200].sum() / counts.sum()
    assert top10 > 0.5  # Zipf(1): the top 10% of movies take most ratings
    flat, _ = generate_ratings(1000, 2000, 50_000, seed=0, zipf=0.0)
    flat_counts = np.sort(flat["movieId"].value_counts().to_numpy())[::-1]
    assert flat_counts[:200].sum() / flat_counts.sum() < 0.2
    per_user = frame["userId"].value_counts().to_numpy()
    assert per_user.max() > 5 * np.median(per_user)  # lognormal activity: a heavy tail


def test_heavy_users_near_the_whole_catalog():
    frame, meta = generate_ratings(20, 30, 550, seed=2)  # most users rate most movies
    assert len(frame) == 550
    assert not frame.duplicated(["userId", "movieId"]).any()
    assert frame.groupby("userId").size().max() <= 30
    full, _ = generate_ratings(4, 5, 20, seed=0)  # every cell
    assert len(full) == 20 and not full.duplicated(["userId", "movieId"]).any()


def test_allocate_counts_sums_and_caps():
    rng = np.random.default_rng(0)
    for total, n, cap in [(1000, 100, 50), (5000, 100, 50), (100, 100, 3), (123_457, 1000, 10_000)]:
        counts = _allocate_counts(rng.lognormal(0, 2, n), total, cap)
        assert counts.sum() == total and counts.min() >= 1 and counts.max() <= cap


def test_floor_recorded_and_close_to_noise(small):
    _, meta = small
    assert meta["noise"] == 0.5
    assert 0.45 < meta["rmse_floor"] < 0.6
    assert meta["params"]["seed"] == 7 and meta["params"]["n_items"] == SMALL["n_items"]
    _, loud = generate_ratings(**SMALL, seed=7, noise=1.0)
    assert 0.85 < loud["rmse_floor"] < 1.1
    _, silent = generate_ratings(**SMALL, seed=7, noise=0.0)
    assert silent["rmse_floor"] == 0.0


def test_written_csv_is_movielens_format(tmp_path, small):
    path = tmp_path / "ratings.csv"
    meta = write_synthetic(path, **SMALL, seed=7)
    with open(path) as fh:
        assert fh.readline() == "userId,movieId,rating,timestamp\n"
        assert len(fh.readline().split(",")) == 4
    assert read_meta(path) == json.loads((tmp_path / "ratings.csv.meta.json").read_text())
    assert meta["rmse_floor"] == small[1]["rmse_floor"] and meta["format"] == "csv"
    ds = load_ratings(path)
    assert (ds.n_ratings, ds.n_users, ds.n_items) == (SMALL["n_ratings"], SMALL["n_users"], meta["n_items_rated"])
    # the ml-25m reader accepts it, and the values are the in-memory ones
    table = read_ratings(get_spec("ml-25m"), path)
    frame = small[0]
    np.testing.assert_array_equal(table.user, frame["userId"])
    np.testing.assert_array_equal(table.item, frame["movieId"])
    np.testing.assert_array_equal(table.rating, frame["rating"])
    np.testing.assert_array_equal(table.timestamp, frame["timestamp"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ratings.csv", "ratings.csv.meta.json"]  # no temp left


def test_written_parquet_and_integer_csv(tmp_path):
    path = tmp_path / "sub" / "ratings.parquet"
    write_synthetic(path, 40, 50, 600, seed=3)
    frame = pd.read_parquet(path)
    assert list(frame.columns) == ["userId", "movieId", "rating", "timestamp"] and len(frame) == 600
    assert load_ratings(path).n_ratings == 600
    ipath = tmp_path / "int.csv"
    write_synthetic(ipath, 40, 50, 600, seed=3, scale="int")
    body = ipath.read_text().splitlines()[1:]
    assert all(line.split(",")[2] in {"1", "2", "3", "4", "5"} for line in body)
    assert read_meta(ipath)["params"]["scale"] == "int"


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        (dict(n_users=0, n_items=5, n_ratings=5), "positive"),
        (dict(n_users=5, n_items=-1, n_ratings=5), "positive"),
        (dict(n_users=5, n_items=5, n_ratings=0), "positive"),
        (dict(n_users=5, n_items=5, n_ratings=26), "at most 25"),
        (dict(n_users=10, n_items=5, n_ratings=5), "at least"),
        (dict(n_users=5, n_items=5, n_ratings=10, noise=-0.1), "Noise"),
        (dict(n_users=5, n_items=5, n_ratings=10, dim=0), "dimension"),
        (dict(n_users=5, n_items=5, n_ratings=10, scale="stars"), "scale"),
        (dict(n_users=5, n_items=5, n_ratings=10, colour="red"), "option"),
    ],
)
def test_impossible_parameters_raise_config_error(tmp_path, kwargs, fragment):
    with pytest.raises(ConfigError, match=fragment):
        generate_ratings(**kwargs)
    with pytest.raises(ConfigError):
        write_synthetic(tmp_path / "x.csv", **kwargs)
    assert not (tmp_path / "x.csv").exists()


def test_cli_synth_writes_file(tmp_path):
    path = tmp_path / "r.csv"
    result = CliRunner().invoke(
        app, ["data", "synth", "--users", "50", "--items", "80", "--ratings", "1500", "--seed", "4",
              "--noise", "0.3", "--dim", "4", "--out", str(path), "--json"]
    )
    assert result.exit_code == 0, result.output
    meta = json.loads(result.stdout)
    assert meta["n_ratings"] == 1500 and meta["params"]["dim"] == 4 and meta["params"]["noise"] == 0.3
    assert load_ratings(path).n_ratings == 1500
    assert read_meta(path)["rmse_floor"] == meta["rmse_floor"]


def test_cli_bad_parameters_exit_nonzero_with_one_sentence(tmp_path):
    result = CliRunner().invoke(
        app, ["data", "synth", "--users", "10", "--items", "5", "--ratings", "100", "--out", str(tmp_path / "r.csv")]
    )
    assert result.exit_code != 0
    assert isinstance(result.exception, ConfigError)
    message = str(result.exception)
    assert "\n" not in message and message.endswith(".") and "at most 50" in message
    # through the console entry point: one line on stderr, exit code 1, no traceback
    proc = subprocess.run(
        [sys.executable, "-c", "from movierec.cli import main; main()", "data", "synth", "--users", "-3",
         "--items", "5", "--ratings", "10", "--out", str(tmp_path / "r.csv")],
        capture_output=True, text=True,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0 and "positive" in proc.stderr and "Traceback" not in proc.stderr
    assert not Path(tmp_path / "r.csv").exists()
