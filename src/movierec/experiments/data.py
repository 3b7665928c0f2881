"""Loading the data a pipeline step works on: a MovieLens name, a ratings file or a Dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from movierec.data.dataset import Dataset
from movierec.errors import ConfigError


def load_data(dataset: str | Dataset | None = None, data: str | Path | None = None,
              progress: Callable[[int, int | None], None] | None = None, **read_options) -> Dataset:
    """A Dataset from exactly one of: a MovieLens name (fetched through the cache and
    mirror), a Dataset (returned as is), or the path of a ratings file.

    Args:
        dataset: MovieLens name such as "ml-100k", or a Dataset.
        data: a ratings file (CSV, TSV, `::` or Parquet).
        progress: download callback(done bytes, total bytes or None).
        read_options: column names / rating range for `data` (None values ignored).
    """
    from movierec.data import load_movielens, load_ratings

    if (dataset is None) == (data is None):
        raise ConfigError("Give either a MovieLens dataset name (such as ml-100k) or a ratings file, not both or neither.")
    if isinstance(dataset, Dataset):
        return dataset
    if data is not None:
        return load_ratings(data, **{k: v for k, v in read_options.items() if v is not None})
    return load_movielens(dataset, progress=progress)


def dataset_name(ds: Dataset) -> str:
    """The dataset's name without a part suffix ("ml-100k:train" -> "ml-100k")."""
    return ds.name.split(":")[0]


__all__ = ["dataset_name", "load_data"]
