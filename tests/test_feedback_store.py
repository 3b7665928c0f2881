"""The SQLite feedback store: durable settings, upserts, validation, concurrency, export."""

from __future__ import annotations

import csv
import sqlite3
import threading

import pytest

from movierec.errors import ConfigError
from movierec.serving.store import FeedbackStore


@pytest.fixture
def store(tmp_path):
    s = FeedbackStore(tmp_path / "fb" / "feedback.sqlite3")
    yield s
    s.close()


def test_durable_settings(store):
    conn = sqlite3.connect(store.path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()
    # synchronous is per connection: the store's own connections sync every commit (FULL = 2)
    assert store._conn().execute("PRAGMA synchronous").fetchone()[0] == 2


def test_add_replaces_and_lists(store):
    assert store.add("profile-aaaa", [(50, 5), (100, 3.5)], timestamp=100) == 2
    assert store.add("profile-aaaa", [(100, 4.5), (100, 1), (1, 2)], timestamp=200) == 2  # last rating of 100 wins
    assert [(r.movie_id, r.rating, r.timestamp) for r in store.ratings("profile-aaaa")] == [
        (50, 5.0, 100), (1, 2.0, 200), (100, 1.0, 200)]
    assert store.ratings("profile-bbbb") == []
    assert store.count() == 3 and store.profiles() == ["profile-aaaa"]


def test_an_acknowledged_rating_is_committed(store, tmp_path):
    store.add("profile-aaaa", [(50, 5)])
    other = sqlite3.connect(store.path)  # another connection (another process) sees it at once
    assert other.execute("SELECT movie_id, rating FROM ratings").fetchall() == [(50, 5.0)]
    other.close()
    store.close()
    again = FeedbackStore(store.path)
    assert [(r.movie_id, r.rating) for r in again.ratings("profile-aaaa")] == [(50, 5.0)]
    again.close()


@pytest.mark.parametrize("profile", ["short", "x" * 65, "has space", "semi;colon", "", None])
def test_bad_profiles_are_refused(store, profile):
    with pytest.raises(ConfigError, match="profile token"):
        store.add(profile, [(1, 4)])


@pytest.mark.parametrize("rating", [0, 0.25, 4.25, 5.5, -1, float("nan")])
def test_bad_ratings_are_refused_and_nothing_is_stored(store, rating):
    with pytest.raises(ConfigError, match="0.5 to 5 stars"):
        store.add("profile-aaaa", [(1, 4), (2, rating)])
    assert store.count() == 0


def test_concurrent_writers_lose_nothing(store):
    other = FeedbackStore(store.path)  # a second store on the file, as a second worker has
    errors = []

    def write(s: FeedbackStore, n: int) -> None:
        try:
            for movie in range(1, 31):
                s.add(f"writer-{n:04d}", [(movie, 0.5 + movie % 10 / 2)])
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(store if n % 2 else other, n)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    other.close()
    assert not errors
    assert store.count() == 8 * 30
    assert len(store.profiles()) == 8


def test_export_movielens(store, tmp_path):
    store.add("second-profile", [(10, 4)], timestamp=50)  # first rating: first user
    store.add("first-profile", [(20, 2.5), (30, 5)], timestamp=60)
    store.add("second-profile", [(40, 1)], timestamp=70)
    out = tmp_path / "out" / "ratings.csv"
    out.parent.mkdir()
    out.write_text("old content")
    users = store.export_movielens(out, user_offset=943)
    assert users == {"second-profile": 944, "first-profile": 945}
    rows = list(csv.reader(out.open()))
    assert rows[0] == ["userId", "movieId", "rating", "timestamp"]
    assert rows[1:] == [["944", "10", "4", "50"], ["945", "20", "2.5", "60"], ["945", "30", "5", "60"],
                        ["944", "40", "1", "70"]]
    assert [p.name for p in out.parent.iterdir()] == ["ratings.csv"]  # no temp file left behind
    with pytest.raises(ConfigError, match="offset"):
        store.export_movielens(out, user_offset=-1)


def test_the_export_reads_back_as_movielens(store, tmp_path):
    from movierec.data import load_ratings

    store.add("profile-aaaa", [(50, 5), (100, 3.5)], timestamp=1_000)
    store.add("profile-bbbb", [(50, 2)], timestamp=2_000)
    out = tmp_path / "ratings.csv"
    store.export_movielens(out)
    ds = load_ratings(out)
    assert ds.n_ratings == 3 and sorted(ds.users.raw_ids.tolist()) == [1, 2]


def test_not_a_database(tmp_path):
    bad = tmp_path / "feedback.sqlite3"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(ConfigError, match="not a feedback database"):
        FeedbackStore(bad)
    with pytest.raises(ConfigError, match="folder"):
        FeedbackStore(tmp_path)
