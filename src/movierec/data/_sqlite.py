"""One SQLite file shared by threads and processes: the plumbing of the feedback store and
the A/B log (`movierec.data.feedback`, `movierec.data.ab_log`).

WAL mode, a busy timeout for other writers (other uvicorn workers), one connection per
thread (those of threads that have ended are closed when the next one opens), and
transactions that commit before they return (`synchronous=FULL` when durable: an
acknowledged write survives a killed process and a power cut).
"""

from __future__ import annotations

import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from movierec.errors import ConfigError


class SqliteFile:
    """Per-thread connections to one SQLite file (created with its folder when missing).

    Args:
        path: the database file.
        busy_timeout: seconds to wait for another writer before failing.
        durable: `synchronous=FULL` (True) or NORMAL.
        what: how errors name the file ("feedback database").
    """

    def __init__(self, path: str | Path, *, busy_timeout: float = 10.0, durable: bool = True,
                 what: str = "database") -> None:
        self.path = Path(path)
        self.busy_timeout = busy_timeout
        self.durable = durable
        self.what = what
        self._local = threading.local()
        self._all: list[tuple[threading.Thread, sqlite3.Connection]] = []
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists() and not self.path.is_file():
            raise ConfigError(f"{self.path} is a folder, not a {what} file.")

    def conn(self) -> sqlite3.Connection:
        """This thread's connection (opened on first use)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None,
                                   check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={'FULL' if self.durable else 'NORMAL'}")
            conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout * 1000)}")
            self._local.conn = conn
            with self._lock:
                ended = [c for thread, c in self._all if not thread.is_alive()]
                self._all = [(thread, c) for thread, c in self._all if thread.is_alive()]
                self._all.append((threading.current_thread(), conn))
            for old in ended:  # their threads are gone: nothing uses them any more
                old.close()
        return conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT around the block (ROLLBACK when it raises)."""
        conn = self.conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    @contextmanager
    def opening(self) -> Iterator[sqlite3.Connection]:
        """A transaction that creates or checks the schema: a file that is not SQLite is a
        ConfigError naming it, and every connection is closed on any failure."""
        try:
            with self.transaction() as conn:
                yield conn
        except sqlite3.DatabaseError as exc:
            self.close()
            raise ConfigError(f"{self.path} is not a {self.what} ({exc}).") from None
        except BaseException:
            self.close()
            raise

    @property
    def open_connections(self) -> int:
        """Connections held open (at most one per thread that used the file and was alive
        when the last connection opened)."""
        with self._lock:
            return len(self._all)

    def close(self) -> None:
        """Close every connection (in any thread)."""
        with self._lock:
            conns, self._all = [c for _, c in self._all], []
        for conn in conns:
            try:
                conn.close()
            except sqlite3.Error:  # pragma: no cover - closing twice
                pass
        self._local = threading.local()
