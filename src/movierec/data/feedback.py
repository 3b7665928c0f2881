"""The feedback store: ratings people give on the web page, in a real SQLite database.

One row per (profile, movie): a later rating of the same movie by the same profile
replaces the earlier one. The database runs in WAL mode with `synchronous=FULL`, and
`add` commits before it returns, so an acknowledged rating survives a killed server
(and a power cut). Each thread gets its own connection (the connections of threads that
have ended are closed when the next one opens, so a server whose thread pool renews its
threads holds one per live thread); several processes (uvicorn workers) may share one
file (SQLite's own locking, with a busy timeout).

The database says what its ratings mean: the model's rating scale (stars from, to) and the
kind of its movie IDs ("int": whole numbers, "str": text), kept in its `meta` table and
enforced on every `add`. A store opened for a model records that model's scale and ID kind
on first use, and refuses a database that records another one (the ratings of another
model's scale or ID space would be read wrongly). A database written before this
(schema 1) records neither: it is read as the 0.5-5 stars of the page of that time with
whole-number movie IDs, and takes on the scale of the first model opening it when that
scale lies within 0.5-5 and every stored rating lies within it.

`export_movielens` writes the ratings as a MovieLens-format CSV
(userId,movieId,rating,timestamp), one user per profile, atomically (temp file, fsync,
rename), ready to be appended to the training data; `all_ratings` gives them to code
(`movierec retrain` turns each profile into a user).
"""

from __future__ import annotations

import csv
import json
import math
import re
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from movierec.data.atomic import atomic_write
from movierec.data._sqlite import SqliteFile
from movierec.errors import ConfigError

#: the layout this module writes: 2 records the scale and ID kind, and keeps text movie IDs as text
SCHEMA_VERSION = 2
#: how a schema-1 database (which records neither) is read
LEGACY_SCALE = (0.5, 5.0)
LEGACY_ID_KIND = "int"
#: the kinds of movie ID a database may hold: whole numbers or text
ID_KINDS = ("int", "str")
_PROFILE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
# movie_id has no declared type (no affinity): a text ID such as "042" stays text; schema 1
# declared INTEGER, which turns such texts into numbers, so it only ever holds whole numbers
_RATINGS = """
CREATE TABLE IF NOT EXISTS ratings (
    profile   TEXT    NOT NULL,
    movie_id          NOT NULL,
    rating    REAL    NOT NULL,
    timestamp INTEGER NOT NULL,
    UNIQUE (profile, movie_id)
);
"""
_META = "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
_UPSERT = ("INSERT INTO ratings (profile, movie_id, rating, timestamp) VALUES (?, ?, ?, ?) "
           "ON CONFLICT (profile, movie_id) DO UPDATE SET rating = excluded.rating, timestamp = excluded.timestamp")
_INT64 = (-(2**63), 2**63 - 1)


@dataclass(frozen=True)
class StoredRating:
    """One stored rating: raw movie ID (of the database's ID kind), stars (on its scale), Unix seconds."""

    movie_id: int | str
    rating: float
    timestamp: int


def check_profile(profile: str) -> str:
    """`profile` if it is a valid token (8..64 of A-Z a-z 0-9 _ -), else ConfigError."""
    if not isinstance(profile, str) or not _PROFILE.match(profile):
        raise ConfigError("A profile token is 8 to 64 letters, digits, '_' or '-'.")
    return profile


def scale_text(scale: tuple[float, float] | list[float] | None) -> str:
    """(1.0, 10.0) -> "1-10"; None -> "no"."""
    return "no" if scale is None else f"{float(scale[0]):g}-{float(scale[1]):g}"


def _kind_words(kind: str) -> str:
    return "whole-number" if kind == "int" else "text"


def _check_scale(scale: Any) -> tuple[float, float] | None:
    if scale is None:
        return None
    try:
        low, high = (float(v) for v in scale)
    except (TypeError, ValueError):
        raise ConfigError(f"A rating scale is two numbers (lowest, highest), got {scale!r}.") from None
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ConfigError(f"A rating scale needs two finite numbers, lowest first; got {scale!r}.")
    return low, high


def _same_scale(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return all(math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12) for x, y in zip(a, b))


def _id_kind_of(movie: Any) -> str:
    """"int" for a whole number (not a bool), "str" for a text, else ConfigError."""
    if isinstance(movie, (int, np.integer)) and not isinstance(movie, (bool, np.bool_)):
        return "int"
    if isinstance(movie, str):
        return "str"
    raise ConfigError(f"A movie ID is a whole number or a text, got {movie!r}.")


