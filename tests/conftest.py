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
