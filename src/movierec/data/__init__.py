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
    folder = fetch(name, cache=cache, mirror=mirror, progress=progress)
    return parse_movielens(spec, folder)


def load_ratings(path: str | Path, movies: str | Path | None = None, **options) -> Dataset:
    """A user's own ratings file (CSV, TSV, `::` or Parquet) as a Dataset, with titles and
    genres from an optional movies file (MovieLens `movies.csv` layout or id/title/genres
    columns). Options: user_col, item_col, rating_col, time_col, sep, rating_range."""
    return parse_user_file(path, movies=movies, **options)


__all__ = ["Catalog", "Dataset", "IdMap", "DATASETS", "fetch", "load_movielens", "load_ratings"]
