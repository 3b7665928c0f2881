"""MovieLens and user data: fetch, parse into a Dataset, split without leaks."""

from __future__ import annotations

from pathlib import Path

from movierec.data.dataset import Catalog, Dataset
from movierec.data.fetch import fetch
from movierec.data.idmap import IdMap
from movierec.data.movielens import DATASETS, get_spec, parse_movielens, parse_user_file


def load_movielens(name: str, cache: Path | None = None, mirror: str | None = None, progress=None) -> Dataset:
    """Fetch (if not cached) and parse a MovieLens dataset by name, e.g. "ml-100k"."""
    spec = get_spec(name)
    from movierec.data.source import movielens_source

    folder = fetch(name, cache=cache, mirror=mirror, progress=progress)
    ds = parse_movielens(spec, folder)
    ds.source = movielens_source(spec.name)
    return ds


def load_ratings(path: str | Path, movies: str | Path | None = None, **options) -> Dataset:
    """A user's own ratings file (CSV, TSV, `::` or Parquet) as a Dataset, with titles and
    genres from an optional movies file (MovieLens' `movies.csv`, `movies.dat` or ML-100K's
    `u.item`, or a CSV/TSV with id/title/genres columns; see `movielens.read_movies`).
    Options: user_col, item_col, rating_col, time_col, sep, rating_range (low, high): the
    rating scale, which every rating must lie in; without it the scale is the file's lowest
    and highest rating (see `movielens.parse_user_file`)."""
    from movierec.data.source import file_source

    ds = parse_user_file(path, movies=movies, **options)
    ds.source = file_source(path, movies, **options)
    return ds


__all__ = ["Catalog", "Dataset", "IdMap", "DATASETS", "fetch", "load_movielens", "load_ratings"]
