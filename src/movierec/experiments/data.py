"""Loading the data a pipeline step works on: a MovieLens name, a ratings file (or a folder of
Parquet files) or a Dataset."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable

from movierec.data.dataset import Dataset
from movierec.errors import ConfigError

if TYPE_CHECKING:
    from movierec.models.base import Recommender


def load_data(dataset: str | Dataset | None = None, data: str | Path | None = None,
              progress: Callable[[int, int | None], None] | None = None, **read_options) -> Dataset:
    """A Dataset from exactly one of: a MovieLens name (fetched through the cache and
    mirror), a Dataset (returned as is), or the path of a ratings file.

    Args:
        dataset: MovieLens name such as "ml-100k", or a Dataset.
        data: a ratings file (CSV, TSV, `::` or Parquet) or a folder of Parquet files (a
            partitioned dataset, see `movierec.data.parquet`).
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


def known_shape(dataset: str | Dataset | None = None, data: str | Path | None = None) -> tuple[int, int, int] | None:
    """(users, movies, ratings) of the data `load_data` would load, known without reading
    it, or None when it is not.

    Known: a MovieLens name with published counts (`MovieLensSpec.n_users`, `n_items`,
    `n_ratings`), a Dataset, and a synthetic ratings file (`movierec data synth`) whose
    `<file>.meta.json` is beside it. Used to refuse a fit too big for the machine before
    fetching or parsing anything (`check_fits_before_loading`).
    """
    if isinstance(dataset, Dataset):
        return dataset.n_users, dataset.n_items, dataset.n_ratings
    if dataset is not None and data is None:
        from movierec.data.movielens import DATASETS

        spec = DATASETS.get(str(dataset))
        if spec is None or None in (spec.n_users, spec.n_items, spec.n_ratings):
            return None
        return int(spec.n_users), int(spec.n_items), int(spec.n_ratings)  # type: ignore[arg-type]
    if data is not None and dataset is None and Path(f"{data}.meta.json").is_file() and Path(data).is_file():
        import json

        from movierec.data.synthetic import read_meta

        try:
            meta = read_meta(data)
            shape = (int(meta["n_users"]), int(meta.get("n_items_rated", meta["n_items"])), int(meta["n_ratings"]))
        except (OSError, ValueError, KeyError, TypeError, json.JSONDecodeError):
            return None  # not a synthetic file's metadata: the size is learnt by loading
        return shape if meta.get("path") in (None, Path(data).name) else None
    return None


def check_fits_before_loading(model: Recommender, dataset: str | Dataset | None = None,
                              data: str | Path | None = None) -> None:
    """Refuse, before the data is fetched or read, a fit of `model` too big for the machine,
    where the data's size is known without reading it (`known_shape`; the whole data's
    size, which a split's training part does not exceed).

    Raises:
        ResourceError: one sentence naming the need, the limit and the alternative.
    """
    shape = known_shape(dataset, data)
    if shape is not None:
        model.check_fits(*shape)


def dataset_name(ds: Dataset) -> str:
    """The dataset's name without a part suffix ("ml-100k:train" -> "ml-100k")."""
    return ds.name.split(":")[0]


__all__ = ["check_fits_before_loading", "dataset_name", "known_shape", "load_data"]
