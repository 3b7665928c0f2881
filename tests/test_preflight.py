"""A fit too big for the machine is refused before the data is fetched or read, where the
data's size is known without reading it: a MovieLens name's published counts, or a
synthetic file's `.meta.json` (`movierec.experiments.data.known_shape`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from movierec.data.movielens import DATASETS
from movierec.data.synthetic import write_synthetic
from movierec.errors import ResourceError
from movierec.experiments.data import check_fits_before_loading, known_shape
from movierec.models import create


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "movierec", *args], env={**os.environ, **env}, capture_output=True,
                          text=True, timeout=300)


def _one_error(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 1 and "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error")]
    assert len(errors) == 1, proc.stderr
    return errors[0]


@pytest.fixture
def synth(tmp_path):
    """A small synthetic ratings file whose metadata claims ml-25m's shape: a refusal that
    names 59,047 movies was decided from the metadata, not from the file."""
    path = tmp_path / "r.csv"
    write_synthetic(path, n_users=200, n_items=300, n_ratings=3_000, seed=0)
    meta_path = tmp_path / "r.csv.meta.json"
    meta = json.loads(meta_path.read_text())
    meta.update(n_users=162_541, n_items=59_047, n_items_rated=59_047, n_ratings=25_000_095)
    meta_path.write_text(json.dumps(meta))
    return path


def test_known_shapes():
    assert known_shape("ml-25m") == (162_541, 59_047, 25_000_095)
    assert known_shape("ml-32m") == (200_948, 87_585, 32_000_204)
    assert known_shape("ml-100k") == (943, 1_682, 100_000)
    assert known_shape("ml-latest-small") is None  # a living dataset: no published counts
    assert known_shape("no-such-set") is None
    assert known_shape(data="ratings.csv") is None
    assert all(spec.n_users and spec.n_items for name, spec in DATASETS.items() if name != "ml-latest-small")


def test_known_shape_of_the_mirrors_datasets_is_what_loads(ml100k):
    assert known_shape("ml-100k") == (ml100k.n_users, ml100k.n_items, ml100k.n_ratings)
    assert known_shape(ml100k) == (ml100k.n_users, ml100k.n_items, ml100k.n_ratings)


def test_a_synthetic_files_metadata_gives_its_shape(synth, tmp_path):
    assert known_shape(data=synth) == (162_541, 59_047, 25_000_095)
    assert known_shape(data=str(synth)) == (162_541, 59_047, 25_000_095)
    # metadata written for another file (renamed beside it) is not trusted
    other = tmp_path / "other.csv"
    other.write_text(synth.read_text())
    (tmp_path / "other.csv.meta.json").write_text((tmp_path / "r.csv.meta.json").read_text())
    assert known_shape(data=other) is None
    (tmp_path / "other.csv.meta.json").write_text("not json")
    assert known_shape(data=other) is None


def test_check_fits_before_loading_refuses_from_the_shape_alone(synth, monkeypatch):
    monkeypatch.setenv("MOVIEREC_MEMORY_LIMIT", "8G")
    with pytest.raises(ResourceError, match=r"^ease needs .* for its 59,047 x 59,047 item matrix.*max_items=20000"):
        check_fits_before_loading(create("ease", max_items=59_047), "ml-25m")
    with pytest.raises(ResourceError, match="59,047 x 59,047"):
        check_fits_before_loading(create("ease", max_items=None), data=synth)
    check_fits_before_loading(create("pop"), "ml-25m")  # a model that fits: nothing said
    check_fits_before_loading(create("ease", max_items=None), data=synth.with_name("nothing.csv"))  # size unknown


@pytest.mark.parametrize("command", ["train", "evaluate", "tune", "compare"])
def test_the_cli_refuses_ml25m_ease_before_fetching(command, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    args = {"train": ["train", "--out", str(tmp_path / "bundle")], "evaluate": ["evaluate"],
            "tune": ["tune", "--trials", "1"], "compare": ["compare", "--models", "pop,ease"]}[command]
    model_args = ["--param", "ease.max_items=59047"] if command == "compare" else ["--model", "ease", "--param",
                                                                                   "max_items=59047"]
    proc = _run([*args, "--dataset", "ml-25m", *model_args],
                {"MOVIEREC_CACHE": str(cache), "MOVIEREC_MIRROR": str(tmp_path / "no-mirror"),
                 "MOVIEREC_MEMORY_LIMIT": "8G"})
    error = _one_error(proc)
    assert error.startswith("error: ease needs") and "59,047 x 59,047 item matrix" in error, error
    assert "max_items" in error and error.count(". ") == 0, error
    assert list(cache.iterdir()) == []  # nothing fetched
    assert not (tmp_path / "bundle").exists()


def test_the_cli_refuses_from_a_synthetic_files_metadata(synth, tmp_path):
    proc = _run(["train", "--data", str(synth), "--model", "ease", "--param", "max_items=59047",
                 "--out", str(tmp_path / "bundle")], {"MOVIEREC_MEMORY_LIMIT": "8G"})
    error = _one_error(proc)
    assert "59,047 x 59,047 item matrix" in error and "max_items" in error, error


def test_a_hyperparameter_out_of_range_is_refused_before_loading(tmp_path, monkeypatch):
    """`build_model` checks each hyperparameter's range (`Recommender.check_params`), so a bad
    value is one sentence before ml-25m is fetched, not after minutes of reading."""
    from movierec.errors import ConfigError
    from movierec.experiments.models import build_model

    with pytest.raises(ConfigError, match="max_items must be a positive whole number"):
        build_model("seq-ease", {"max_items": -5})
    cache = tmp_path / "cache"
    cache.mkdir()
    env = {"MOVIEREC_CACHE": str(cache), "MOVIEREC_MIRROR": str(tmp_path / "no-mirror")}
    for args in (["train", "--out", str(tmp_path / "b"), "--model", "ease", "--param", "max_items=-5"],
                 ["compare", "--models", "pop,ease", "--param", "ease.max_items=-5"]):
        error = _one_error(_run([*args, "--dataset", "ml-25m"], env))
        assert "max_items must be a positive whole number" in error, error
    assert list(cache.iterdir()) == []  # nothing fetched
