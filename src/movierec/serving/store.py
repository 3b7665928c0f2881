"""The feedback store: ratings people give on the web page, in a real SQLite database.

One row per (profile, movie): a later rating of the same movie by the same profile
replaces the earlier one. The database runs in WAL mode with `synchronous=FULL`, and
`add` commits before it returns, so an acknowledged rating survives a killed server
(and a power cut). Each thread gets its own connection (the connections of threads that
have ended are closed when the next one opens, so a server whose thread pool renews its
threads holds one per live thread); several processes (uvicorn workers) may share one
file (SQLite's own locking, with a busy timeout).

`export_movielens` writes the ratings as a MovieLens-format CSV
(userId,movieId,rating,timestamp), one user per profile, atomically (temp file, fsync,
rename), ready to be appended to the training data.
"""

from __future__ import annotations

import csv
import re
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from movierec.data.atomic import atomic_write
from movierec.errors import ConfigError

SCHEMA_VERSION = 1
_PROFILE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS ratings (
    profile   TEXT    NOT NULL,
    movie_id  INTEGER NOT NULL,
    rating    REAL    NOT NULL,
    timestamp INTEGER NOT NULL,
    UNIQUE (profile, movie_id)
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
_UPSERT = ("INSERT INTO ratings (profile, movie_id, rating, timestamp) VALUES (?, ?, ?, ?) "
           "ON CONFLICT (profile, movie_id) DO UPDATE SET rating = excluded.rating, timestamp = excluded.timestamp")


@dataclass(frozen=True)
class StoredRating:
    """One stored rating: raw movie ID, stars (0.5..5), Unix seconds."""

    movie_id: int
    rating: float
    timestamp: int


def check_profile(profile: str) -> str:
    """`profile` if it is a valid token (8..64 of A-Z a-z 0-9 _ -), else ConfigError."""
    if not isinstance(profile, str) or not _PROFILE.match(profile):
        raise ConfigError("A profile token is 8 to 64 letters, digits, '_' or '-'.")
    return profile


def _check_rating(rating: float) -> float:
    value = float(rating)
    if not (0.5 <= value <= 5.0) or value * 2 != int(value * 2):
        raise ConfigError(f"A rating is 0.5 to 5 stars in steps of 0.5, got {rating!r}.")
    return value


class FeedbackStore:
    """Ratings by profile token in a SQLite file (created with its folder when missing).

    Args:
        path: the database file.
        busy_timeout: seconds to wait for another writer (another worker) before failing.
    """

    def __init__(self, path: str | Path, *, busy_timeout: float = 10.0) -> None:
        self.path = Path(path)
        self.busy_timeout = busy_timeout
        self._local = threading.local()
        self._all: list[tuple[threading.Thread, sqlite3.Connection]] = []
        self._all_lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists() and not self.path.is_file():
            raise ConfigError(f"{self.path} is a folder, not a feedback database file.")
        try:
            conn = self._conn()
            conn.executescript("BEGIN;" + _SCHEMA + "COMMIT;")
            conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        except sqlite3.DatabaseError as exc:
            self.close()
            raise ConfigError(f"{self.path} is not a feedback database ({exc}).") from None

    def __repr__(self) -> str:
        return f"FeedbackStore({str(self.path)!r})"

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None,
                                   check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout * 1000)}")
            self._local.conn = conn
            with self._all_lock:
                ended = [c for thread, c in self._all if not thread.is_alive()]
                self._all = [(thread, c) for thread, c in self._all if thread.is_alive()]
                self._all.append((threading.current_thread(), conn))
            for old in ended:  # their threads are gone: nothing uses them any more
                old.close()
        return conn

    @property
    def open_connections(self) -> int:
        """Connections this store holds open (at most one per thread that used it and was
        alive when the last connection opened)."""
        with self._all_lock:
            return len(self._all)

    def add(self, profile: str, ratings: Iterable[tuple[int, float]], timestamp: int | None = None) -> int:
        """Store (movie ID, stars) pairs for `profile`, replacing earlier ratings of those movies.

        Committed (and synced to disk) before it returns.

        Args:
            profile: the profile token.
            ratings: (raw movie ID, rating 0.5..5 in steps of 0.5) pairs; a movie given
                twice keeps its last rating.
            timestamp: Unix seconds to record (default: now).

        Returns:
            How many distinct movies were stored.

        Raises:
            ConfigError: for a bad token or rating.
        """
        check_profile(profile)
        rows = {int(movie): _check_rating(stars) for movie, stars in ratings}
        if not rows:
            return 0
        ts = int(time.time()) if timestamp is None else int(timestamp)
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(_UPSERT, [(profile, movie, stars, ts) for movie, stars in rows.items()])
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return len(rows)

    def ratings(self, profile: str) -> list[StoredRating]:
        """The profile's ratings, oldest first (then by movie ID); [] for an unknown profile."""
        check_profile(profile)
        cur = self._conn().execute(
            "SELECT movie_id, rating, timestamp FROM ratings WHERE profile = ? ORDER BY timestamp, movie_id", (profile,))
        return [StoredRating(int(m), float(r), int(t)) for m, r, t in cur.fetchall()]

    def profiles(self) -> list[str]:
        """Every profile with a rating, in order of its first stored rating."""
        cur = self._conn().execute("SELECT profile FROM ratings GROUP BY profile ORDER BY MIN(rowid), profile")
        return [row[0] for row in cur.fetchall()]

    def count(self) -> int:
        """Stored ratings in total."""
        return int(self._conn().execute("SELECT COUNT(*) FROM ratings").fetchone()[0])

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
        rows = self._conn().execute(
            "SELECT profile, movie_id, rating, timestamp FROM ratings ORDER BY timestamp, rowid").fetchall()
        with atomic_write(path, newline="") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(["userId", "movieId", "rating", "timestamp"])
            for profile, movie, rating, ts in rows:
                writer.writerow([users[profile], int(movie), f"{float(rating):g}", int(ts)])
        return users

    def close(self) -> None:
        """Close every connection this store opened (in any thread)."""
        with self._all_lock:
            conns, self._all = [c for _, c in self._all], []
        for conn in conns:
            try:
                conn.close()
            except sqlite3.Error:  # pragma: no cover - closing twice
                pass
        self._local = threading.local()


__all__ = ["FeedbackStore", "StoredRating", "check_profile", "SCHEMA_VERSION"]
