"""The MovieLens datasets movierec knows: where they live, what they hold, how to parse them."""

from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from movierec.data.dataset import Catalog, Dataset
from movierec.data.idmap import IdMap
from movierec.data.readers import (
    DataWarning,
    RatingsTable,
    check_encoding,
    check_readable,
    check_scale,
    decode_8bit,
    read_numeric_ratings,
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
        n_users: the published user count (every user has rated), or None.
        n_items: the movies with at least one rating (the loaded Dataset's movie ID map;
            ml-32m's is the published movie count, an upper bound), or None.
    """

    name: str
    folder: str
    layout: str
    files: tuple[str, ...]
    n_ratings: int | None
    rating_scale: tuple[float, float]
    sha256: dict[str, str] = field(default_factory=dict)
    movies_encoding: str = "utf-8"
    n_users: int | None = None
    n_items: int | None = None

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
            movies_encoding="iso-8859-1", n_users=943, n_items=1_682,
        ),
        MovieLensSpec("ml-latest-small", "ml-latest-small", "csv", _CSV_FILES + ("tags.csv", "links.csv"), None, (0.5, 5.0)),
        MovieLensSpec("ml-1m", "ml-1m", "dat", ("ratings.dat", "movies.dat", "users.dat"), 1_000_209, (1.0, 5.0),
                      movies_encoding="iso-8859-1", n_users=6_040, n_items=3_706),
        MovieLensSpec("ml-10m", "ml-10M100K", "dat", ("ratings.dat", "movies.dat"), 10_000_054, (0.5, 5.0),
                      n_users=69_878, n_items=10_677),
        MovieLensSpec("ml-20m", "ml-20m", "csv", _CSV_FILES, 20_000_263, (0.5, 5.0), n_users=138_493, n_items=26_744),
        MovieLensSpec("ml-25m", "ml-25m", "csv", _CSV_FILES, 25_000_095, (0.5, 5.0), n_users=162_541, n_items=59_047),
        MovieLensSpec("ml-32m", "ml-32m", "csv", _CSV_FILES, 32_000_204, (0.5, 5.0), n_users=200_948, n_items=87_585),
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
#: ML-100K's genres in the order of u.item's 19 flags (its u.genre), used for a u.item
#: that has no u.genre beside it
ML100K_GENRES = ("unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
                 "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller",
                 "War", "Western")


def _read_genre_names(path: Path) -> list[str]:
    """The genre names of a u.genre file (`name|index` lines, Latin-1), in file order."""
    return [line.split("|")[0] for line in path.read_text(encoding="iso-8859-1").splitlines() if line.strip()]


def _read_100k_items(folder: Path) -> pd.DataFrame:
    path = folder / "u.item"
    check_readable(path, "movies file")
    genre_path = folder / "u.genre"
    check_readable(genre_path, "genre list")
    return _parse_100k_items(path, path.read_text(encoding="iso-8859-1"), _read_genre_names(genre_path))


def _parse_100k_items(path: Path, text: str, genre_names: list[str] | tuple[str, ...]) -> pd.DataFrame:
    """The movies of a u.item text (`id|title|release date|video release date|IMDb URL|`
    then one 0/1 flag per name in `genre_names`); the "unknown" genre is dropped."""
    rows = []
    for lineno, line in enumerate(text.splitlines(), start=1):
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
    dates = pd.Series([r[3] for r in rows], dtype=object)
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
    return _parse_dat_movies(path, path.read_bytes().decode(encoding))


def _parse_dat_movies(path: Path, text: str) -> pd.DataFrame:
    """The movies of a movies.dat text (`id::title::genres`, genres "|"-separated)."""
    ids, titles, genres = [], [], []
    for lineno, line in enumerate(text.splitlines(), start=1):
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


def _movies_layout(data: bytes) -> str:
    """"item" (ML-100K's u.item), "dat" (`::`-separated, ML-1M's movies.dat) or "table"
    (a CSV/TSV with a header), from the first non-blank line of a movies file's bytes.

    A u.item line is headerless: a whole-number ID, then at least 5 fields separated by
    "|" of which the 6th and later are 0/1 genre flags (24 fields in ML-100K's own).
    """
    data = data.removeprefix(b"\xef\xbb\xbf")
    first = next((line for line in data.splitlines() if line.strip()), b"").decode("iso-8859-1")
    fields = [f.strip() for f in first.split("|")]
    if len(fields) >= 6 and fields[0].isdigit() and all(f in ("0", "1") for f in fields[5:]):
        return "item"
    if "::" in first:
        return "dat"
    return "table"


def _decode_movies(path: Path, data: bytes, layout: str) -> str:
    """The text of a movies file whose encoding was not given.

    UTF-8 when the bytes are UTF-8 (a byte-order mark is dropped). Otherwise MovieLens'
    own layouts (u.item, movies.dat) are read as ISO-8859-1, their published encoding,
    and a table as Windows-1252 (Latin-1) when `decode_8bit` finds that safe, with a
    DataWarning quoting the first line that has an accented letter.
    """
    if data.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in data[:4096]:
        check_encoding(path, "utf-8")  # refuses UTF-16 and binary files in one sentence
    try:
        check_encoding(path, "utf-8")
    except ParseError:  # names the line of the first byte that is not UTF-8
        if layout != "table":
            return data.decode("iso-8859-1")
        text = decode_8bit(data)
        if text is None:
            raise
        lineno, line = next((n, line) for n, line in enumerate(text.splitlines(), start=1) if not line.isascii())
        shown = line.strip() if len(line.strip()) <= 60 else line.strip()[:57] + "..."
        warnings.warn(f"{path} is not UTF-8 text; it was read as Latin-1 (Windows-1252), so line {lineno} reads "
                      f"{shown!r}; if its accents look wrong, re-save the file as UTF-8.", DataWarning, stacklevel=3)
        return text
    return data.decode("utf-8-sig")


def read_movies(path: str | Path, encoding: str | None = None) -> pd.DataFrame:
    """A movies file of one's own, as a frame with columns item_id, title, year, genres (lists).

    Accepts MovieLens layouts, recognised by their content (not their names):
    ML-100K's `u.item` (headerless `id|title|release date|video release date|IMDb URL|`
    then 19 genre flags; genre names from a `u.genre` beside it, else ML-100K's own;
    "unknown" dropped), `movies.dat` of ML-1M/10M (`id::title::genres`) and `movies.csv`
    (movieId,title,genres with "|"-separated genres and "(year)" in titles); and any
    CSV/TSV with a header naming an ID column (movieId, item_id, id ...), a title column
    (title, name) and optionally genres and year columns. Years are parsed from titles
    such as "Toy Story (1995)" when there is no year column. IDs are whole numbers when
    every ID is one, else text (as for ratings files, so the two match).

    Args:
        path: the movies file.
        encoding: its text encoding. None (the default) reads UTF-8, or, for bytes that
            are not UTF-8, MovieLens' u.item and movies.dat as ISO-8859-1 (their own
            encoding) and a table as Windows-1252 (Latin-1) where that is safe (see
            `readers.decode_8bit`), saying so in a DataWarning.

    Raises:
        ParseError: for a missing, empty, undecodable or malformed file, missing ID or
            title columns, an empty or repeated movie ID.
    """
    from movierec.data.readers import _ids, detect_format

    path = Path(path)
    check_readable(path, "movies file")
    fmt = detect_format(path)
    if fmt == "parquet":
        raise ParseError(f"{path}: give the movies as a CSV or TSV file with a header (id, title, genres).")
    data = path.read_bytes()
    layout = _movies_layout(data)
    if encoding is None:
        text = _decode_movies(path, data, layout)
    else:
        check_encoding(path, encoding)
        text = data.decode(encoding)
    if layout != "table":
        if layout == "item":
            genre_path = path.parent / "u.genre"
            names = _read_genre_names(genre_path) if genre_path.is_file() else []
            movies = _parse_100k_items(path, text, names or ML100K_GENRES)
        else:
            movies = _parse_dat_movies(path, text)
        repeated = movies["item_id"].duplicated(keep="first").to_numpy()
        if repeated.any():
            raise ParseError(f"{path}: movie ID {movies['item_id'].iloc[int(np.flatnonzero(repeated)[0])]} "
                             f"appears more than once.")
        return movies
    sep = "\t" if fmt == "tsv" else ","
    first = next((line for line in text.splitlines() if line.strip()), "")
    if first.split(sep)[0].strip().isdigit():
        raise ParseError(f"{path}, line 1: {first.strip()[:40]!r} is a movie, not a header; a movies file needs a "
                         f"header such as movieId,title,genres (or MovieLens' own u.item or movies.dat layout).")
    try:
        frame = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False)
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
    return read_numeric_ratings(path, sep, has_header, ["int64", "int64", "float32", "int64"], (0, 1, 2, 3),
                                spec.rating_scale)


def build_dataset(
    name: str,
    table: RatingsTable,
    movies: pd.DataFrame | None = None,
    users: pd.DataFrame | None = None,
    rating_scale: tuple[float, float] | None = None,
) -> Dataset:
    """Map raw IDs to indices and assemble a Dataset (catalog and user features aligned)."""
    users_kw = dict(kind="user", error=UnknownUserError)
    items_kw = dict(kind="movie", error=UnknownItemError)
    user_map, user_idx = (IdMap.from_factorized(*table.user_codes, **users_kw) if table.user_codes is not None
                          else IdMap.from_values(table.user, **users_kw))
    item_map, item_idx = (IdMap.from_factorized(*table.item_codes, **items_kw) if table.item_codes is not None
                          else IdMap.from_values(table.item, **items_kw))
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
        # the file's lowest and highest rating when no scale is given: what Dataset would compute
        rating_scale=rating_scale if rating_scale is not None else table.rating_bounds,
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


#: rating scales in common use: a file whose lowest and highest ratings are exactly one of
#: these is taken to span its whole scale, so reading the scale from it needs no warning
#: (likes 0/1; five stars 1-5, 0.5-5 in halves as MovieLens, 0-5; ten points 1-10, 0.5-10,
#: 0-10; percentages 0-100, 1-100)
CONVENTIONAL_SCALES = frozenset({(0.0, 1.0), (1.0, 5.0), (0.5, 5.0), (0.0, 5.0), (1.0, 10.0), (0.5, 10.0),
                                 (0.0, 10.0), (0.0, 100.0), (1.0, 100.0)})


def parse_user_file(path: str | Path, movies: str | Path | None = None, **options) -> Dataset:
    """A user's own ratings file (CSV, TSV, `::` or Parquet) as a Dataset. See read_user_ratings.

    The Dataset's `rating_scale` is `rating_range` when given (every rating must lie in
    it). Without it the scale is the lowest and highest rating in the file, and a
    DataWarning says so unless that is exactly a scale in common use
    (`CONVENTIONAL_SCALES`: 0-1, 1-5, 0.5-5, 0-5, 1-10, 0.5-10, 0-10, 0-100, 1-100) or every
    rating is the same (clicks or views with a constant rating column have no scale to
    miss): a 1-10 file in which nobody gave a 1 would otherwise be read, trained and served
    on 2-10 without a word.

    Args:
        path: the ratings file.
        movies: optional movies file (see `read_movies`) giving titles, years and genres;
            rated movies it lacks are named in a DataWarning and shown without a title.
        options: column names, separator, rating range (see `read_user_ratings`).

    Raises:
        ConfigError: for a `rating_range` that is not two finite numbers, low < high.
        ParseError: for a file that cannot be read (see `read_user_ratings`, `read_movies`).
    """
    path = Path(path)
    given = options.get("rating_range")
    scale = check_scale(given) if given is not None else None
    table = read_user_ratings(path, **options)
    frame = read_movies(movies) if movies is not None else None
    ds = build_dataset(path.stem, table, frame, rating_scale=scale)
    if frame is not None:
        untitled = int((ds.catalog.titles == "").sum())
        if untitled:
            warnings.warn(f"{untitled:,} of the {ds.n_items:,} rated movies are not in {movies}; "
                          f"they are shown without a title.", DataWarning, stacklevel=2)
    low, high = ds.rating_scale if ds.rating_scale is not None else (0.0, 0.0)
    if scale is None and low < high and (low, high) not in CONVENTIONAL_SCALES:
        warnings.warn(f"Ratings are read on the scale [{low:g}, {high:g}], the lowest and highest in the file; "
                      f"give rating_range LOW,HIGH when the scale is wider.", DataWarning, stacklevel=2)
    return ds
