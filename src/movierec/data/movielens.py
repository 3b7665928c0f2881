"""The MovieLens datasets movierec knows: where they live, what they hold, how to parse them."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from movierec.data.dataset import Catalog, Dataset
from movierec.data.idmap import IdMap
from movierec.data.readers import (
    RatingsTable,
    check_encoding,
    check_rating_range,
    check_readable,
    read_numeric_table,
    read_user_ratings,
)
from movierec.errors import DatasetError, ParseError, UnknownItemError, UnknownUserError

OFFICIAL_BASE_URL = "https://files.grouplens.org/datasets/movielens"


@dataclass(frozen=True)
class MovieLensSpec:
    """One published MovieLens archive.

    Attributes:
        name: our name and the archive's file stem (`<name>.zip`).
        folder: the top-level folder inside the archive.
        layout: "100k" (u.data/u.item/u.user), "dat" (`::`-separated, 1M/10M) or "csv".
        files: files that must be present after extraction.
        n_ratings: the published rating count, or None for living datasets.
        rating_scale: (min, max) stars.
        sha256: content checksums known for some files.
    """

    name: str
    folder: str
    layout: str
    files: tuple[str, ...]
    n_ratings: int | None
    rating_scale: tuple[float, float]
    sha256: dict[str, str] = field(default_factory=dict)
    movies_encoding: str = "utf-8"

    @property
    def url(self) -> str:
        return f"{OFFICIAL_BASE_URL}/{self.name}.zip"

    @property
    def ratings_file(self) -> str:
        return {"100k": "u.data", "dat": "ratings.dat", "csv": "ratings.csv"}[self.layout]


_CSV_FILES = ("ratings.csv", "movies.csv")

DATASETS: dict[str, MovieLensSpec] = {
    s.name: s
    for s in [
        MovieLensSpec(
            "ml-100k", "ml-100k", "100k",
            ("u.data", "u.item", "u.user", "u.genre") + tuple(f"u{i}.{p}" for i in range(1, 6) for p in ("base", "test"))
            + ("ua.base", "ua.test", "ub.base", "ub.test"),
            100_000, (1.0, 5.0),
            sha256={
                "u.data": "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490",
                "u.item": "553841ebc7de3a0fd0d6b62a204ea30c1e651aacfb2814c7a6584ac52f2c5701",
                "u.user": "f120e114da2e8cf314fd28f99417c94ae9ddf1cb6db8ce0e4b5995d40e90e62c",
                "u1.base": "ce253ec86c448b44fb3ba9a30d12dcfc2e9210cbde71efada3730c22e9ac212a",
                "u1.test": "18c6014a4b2c7324f250a63f8904a7b16b2b19f911129e346141507b0cbac950",
            },
            movies_encoding="iso-8859-1",
        ),
        MovieLensSpec("ml-latest-small", "ml-latest-small", "csv", _CSV_FILES + ("tags.csv", "links.csv"), None, (0.5, 5.0)),
        MovieLensSpec("ml-1m", "ml-1m", "dat", ("ratings.dat", "movies.dat", "users.dat"), 1_000_209, (1.0, 5.0),
                      movies_encoding="iso-8859-1"),
        MovieLensSpec("ml-10m", "ml-10M100K", "dat", ("ratings.dat", "movies.dat"), 10_000_054, (0.5, 5.0)),
        MovieLensSpec("ml-20m", "ml-20m", "csv", _CSV_FILES, 20_000_263, (0.5, 5.0)),
        MovieLensSpec("ml-25m", "ml-25m", "csv", _CSV_FILES, 25_000_095, (0.5, 5.0)),
        MovieLensSpec("ml-32m", "ml-32m", "csv", _CSV_FILES, 32_000_204, (0.5, 5.0)),
    ]
}

ML100K_FOLDS = ("u1", "u2", "u3", "u4", "u5", "ua", "ub")


def get_spec(name: str) -> MovieLensSpec:
    """The spec of a known dataset, or a DatasetError listing the known names."""
    try:
        return DATASETS[name]
    except KeyError:
        raise DatasetError(f"Unknown dataset {name!r}; known datasets: {', '.join(DATASETS)}.") from None


# -- titles and years ----------------------------------------------------------------
_YEAR_RE = re.compile(r"^(.*?)\s*\((\d{4})(?:[-–]\d{0,4})?\)\s*$")


def split_title(raw: str) -> tuple[str, int]:
    """'Toy Story (1995)' -> ('Toy Story', 1995); no year -> (title, -1)."""
    raw = str(raw).strip()
    match = _YEAR_RE.match(raw)
    if match:
        return match.group(1), int(match.group(2))
    return raw, -1


def _movies_frame(ids, titles, genres) -> pd.DataFrame:
    split = [split_title(t) for t in titles]
    return pd.DataFrame(
        {
            "item_id": np.asarray(ids),
            "title": [s[0] for s in split],
            "year": np.array([s[1] for s in split], dtype=np.int32),
            "genres": genres,
        }
    )


def _genre_list(value: str) -> list[str]:
    if not isinstance(value, str) or value in ("", "(no genres listed)"):
        return []
    return value.split("|")


# -- per-layout parsers ----------------------------------------------------------------
def _read_100k_items(folder: Path) -> pd.DataFrame:
    path = folder / "u.item"
    check_readable(path, "movies file")
    genre_path = folder / "u.genre"
    check_readable(genre_path, "genre list")
    genre_names = [
        line.split("|")[0]
        for line in genre_path.read_text(encoding="iso-8859-1").splitlines()
        if line.strip()
    ]
    rows = []
    for lineno, line in enumerate(path.read_text(encoding="iso-8859-1").splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split("|")
        if len(fields) != 5 + len(genre_names):
            raise ParseError(f"{path}, line {lineno}: expected {5 + len(genre_names)} fields separated by '|', found {len(fields)}.")
        try:
            movie_id = int(fields[0])
        except ValueError:
            raise ParseError(f"{path}, line {lineno}: movie ID {fields[0]!r} is not a number.") from None
        flags = fields[5:]
        genres = [g for g, f in zip(genre_names, flags) if f.strip() == "1" and g != "unknown"]
        rows.append((movie_id, fields[1], genres, fields[2]))
    frame = _movies_frame([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows])
    # a few titles carry no year; fall back to the release date (dd-Mon-yyyy)
    no_year = frame["year"].to_numpy() < 0
    dates = pd.Series([r[3] for r in rows])
    years = pd.to_numeric(dates.str[-4:], errors="coerce").fillna(-1).astype(np.int32).to_numpy()
    frame.loc[no_year, "year"] = years[no_year]
    return frame


def _read_100k_users(folder: Path) -> pd.DataFrame | None:
    path = folder / "u.user"
    if not path.exists():
        return None
    return _read_users_table(path, path.read_bytes(), "|", ["user_id", "age", "gender", "occupation", "zip"])


def _read_users_table(path: Path, data: bytes, sep: str, names: list[str]) -> pd.DataFrame:
    """A headerless users file (`data` is its bytes, `::` already rewritten to `sep`)."""
    import io

    lines = data.decode("iso-8859-1").splitlines()
    for lineno, line in enumerate(lines, start=1):
        if line.strip() and len(line.split(sep)) != len(names):
            shown = "'::'" if sep == "\t" else repr(sep)
            raise ParseError(f"{path}, line {lineno}: expected {len(names)} fields separated by {shown}, "
                             f"found {len(line.split(sep))}.")
    frame = pd.read_csv(io.BytesIO(data), sep=sep, header=None, names=names, encoding="iso-8859-1",
                        dtype={"zip": str})
    ids = pd.to_numeric(frame["user_id"], errors="coerce")
    if ids.isna().any():
        row = int(np.flatnonzero(ids.isna().to_numpy())[0])
        raise ParseError(f"{path}, line {row + 1}: user ID {frame['user_id'].iloc[row]!r} is not a number.")
    frame["user_id"] = ids.astype(np.int64)
    return frame


def _read_dat_movies(path: Path, encoding: str) -> pd.DataFrame:
    check_readable(path, "movies file")
    check_encoding(path, encoding)
    ids, titles, genres = [], [], []
    for lineno, line in enumerate(path.read_bytes().decode(encoding).splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split("::")
        if len(parts) != 3:
            raise ParseError(f"{path}, line {lineno}: expected 3 fields separated by '::', found {len(parts)}.")
        try:
            ids.append(int(parts[0]))
        except ValueError:
            raise ParseError(f"{path}, line {lineno}: movie ID {parts[0]!r} is not a number.") from None
        titles.append(parts[1])
        genres.append(_genre_list(parts[2]))
    return _movies_frame(ids, titles, genres)


def _read_dat_users(path: Path) -> pd.DataFrame | None:
    if not path.exists():
        return None
    frame = _read_users_table(path, path.read_bytes().replace(b"::", b"\t"), "\t",
                              ["user_id", "gender", "age", "occupation", "zip"])
    return frame[["user_id", "age", "gender", "occupation", "zip"]]


def _read_csv_movies(path: Path) -> pd.DataFrame:
    check_readable(path, "movies file")
    check_encoding(path, "utf-8")
    try:
        frame = pd.read_csv(path, dtype={"movieId": np.int64, "title": str, "genres": str})
    except (ValueError, pd.errors.ParserError) as exc:
        raise ParseError(f"{path} could not be parsed: {str(exc).splitlines()[0]}") from None
    missing = {"movieId", "title", "genres"} - set(frame.columns)
    if missing:
        raise ParseError(f"{path} lacks the column(s) {', '.join(sorted(missing))}.")
    return _movies_frame(frame["movieId"].to_numpy(), frame["title"].fillna("").tolist(),
                         [_genre_list(g) for g in frame["genres"]])


def _with_tags(movies: pd.DataFrame, path: Path) -> pd.DataFrame:
    """`movies` with a "tags" column: each movie's tags (tags.csv: userId,movieId,tag,timestamp)
    joined by " ; " in file order, "" for movies nobody tagged."""
    check_encoding(path, "utf-8")
    try:
        tags = pd.read_csv(path, usecols=["movieId", "tag"], dtype={"movieId": np.int64, "tag": str})
    except (ValueError, pd.errors.ParserError) as exc:
        raise ParseError(f"{path} could not be parsed: {str(exc).splitlines()[0]}") from None
    tags = tags.dropna(subset=["tag"])
    joined = tags.groupby("movieId", sort=False)["tag"].agg(lambda t: " ; ".join(str(x).strip() for x in t))
    movies = movies.copy()
    movies["tags"] = movies["item_id"].map(joined).fillna("").astype(str)
    return movies


# -- a movies file of one's own --------------------------------------------------------
_MOVIE_ID_COLUMNS = ("movieid", "itemid", "id", "movie", "item", "iid", "mid", "filmid", "film")
_TITLE_COLUMNS = ("title", "movietitle", "name", "moviename", "filmtitle", "film", "movie")
_GENRE_COLUMNS = ("genres", "genre", "categories", "category")
_YEAR_COLUMNS = ("year", "releaseyear")


def _pick(columns: list[str], candidates: tuple[str, ...], taken: set[str]) -> str | None:
    normed = {re.sub(r"[\s_\-]", "", str(c).lower()): c for c in columns if c not in taken}
    return next((normed[c] for c in candidates if c in normed), None)


def _split_genres(values: list[str]) -> list[list[str]]:
    """Genre texts -> lists: "|"-separated as in MovieLens, else ";" or "," when no value has "|"."""
    texts = ["" if not isinstance(v, str) else v.strip() for v in values]
    sep = "|" if any("|" in t for t in texts) else next((c for c in (";", ",") if any(c in t for t in texts)), "|")
    return [[g.strip() for g in t.split(sep) if g.strip() and g.strip() != "(no genres listed)"] for t in texts]


def read_movies(path: str | Path, encoding: str = "utf-8") -> pd.DataFrame:
    """A movies file of one's own, as a frame with columns item_id, title, year, genres (lists).

    Accepts MovieLens layouts (`movies.csv`: movieId,title,genres with "|"-separated
    genres and "(year)" in titles; `movies.dat`: `id::title::genres`) and any CSV/TSV
    with a header naming an ID column (movieId, item_id, id ...), a title column
    (title, name) and optionally genres and year columns. Years are parsed from titles
    such as "Toy Story (1995)" when there is no year column. IDs are whole numbers when
    every ID is one, else text (as for ratings files, so the two match).

    Raises:
        ParseError: for a missing, empty, undecodable or malformed file, missing ID or
            title columns, an empty or repeated movie ID.
    """
    from movierec.data.readers import _ids, detect_format

    path = Path(path)
    check_readable(path, "movies file")
    check_encoding(path, encoding)
    fmt = detect_format(path)
    if fmt == "parquet":
        raise ParseError(f"{path}: give the movies as a CSV or TSV file with a header (id, title, genres).")
    if fmt == "dat":
        return _read_dat_movies(path, encoding)
    sep = "\t" if fmt == "tsv" else ","
    try:
        frame = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, encoding=encoding)
    except pd.errors.ParserError as exc:
        match = re.search(r"line (\d+)", str(exc))
        where = f", line {match.group(1)}" if match else ""
        raise ParseError(f"{path}{where}: the number of fields differs from the header "
                         f"(quote titles that contain {sep!r}).") from None
    columns = list(frame.columns)
    id_col = _pick(columns, _MOVIE_ID_COLUMNS, set())
    title_col = _pick(columns, _TITLE_COLUMNS, {id_col})
    if id_col is None or title_col is None:
        missing = " and ".join(w for w, c in (("movie ID", id_col), ("title", title_col)) if c is None)
        raise ParseError(f"{path}: cannot tell which column holds the {missing} (columns: "
                         f"{', '.join(map(str, columns))}); a movies file needs a header such as movieId,title,genres.")
    if frame.empty:
        raise ParseError(f"{path} has a header but no movies.")
    genre_col = _pick(columns, _GENRE_COLUMNS, {id_col, title_col})
    year_col = _pick(columns, _YEAR_COLUMNS, {id_col, title_col, genre_col})
    ids = frame[id_col].str.strip()
    if (ids == "").any():
        row = int(np.flatnonzero((ids == "").to_numpy())[0])
        raise ParseError(f"{path}, line {row + 2}: the movie ID is empty.")
    repeated = ids.duplicated(keep="first")
    if repeated.any():
        row = int(np.flatnonzero(repeated.to_numpy())[0])
        raise ParseError(f"{path}, line {row + 2}: movie ID {ids.iloc[row]!r} appears more than once.")
    genres = _split_genres(frame[genre_col].tolist()) if genre_col else [[] for _ in range(len(frame))]
    movies = _movies_frame(_ids(ids), frame[title_col].tolist(), genres)
    if year_col is not None:
        years = pd.to_numeric(frame[year_col], errors="coerce")
        known = years.notna().to_numpy()
        movies.loc[known, "year"] = years[known].astype(np.int32).to_numpy()
    return movies


def read_ratings(spec: MovieLensSpec, path: Path) -> RatingsTable:
    """Read one ratings file of a MovieLens layout (also used for the 100K fold files)."""
    if spec.layout == "csv":
        check_readable(path, "ratings file")
        with open(path, "rb") as fh:
            header = fh.readline().decode("utf-8", errors="replace").strip()
        if header.replace(" ", "") != "userId,movieId,rating,timestamp":
            raise ParseError(f"{path}, line 1: expected the header 'userId,movieId,rating,timestamp', found {header[:60]!r}.")
        sep, has_header = ",", True
    else:
        sep, has_header = ("\t" if spec.layout == "100k" else "::"), False
    user, item, rating, ts = read_numeric_table(path, sep, 4, has_header, ["int64", "int64", "float32", "int64"])
    check_rating_range(path, rating, *spec.rating_scale, first_line=2 if has_header else 1)
    return RatingsTable(user=user, item=item, rating=rating, timestamp=ts)


def build_dataset(
    name: str,
    table: RatingsTable,
    movies: pd.DataFrame | None = None,
    users: pd.DataFrame | None = None,
    rating_scale: tuple[float, float] | None = None,
) -> Dataset:
    """Map raw IDs to indices and assemble a Dataset (catalog and user features aligned)."""
    user_map, user_idx = IdMap.from_values(table.user, kind="user", error=UnknownUserError)
    item_map, item_idx = IdMap.from_values(table.item, kind="movie", error=UnknownItemError)
    has_ts = table.timestamp is not None
    timestamp = table.timestamp.astype(np.int64, copy=False) if has_ts else np.zeros(len(user_idx), np.int64)
    catalog = Catalog.from_frame(item_map, movies) if movies is not None else None
    features = None
    if users is not None:
        pos = user_map.lookup(users["user_id"].to_numpy(), missing="mask")
        features = users[pos >= 0].drop(columns=["user_id"]).set_index(pd.Index(pos[pos >= 0], name="user_idx")).sort_index()
    return Dataset(
        name=name,
        users=user_map,
        items=item_map,
        user_idx=user_idx,
        item_idx=item_idx,
        rating=np.ascontiguousarray(table.rating, dtype=np.float32),
        timestamp=timestamp,
        catalog=catalog,
        user_features=features,
        has_timestamps=has_ts,
        rating_scale=rating_scale,
    )


def parse_movielens(spec: MovieLensSpec, folder: Path) -> Dataset:
    """Parse an extracted MovieLens folder into a Dataset."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"{spec.name} is not in the cache at {folder}; fetch it first.")
    table = read_ratings(spec, folder / spec.ratings_file)
    if spec.layout == "100k":
        movies, users = _read_100k_items(folder), _read_100k_users(folder)
    elif spec.layout == "dat":
        movies = _read_dat_movies(folder / "movies.dat", spec.movies_encoding)
        users = _read_dat_users(folder / "users.dat")
    else:
        movies, users = _read_csv_movies(folder / "movies.csv"), None
        if (folder / "tags.csv").exists():
            movies = _with_tags(movies, folder / "tags.csv")
    return build_dataset(spec.name, table, movies, users, spec.rating_scale)


def parse_user_file(path: str | Path, movies: str | Path | None = None, **options) -> Dataset:
    """A user's own ratings file (CSV, TSV, `::` or Parquet) as a Dataset. See read_user_ratings.

    Args:
        path: the ratings file.
        movies: optional movies file (see `read_movies`) giving titles, years and genres;
            rated movies it lacks are named in a DataWarning and shown without a title.
        options: column names, separator, rating range (see `read_user_ratings`).
    """
    import warnings

    from movierec.data.readers import DataWarning

    path = Path(path)
    table = read_user_ratings(path, **options)
    frame = read_movies(movies) if movies is not None else None
    ds = build_dataset(path.stem, table, frame)
    if frame is not None:
        untitled = int((ds.catalog.titles == "").sum())
        if untitled:
            warnings.warn(f"{untitled:,} of the {ds.n_items:,} rated movies are not in {movies}; "
                          f"they are shown without a title.", DataWarning, stacklevel=2)
    return ds
