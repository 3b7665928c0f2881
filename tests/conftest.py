"""Shared fixtures: the real MovieLens data through the project's own fetch code and mirror."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MIRROR = ROOT.parent / "shared" / "datasets"


def mirror_dir() -> Path:
    value = os.environ.get("MOVIEREC_MIRROR")
    if value and "://" not in value:
        return Path(value)
    return DEFAULT_MIRROR


@pytest.fixture(scope="session", autouse=True)
def _mirror_env(tmp_path_factory):
    """Every test reads MovieLens via the mirror, into a cache shared by the session."""
    os.environ.setdefault("MOVIEREC_MIRROR", str(mirror_dir()))
    if "MOVIEREC_CACHE" not in os.environ:
        os.environ["MOVIEREC_CACHE"] = str(tmp_path_factory.getbasetemp() / "cache")
    yield


@pytest.fixture(scope="session")
def ml100k():
    from movierec.data import load_movielens

    return load_movielens("ml-100k")


@pytest.fixture(scope="session")
def ml_small():
    from movierec.data import load_movielens

    return load_movielens("ml-latest-small")


@pytest.fixture(scope="session")
def u1(ml100k):
    """The canonical ML-100K fold u1 (80,000 / 20,000), read from the archive."""
    from movierec.data.split import ml100k_fold

    return ml100k_fold(ml100k, "u1")


@pytest.fixture(scope="session")
def small_split(ml100k):
    """A seeded random 80/20 split of the first 300 users of ML-100K: fast model tests."""
    from movierec.data.split import random_split

    return random_split(ml100k.subset(ml100k.user_idx < 300), test_fraction=0.2, seed=0)

