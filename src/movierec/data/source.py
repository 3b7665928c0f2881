"""Where a Dataset came from: recorded in every bundle, so the data can be read again.

`movierec retrain` trains the next version of a model from the data the current one
learned from. The bundle therefore records the data's *source*, as JSON:

* a MovieLens dataset: `{"kind": "movielens", "name": "ml-100k"}` (read again through
  the cache and mirror, which verify the archive's checksum);
* a ratings file of one's own: `{"kind": "file", "path": <absolute path>, "sha256": ...,
  "options": {"user_col": ..., "sep": ..., "rating_range": [low, high], ...},
  "movies": {"path": ..., "sha256": ...} or None}`; the path may be a folder of Parquet
  files, whose "sha256" is then `parquet.folder_sha256` (over the sorted relative paths and
  each file's sha256), so a file added, removed or changed is noticed too.

`Bundle.from_model` adds `"fingerprint"` (the Dataset's `fingerprint()`) and
`"rating_scale"`. `reload(source)` reads the data again and refuses, in one sentence, a
file that is gone or changed (its checksum differs) and data whose fingerprint differs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from movierec.data.dataset import Dataset
from movierec.data.checksum import file_sha256
from movierec.errors import ConfigError, DatasetError

#: the reading options of a ratings file that the source records (those of `load_ratings`)
READ_OPTIONS = ("user_col", "item_col", "rating_col", "time_col", "sep", "rating_range")


def movielens_source(name: str) -> dict[str, Any]:
    """The source of a MovieLens dataset read by name."""
    return {"kind": "movielens", "name": name}


def file_source(path: str | Path, movies: str | Path | None = None, **options: Any) -> dict[str, Any]:
    """The source of a ratings file read with `options` (and an optional movies file).

    No checksum yet: reading data for an evaluation must not pay for hashing a large file.
    `with_checksums` adds them when a bundle records the source."""
    path = Path(path).resolve()
    kept = {k: (list(v) if isinstance(v, tuple) else v) for k, v in options.items()
            if k in READ_OPTIONS and v is not None}
    doc: dict[str, Any] = {"kind": "file", "path": str(path), "options": kept, "movies": None}
    if movies is not None:
        doc["movies"] = {"path": str(Path(movies).resolve())}
    return doc


def with_checksums(source: dict[str, Any]) -> dict[str, Any]:
    """`source` with the sha256 of its files (a MovieLens source is verified by its archive's
    checksum instead). The data's fingerprint, recorded beside it, still catches a file that
    changed between reading and recording."""
    if source.get("kind") != "file":
        return dict(source)
    doc = dict(source)
    if "sha256" not in doc:
        doc["sha256"] = data_sha256(Path(doc["path"]))
    if doc.get("movies") and "sha256" not in doc["movies"]:
        doc["movies"] = {**doc["movies"], "sha256": file_sha256(doc["movies"]["path"])}
    return doc


def data_sha256(path: Path) -> str:
    """The sha256 of a ratings file, or `parquet.folder_sha256` of a folder of Parquet files."""
    if path.is_dir():
        from movierec.data.parquet import folder_sha256

        return folder_sha256(path)
    return file_sha256(path)


def describe_source(source: dict[str, Any] | None) -> str:
    """A short label: "ml-100k" or the file's path."""
    if not source:
        return "unknown data"
    return source.get("name") if source.get("kind") == "movielens" else str(source.get("path"))


def _check_file(path: Path, expected: str | None, what: str, since: str) -> None:
    if path.is_dir() and what == "ratings file":
        what = "ratings folder"
    elif not path.is_file():
        raise DatasetError(f"The {what} {path} that {since} was trained on is gone; put it back or train anew.")
    if expected and data_sha256(path) != expected:
        raise DatasetError(f"The {what} {path} has changed since {since} was trained (its sha256 differs); "
                           f"restore the original or train anew with `movierec train`.")


def reload(source: dict[str, Any], *, since: str = "the model", progress=None) -> Dataset:
    """Read the data a source describes again, checked against what was recorded.

    Args:
        source: a recorded source (see the module docstring).
        since: how to name the model in messages, e.g. "version 3 of 'ease'".
        progress: download callback for a MovieLens dataset that is not cached.

    Raises:
        DatasetError: a file that is gone or whose checksum or fingerprint differs.
        ConfigError: a source of an unknown kind.
    """
    from movierec.data.fetch import fetch
    from movierec.data.movielens import get_spec, parse_movielens, parse_user_file

    kind = source.get("kind") if isinstance(source, dict) else None
    if kind == "movielens":
        spec = get_spec(str(source["name"]))
        ds = parse_movielens(spec, fetch(spec.name, progress=progress))
    elif kind == "file":
        path = Path(source["path"])
        _check_file(path, source.get("sha256"), "ratings file", since)
        options = dict(source.get("options") or {})
        if options.get("rating_range") is not None:
            options["rating_range"] = tuple(options["rating_range"])
        movies = source.get("movies")
        movies_path = None
        if movies:
            movies_path = Path(movies["path"])
            _check_file(movies_path, movies.get("sha256"), "movies file", since)
        ds = parse_user_file(path, movies=movies_path, **options)
    else:
        raise ConfigError(f"{since[0].upper() + since[1:]} records no data it can be trained from again "
                          f"(kind {kind!r}).")
    ds.source = {k: v for k, v in source.items() if k not in ("fingerprint", "rating_scale")}
    expected = source.get("fingerprint")
    if expected and ds.fingerprint() != expected:
        raise DatasetError(f"The data {describe_source(source)} reads differently from when {since} was trained "
                           f"(its fingerprint differs); train anew with `movierec train`.")
    return ds


__all__ = ["READ_OPTIONS", "data_sha256", "describe_source", "file_source", "movielens_source", "reload",
           "with_checksums"]
