"""The A/B log: what each experiment showed whom (impressions) and which shown movies
were rated afterwards (outcomes), in the feedback store's SQLite file, in tables of its own.

Tables (beside `movierec.data.feedback`'s `ratings` and `meta`):

- `ab_experiments`: one row per experiment name, with the definition that decides who sees
  what (salt, interleave, variant names and shares) as JSON; an experiment restarted with
  another definition under the same name is refused (its people would change variants).
- `ab_impressions`: one row per list shown: experiment, variant, person ("user:42" or
  "profile:<token>"), the model version, the movie IDs shown in order (JSON), the team of
  each (JSON, interleaved lists only), Unix seconds.
- `ab_outcomes`: one row per (impression, movie) rated after it was shown: the stars and
  Unix seconds (a later rating of the same movie replaces them). A rating is credited to
  the person's latest impression that showed the movie.

Writes are durable like the feedback store's: WAL, `synchronous=FULL`, committed before
the call returns; one connection per thread; several worker processes may share the file.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from movierec.data._sqlite import SqliteFile
from movierec.errors import ConfigError

_TABLES = """
CREATE TABLE IF NOT EXISTS ab_experiments (
    name       TEXT PRIMARY KEY,
    definition TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS ab_impressions (
    id         INTEGER PRIMARY KEY,
    experiment TEXT NOT NULL,
    variant    TEXT NOT NULL,
    person     TEXT NOT NULL,
    version    TEXT,
    movies     TEXT NOT NULL,
    teams      TEXT,
    shown_at   REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS ab_impressions_person ON ab_impressions (person, shown_at);
CREATE TABLE IF NOT EXISTS ab_outcomes (
    impression INTEGER NOT NULL REFERENCES ab_impressions (id),
    movie      TEXT NOT NULL,
    rating     REAL NOT NULL,
    rated_at   REAL NOT NULL,
    UNIQUE (impression, movie)
);
"""
_UPSERT = ("INSERT INTO ab_outcomes (impression, movie, rating, rated_at) VALUES (?, ?, ?, ?) "
           "ON CONFLICT (impression, movie) DO UPDATE SET rating = excluded.rating, rated_at = excluded.rated_at")
_INSERT_IMPRESSION = ("INSERT INTO ab_impressions (experiment, variant, person, version, movies, teams, shown_at) "
                      "VALUES (?, ?, ?, ?, ?, ?, ?)")
#: the latest impressions of a person looked through for a rated movie
LOOKBACK = 500


def movie_key(movie: Any) -> str:
    """A raw movie ID as the log keeps it (JSON text: 42 and "42" stay apart)."""
    return json.dumps(movie)


@dataclass(frozen=True)
class Impression:
    """One list shown: `movies` are raw movie IDs in order; `teams` the variant that drafted
    each (interleaved lists) or None; `ratings` movie key (`movie_key`) -> stars given later."""

    id: int
    experiment: str
    variant: str
    person: str
    version: str | None
    movies: list[Any]
    teams: list[str] | None
    shown_at: float
    ratings: dict[str, float]


class AbLog:
    """Impressions and outcomes of experiments in a SQLite file (created when missing).

    Args:
        path: the database file (the feedback store's, usually).
        busy_timeout: seconds to wait for another writer before failing.
        durable: sync every write to disk (`synchronous=FULL`, the service's setting);
            False (`synchronous=NORMAL`: the file stays consistent, but a power cut may lose
            the last writes) for bulk writes such as simulations.

    Raises:
        ConfigError: a file that is not a SQLite database.
    """

    def __init__(self, path: str | Path, *, busy_timeout: float = 10.0, durable: bool = True) -> None:
        self.path = Path(path)
        self.busy_timeout = busy_timeout
        self.durable = durable
        self._db = SqliteFile(self.path, busy_timeout=busy_timeout, durable=durable, what="feedback database")
        with self._db.opening() as conn:
            for statement in _TABLES.split(";"):
                if statement.strip():
                    conn.execute(statement)

    def __repr__(self) -> str:
        return f"AbLog({str(self.path)!r})"

    def _conn(self) -> sqlite3.Connection:
        return self._db.conn()

    def _write(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> list[int | None]:
        """Run `statements` in one committed transaction; returns each one's last row ID."""
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            ids = [conn.execute(sql, args).lastrowid for sql, args in statements]
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return ids

    # -- writing ------------------------------------------------------------------------------
    def register(self, name: str, definition: dict[str, Any]) -> None:
        """Record experiment `name` with `definition` (JSON-able), or check it against the one
        recorded.

        Raises:
            ConfigError: the name was logged with another definition.
        """
        text = json.dumps(definition, sort_keys=True)
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = conn.execute("SELECT definition FROM ab_experiments WHERE name = ?", (name,)).fetchone()
            if row is None:
                conn.execute("INSERT INTO ab_experiments (name, definition) VALUES (?, ?)", (name, text))
            elif json.loads(row[0]) != json.loads(text):
                raise ConfigError(f"The experiment {name!r} was logged in {self.path} with other variants, shares or "
                                  "salt; give the changed experiment a new name.")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def impression(self, experiment: str, variant: str, person: str, version: str | None, movies: Sequence[Any],
                   teams: Sequence[str] | None, shown_at: float) -> int:
        """Log one list shown (committed before it returns); returns its ID."""
        return self.impressions_shown([(experiment, variant, person, version, movies, teams, shown_at)])[0]

    def impressions_shown(self, shown: Sequence[tuple[str, str, str, str | None, Sequence[Any],
                                                       Sequence[str] | None, float]]) -> list[int]:
        """Log several lists shown (each one `impression`'s arguments, in order) in one
        committed transaction (a batch of people: all logged, or none); returns their IDs."""
        rows = self._write([(_INSERT_IMPRESSION, (experiment, variant, person, version, json.dumps(list(movies)),
                                                  None if teams is None else json.dumps(list(teams)), float(at)))
                            for experiment, variant, person, version, movies, teams, at in shown])
        assert all(row is not None for row in rows)
        return [int(row) for row in rows if row is not None]

    def outcomes(self, person: str, ratings: Sequence[tuple[Any, float]], rated_at: float) -> int:
        """Log `person`'s ratings (raw movie ID, stars) given at `rated_at` as outcomes of the
        latest impression (shown at or before then) that showed each movie; ratings of movies
        never shown are left out. Returns how many were outcomes."""
        rows = self._conn().execute(
            "SELECT id, movies FROM ab_impressions WHERE person = ? AND shown_at <= ? ORDER BY shown_at DESC, id DESC "
            "LIMIT ?", (person, float(rated_at), LOOKBACK)).fetchall()
        if not rows:
            return 0
        where: dict[str, int] = {}
        for impression, movies in reversed(rows):  # oldest first: a later impression overrides
            for movie in json.loads(movies):
                where[movie_key(movie)] = impression
        found = [(where[movie_key(m)], movie_key(m), float(stars), float(rated_at))
                 for m, stars in ratings if movie_key(m) in where]
        if found:
            self._write([(_UPSERT, row) for row in found])
        return len(found)

    # -- reading ------------------------------------------------------------------------------
    def experiments(self) -> dict[str, dict[str, Any]]:
        """Experiment name -> its recorded definition, by name."""
        rows = self._conn().execute("SELECT name, definition FROM ab_experiments ORDER BY name").fetchall()
        return {name: json.loads(text) for name, text in rows}

    def impressions(self, experiment: str) -> list[Impression]:
        """Every impression of `experiment`, oldest first, with the ratings given to its movies."""
        conn = self._conn()
        rated: dict[int, dict[str, float]] = {}
        for impression, movie, rating in conn.execute(
                "SELECT o.impression, o.movie, o.rating FROM ab_outcomes o JOIN ab_impressions i "
                "ON i.id = o.impression WHERE i.experiment = ?", (experiment,)):
            rated.setdefault(int(impression), {})[movie] = float(rating)
        rows = conn.execute("SELECT id, experiment, variant, person, version, movies, teams, shown_at "
                            "FROM ab_impressions WHERE experiment = ? ORDER BY shown_at, id", (experiment,)).fetchall()
        return [Impression(int(i), e, v, p, ver, json.loads(m), None if t is None else json.loads(t), float(at),
                           rated.get(int(i), {})) for i, e, v, p, ver, m, t, at in rows]

    def close(self) -> None:
        """Close every connection this log opened (in any thread)."""
        self._db.close()


def has_log(path: str | Path) -> bool:
    """Whether the SQLite file at `path` holds an A/B log (without creating anything)."""
    path = Path(path)
    if not path.is_file():
        return False
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            row = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'ab_impressions'"
                               ).fetchone()
        finally:
            conn.close()
    except sqlite3.DatabaseError:
        return False
    return row is not None


__all__ = ["AbLog", "Impression", "movie_key", "has_log", "LOOKBACK"]