class FeedbackStore:
    """Ratings by profile token in a SQLite file (created with its folder when missing).

    Args:
        path: the database file.
        scale: the (lowest, highest) stars of the model the ratings are for; recorded on
            first use, and a database recording another scale is refused. None: take the
            database's (or, with none recorded, any finite stars).
        id_kind: the model's movie ID kind, "int" or "str"; recorded on first use (else
            by the first `add`), and a database recording another kind is refused.
        busy_timeout: seconds to wait for another writer (another worker) before failing.

    Raises:
        ConfigError: a file that is not a feedback database, or one recording another
            scale or ID kind than the given ones (the sentence names both).
    """

    def __init__(self, path: str | Path, *, scale: tuple[float, float] | None = None, id_kind: str | None = None,
                 busy_timeout: float = 10.0) -> None:
        self.path = Path(path)
        self.busy_timeout = busy_timeout
        scale = _check_scale(scale)
        if id_kind is not None and id_kind not in ID_KINDS:
            raise ConfigError(f"A movie ID kind is 'int' or 'str', got {id_kind!r}.")
        self._db = SqliteFile(self.path, busy_timeout=busy_timeout, what="feedback database")
        with self._db.opening() as conn:
            self._open(conn, scale, id_kind)

    def __repr__(self) -> str:
        return f"FeedbackStore({str(self.path)!r})"

    # -- opening ----------------------------------------------------------------------------
    def _open(self, conn: sqlite3.Connection, scale: tuple[float, float] | None, id_kind: str | None) -> None:
        """Create the tables of a new database, read what an old one records, and record
        (or check) the given scale and ID kind; inside one write transaction."""
        existed = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'ratings'").fetchone()
        conn.execute(_META)
        if existed is None:
            conn.execute(_RATINGS)
            self._record(conn, "schema_version", str(SCHEMA_VERSION))
        recorded = self._read_meta(conn)
        legacy = recorded["schema_version"] < 2
        if scale is not None:
            have = recorded["rating_scale"]
            if have is not None and not legacy and not _same_scale(tuple(have), scale):
                raise ConfigError(f"{self.path} holds ratings on the {scale_text(have)} scale; this model rates on "
                                  f"{scale_text(scale)}, so it needs a feedback database of its own.")
            if have is None or legacy:
                self._adopt_scale(conn, scale, legacy)
        if id_kind is not None:
            have_kind = recorded["id_kind"]
            if have_kind is not None and have_kind != id_kind and not (legacy and self._count(conn) == 0):
                raise ConfigError(f"{self.path} holds ratings of {_kind_words(have_kind)} movie IDs; this model's "
                                  f"movie IDs are {_kind_words(id_kind)}, so it needs a feedback database of its own.")
            if have_kind != id_kind or legacy:
                self._adopt_kind(conn, id_kind)
        if legacy and (scale is not None or id_kind is not None):
            self._record(conn, "schema_version", str(SCHEMA_VERSION))
        meta = self._read_meta(conn)
        self._scale = tuple(meta["rating_scale"]) if meta["rating_scale"] is not None else None
        self._kind = meta["id_kind"]

    def _adopt_scale(self, conn: sqlite3.Connection, scale: tuple[float, float], legacy: bool) -> None:
        """Record `scale` in a database that records none: refused when a stored rating lies
        outside it, or when a schema-1 database (whose page took 0.5-5 stars) holds ratings
        and the scale reaches beyond 0.5-5 (its stars would be read on another scale)."""
        low, high = scale
        if legacy and self._count(conn) and (low < LEGACY_SCALE[0] or high > LEGACY_SCALE[1]):
            raise ConfigError(f"{self.path} holds ratings on the {scale_text(LEGACY_SCALE)} scale; this model rates "
                              f"on {scale_text(scale)}, so it needs a feedback database of its own.")
        outside = conn.execute("SELECT rating FROM ratings WHERE rating < ? OR rating > ? LIMIT 1",
                               (low, high)).fetchone()
        if outside is not None:
            raise ConfigError(f"{self.path} holds a rating of {float(outside[0]):g} stars, off this model's "
                              f"{scale_text(scale)} scale, so it needs a feedback database of its own.")
        self._record(conn, "rating_scale", json.dumps([float(low), float(high)]))

    def _adopt_kind(self, conn: sqlite3.Connection, kind: str) -> None:
        """Record `kind` in a database that records none (or an empty schema-1 one, whose
        whole-number column is made anew for text IDs); refused when a stored ID is of the
        other kind."""
        other = "text" if kind == "int" else "integer"
        found = conn.execute(f"SELECT movie_id FROM ratings WHERE typeof(movie_id) = '{other}' LIMIT 1").fetchone()
        if found is not None:
            raise ConfigError(f"{self.path} holds ratings of {_kind_words('str' if kind == 'int' else 'int')} movie "
                              f"IDs; this model's movie IDs are {_kind_words(kind)}, so it needs a feedback database "
                              "of its own.")
        if kind == "str" and self._integer_column(conn) and self._count(conn) == 0:  # make it anew, without affinity
            conn.execute("DROP TABLE ratings")
            conn.execute(_RATINGS)
        self._record(conn, "id_kind", kind)

    @staticmethod
    def _record(conn: sqlite3.Connection, key: str, value: str) -> None:
        conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    @staticmethod
    def _integer_column(conn: sqlite3.Connection) -> bool:
        """Whether movie_id is declared INTEGER (schema 1), which turns numeric texts into numbers."""
        return any(row[1] == "movie_id" and str(row[2]).upper() == "INTEGER"
                   for row in conn.execute("PRAGMA table_info(ratings)").fetchall())

    @staticmethod
    def _count(conn: sqlite3.Connection) -> int:
        return int(conn.execute("SELECT COUNT(*) FROM ratings").fetchone()[0])

    @staticmethod
    def _read_meta(conn: sqlite3.Connection) -> dict[str, Any]:
        rows = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        try:
            version = int(rows.get("schema_version", "1"))
        except ValueError:
            version = 1
        try:
            scale = json.loads(rows["rating_scale"]) if "rating_scale" in rows else None
            scale = None if scale is None else [float(scale[0]), float(scale[1])]
        except (ValueError, TypeError, IndexError, KeyError):
            raise ConfigError(f"This feedback database records an unreadable rating scale "
                              f"({str(rows['rating_scale'])[:40]!r}).") from None
        kind = rows.get("id_kind")
        if version < 2:
            scale = scale or [float(v) for v in LEGACY_SCALE]
            kind = kind or LEGACY_ID_KIND
        return {"schema_version": version, "rating_scale": scale, "id_kind": kind}

    def _conn(self) -> sqlite3.Connection:
        return self._db.conn()

    @property
    def open_connections(self) -> int:
        """Connections this store holds open (at most one per thread that used it and was
        alive when the last connection opened)."""
        return self._db.open_connections

    @property
    def rating_scale(self) -> tuple[float, float] | None:
        """The (lowest, highest) stars this database holds, or None when it records none."""
        return self._scale  # type: ignore[return-value]

    @property
    def id_kind(self) -> str | None:
        """The kind of movie ID this database holds ("int" or "str"), or None before any is recorded."""
        return self._kind

    def meta(self) -> dict[str, Any]:
        """What the database records: {"schema_version": int, "rating_scale": [low, high]
        or None, "id_kind": "int", "str" or None} (a schema-1 database: [0.5, 5.0], "int")."""
        return self._read_meta(self._conn())

    # -- ratings ------------------------------------------------------------------------------
    def _check_rating(self, movie: Any, stars: Any, scale: tuple[float, float] | None) -> float:
        if isinstance(stars, (bool, np.bool_)) or not isinstance(stars, (int, float, np.integer, np.floating)):
            raise ConfigError(f"The rating of movie {movie} must be a number of stars, got {stars!r}.")
        value = float(stars)
        if not math.isfinite(value):
            raise ConfigError(f"The rating of movie {movie} must be a finite number of stars, got {stars!r}.")
        if scale is not None and not scale[0] <= value <= scale[1]:
            raise ConfigError(f"Ratings in this feedback database lie in [{scale[0]:g}, {scale[1]:g}]; got {value:g} "
                              f"for movie {movie}.")
        return value

    def _check_movie(self, movie: Any, kind: str) -> int | str:
        found = _id_kind_of(movie)
        if found != kind:
            raise ConfigError(f"This feedback database holds {_kind_words(kind)} movie IDs; got {movie!r}.")
        if kind == "int":
            movie = int(movie)
            if not _INT64[0] <= movie <= _INT64[1]:
                raise ConfigError(f"Movie ID {movie} does not fit 64 bits.")
        return movie

    def add(self, profile: str, ratings: Iterable[tuple[int | str, float]], timestamp: int | None = None) -> int:
        """Store (movie ID, stars) pairs for `profile`, replacing earlier ratings of those movies.

        Committed (and synced to disk) before it returns; nothing is stored when one pair
        is refused.

        Args:
            profile: the profile token.
            ratings: (raw movie ID of the database's kind, finite stars on its scale)
                pairs; a movie given twice keeps its last rating. A database that records
                no ID kind yet records that of these IDs.
            timestamp: Unix seconds to record (default: now).

        Returns:
            How many distinct movies were stored.

        Raises:
            ConfigError: for a bad token, a movie ID of the other kind, or stars that are
                not finite or lie off the scale.
        """
        check_profile(profile)
        pairs = list(ratings)
        if not pairs:
            return 0
        ts = int(time.time()) if timestamp is None else int(timestamp)
        kind = self._kind
        if kind is None:  # checked again inside the transaction: another worker may record it first
            kinds = {_id_kind_of(movie) for movie, _ in pairs}
            if len(kinds) > 1:
                raise ConfigError("Give movie IDs of one kind: all whole numbers or all text.")
            kind = kinds.pop()
        rows = {self._check_movie(movie, kind): self._check_rating(movie, stars, self._scale)
                for movie, stars in pairs}
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            if self._kind is None:
                recorded = self._read_meta(conn)["id_kind"]
                if recorded is not None and recorded != kind:
                    raise ConfigError(f"This feedback database holds {_kind_words(recorded)} movie IDs; got "
                                      f"{next(iter(rows))!r}.")
                if recorded is None:
                    self._adopt_kind(conn, kind)
                self._kind = kind
            conn.executemany(_UPSERT, [(profile, movie, stars, ts) for movie, stars in rows.items()])
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return len(rows)

    def _movie(self, value: Any) -> int | str:
        """A stored movie ID as the database's kind spells it."""
        if self._kind == "str":
            return str(value)
        return int(value) if isinstance(value, (int, float)) else value

    def ratings(self, profile: str) -> list[StoredRating]:
        """The profile's ratings, oldest first (then by movie ID); [] for an unknown profile."""
        check_profile(profile)
        cur = self._conn().execute(
            "SELECT movie_id, rating, timestamp FROM ratings WHERE profile = ? ORDER BY timestamp, movie_id",
            (profile,))
        return [StoredRating(self._movie(m), float(r), int(t)) for m, r, t in cur.fetchall()]

    def profiles(self) -> list[str]:
        """Every profile with a rating, in order of its first stored rating."""
        cur = self._conn().execute("SELECT profile FROM ratings GROUP BY profile ORDER BY MIN(rowid), profile")
        return [row[0] for row in cur.fetchall()]

    def count(self) -> int:
        """Stored ratings in total."""
        return self._count(self._conn())

    def all_ratings(self) -> list[tuple[str, int | str, float, int]]:
        """Every rating as (profile, movie ID, stars, Unix seconds), by time then in the order
        stored."""
        rows = self._conn().execute(
            "SELECT profile, movie_id, rating, timestamp FROM ratings ORDER BY timestamp, rowid").fetchall()
        return [(p, self._movie(m), float(r), int(t)) for p, m, r, t in rows]

    def export_movielens(self, path: str | Path, user_offset: int = 0) -> dict[str, int]:
        """Write every rating as a MovieLens CSV (userId,movieId,rating,timestamp), atomically.

        Profiles become users `user_offset + 1`, `user_offset + 2`, ... in order of their
        first rating (give the training data's largest user ID as the offset, so the new
        users do not collide with it).

        Returns:
            profile token -> the user ID it was written as.
        """
        if isinstance(user_offset, bool) or not isinstance(user_offset, int) or user_offset < 0:
            raise ConfigError(f"The user offset must be a whole number >= 0, got {user_offset!r}.")
        path = Path(path)
        users = {p: user_offset + i + 1 for i, p in enumerate(self.profiles())}
        with atomic_write(path, newline="") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(["userId", "movieId", "rating", "timestamp"])
            for profile, movie, rating, ts in self.all_ratings():
                writer.writerow([users[profile], movie, f"{rating:g}", ts])
        return users

    def close(self) -> None:
        """Close every connection this store opened (in any thread)."""
        self._db.close()


__all__ = ["FeedbackStore", "StoredRating", "check_profile", "scale_text", "SCHEMA_VERSION", "LEGACY_SCALE",
           "LEGACY_ID_KIND", "ID_KINDS"]
