"""The SQLite feedback store: durable settings, upserts, validation, concurrency, export;
the scale and movie ID kind it records and enforces, and databases of schema 1."""

from __future__ import annotations

import csv
import sqlite3
import threading

import pytest

from movierec.errors import ConfigError
from movierec.data.feedback import FeedbackStore


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


@pytest.mark.parametrize("rating", [0, 0.25, 5.5, -1, float("nan"), float("inf"), True, "4"])
def test_bad_ratings_are_refused_and_nothing_is_stored(tmp_path, rating):
    store = FeedbackStore(tmp_path / "fb.sqlite3", scale=(0.5, 5), id_kind="int")
    with pytest.raises(ConfigError, match="rating|Ratings"):
        store.add("profile-aaaa", [(1, 4), (2, rating)])
    assert store.count() == 0
    assert store.add("profile-aaaa", [(1, 4.25)]) == 1  # any stars on the scale: steps are the page's business
    store.close()


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


# -- the scale and movie ID kind ------------------------------------------------------------
_SCHEMA_1 = """
CREATE TABLE ratings (profile TEXT NOT NULL, movie_id INTEGER NOT NULL, rating REAL NOT NULL,
                      timestamp INTEGER NOT NULL, UNIQUE (profile, movie_id));
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO meta (key, value) VALUES ('schema_version', '1');
"""


def schema_1_database(path, rows=(("profile-aaaa", 50, 4.5, 100), ("profile-aaaa", 1, 1.0, 200))):
    """A database as the store wrote it before it recorded a scale (schema 1)."""
    conn = sqlite3.connect(path)
    conn.executescript(_SCHEMA_1)
    conn.executemany("INSERT INTO ratings VALUES (?, ?, ?, ?)", rows)
    conn.commit()
    conn.close()
    return path


def test_a_model_scale_and_id_kind_are_recorded_and_enforced(tmp_path):
    path = tmp_path / "fb.sqlite3"
    store = FeedbackStore(path, scale=(1, 10), id_kind="str")
    assert store.meta() == {"schema_version": 2, "rating_scale": [1.0, 10.0], "id_kind": "str"}
    assert store.add("profile-aaaa", [("tt0000050", 10), ("tt0000001", 1)], timestamp=5) == 2
    for bad, words in (([("tt0000050", 11)], r"lie in \[1, 10\]; got 11 for movie tt0000050"),
                       ([("tt0000050", 0.5)], r"lie in \[1, 10\]"),
                       ([(50, 7)], "holds text movie IDs; got 50")):
        with pytest.raises(ConfigError, match=words):
            store.add("profile-bbbb", bad)
    store.close()
    again = FeedbackStore(path, scale=(1.0, 10.0), id_kind="str")  # the same model: opens
    assert [(r.movie_id, r.rating) for r in again.ratings("profile-aaaa")] == [("tt0000001", 1.0), ("tt0000050", 10.0)]
    again.close()
    plain = FeedbackStore(path)  # without a model (e.g. export): takes what the database records
    assert (plain.rating_scale, plain.id_kind) == ((1.0, 10.0), "str")
    with pytest.raises(ConfigError, match="lie in"):
        plain.add("profile-aaaa", [("tt0000002", 12)])
    plain.close()
    with pytest.raises(ConfigError, match=f"^{path} holds ratings on the 1-10 scale; this model rates on 0.5-5, so"):
        FeedbackStore(path, scale=(0.5, 5), id_kind="str")
    with pytest.raises(ConfigError, match="holds ratings of text movie IDs; this model's movie IDs are whole-number"):
        FeedbackStore(path, scale=(1, 10), id_kind="int")
    assert FeedbackStore(path).count() == 2  # refusals change nothing


def test_text_ids_stay_text(tmp_path):
    """A text ID that looks like a number ("042") comes back as the same text, never 42."""
    store = FeedbackStore(tmp_path / "fb.sqlite3", scale=(1, 5), id_kind="str")
    store.add("profile-aaaa", [("042", 4), ("42", 2), ("1e3", 3)], timestamp=1)
    assert [r.movie_id for r in store.ratings("profile-aaaa")] == ["042", "1e3", "42"]
    assert store.count() == 3
    store.close()


def test_the_first_add_records_the_id_kind_when_none_is_given(tmp_path):
    store = FeedbackStore(tmp_path / "fb.sqlite3")
    assert store.meta() == {"schema_version": 2, "rating_scale": None, "id_kind": None}
    with pytest.raises(ConfigError, match="one kind"):
        store.add("profile-aaaa", [(1, 4), ("tt1", 4)])
    store.add("profile-aaaa", [(1, 4), (2, 70)])  # no scale recorded: any finite stars
    assert store.meta()["id_kind"] == "int"
    with pytest.raises(ConfigError, match="whole-number movie IDs; got 'tt1'"):
        store.add("profile-aaaa", [("tt1", 4)])
    with pytest.raises(ConfigError, match="holds a rating of 70 stars, off this model's 1-10 scale"):
        FeedbackStore(store.path, scale=(1, 10))
    store.close()


def test_all_ratings_by_time_then_as_stored(store):
    store.add("profile-bbbb", [(10, 4)], timestamp=50)
    store.add("profile-aaaa", [(30, 5), (20, 2.5)], timestamp=60)
    store.add("profile-bbbb", [(40, 1)], timestamp=60)
    store.add("profile-bbbb", [(10, 3)], timestamp=40)  # re-rated: its time changes, its place in the table not
    assert store.all_ratings() == [("profile-bbbb", 10, 3.0, 40), ("profile-aaaa", 30, 5.0, 60),
                                   ("profile-aaaa", 20, 2.5, 60), ("profile-bbbb", 40, 1.0, 60)]


def test_a_schema_1_database_is_read_as_half_stars_to_five_with_whole_number_ids(tmp_path):
    path = schema_1_database(tmp_path / "old.sqlite3")
    old = FeedbackStore(path)
    assert old.meta() == {"schema_version": 1, "rating_scale": [0.5, 5.0], "id_kind": "int"}
    assert [(r.movie_id, r.rating, r.timestamp) for r in old.ratings("profile-aaaa")] == [(50, 4.5, 100), (1, 1.0, 200)]
    with pytest.raises(ConfigError, match=r"lie in \[0.5, 5\]"):
        old.add("profile-aaaa", [(2, 6)])
    old.close()
    with pytest.raises(ConfigError, match="holds ratings on the 0.5-5 scale; this model rates on 1-10"):
        FeedbackStore(path, scale=(1, 10), id_kind="int")
    with pytest.raises(ConfigError, match="holds ratings of whole-number movie IDs; this model's movie IDs are text"):
        FeedbackStore(path, scale=(0.5, 5), id_kind="str")
    assert FeedbackStore(path).meta()["schema_version"] == 1  # refused: nothing recorded
    # a model on 0.5-5 or inside it (ML-100K's 1-5, whose page could not give half a star) takes it on
    with pytest.raises(ConfigError, match="holds a rating of 1 stars, off this model's 2-5 scale"):
        FeedbackStore(path, scale=(2, 5), id_kind="int")
    ml100k = FeedbackStore(path, scale=(1, 5), id_kind="int")
    assert ml100k.meta() == {"schema_version": 2, "rating_scale": [1.0, 5.0], "id_kind": "int"}
    assert ml100k.count() == 2
    ml100k.close()


def test_an_empty_schema_1_database_takes_on_any_model(tmp_path):
    path = schema_1_database(tmp_path / "old.sqlite3", rows=())
    store = FeedbackStore(path, scale=(1, 10), id_kind="str")
    assert store.meta() == {"schema_version": 2, "rating_scale": [1.0, 10.0], "id_kind": "str"}
    store.add("profile-aaaa", [("007", 10)])
    assert [r.movie_id for r in store.ratings("profile-aaaa")] == ["007"]  # the column holds text as text now
    store.close()


def test_text_ids_export(tmp_path):
    store = FeedbackStore(tmp_path / "fb.sqlite3", scale=(1, 10), id_kind="str")
    store.add("profile-aaaa", [("tt0000050", 10)], timestamp=7)
    out = tmp_path / "out.csv"
    assert store.export_movielens(out) == {"profile-aaaa": 1}
    assert out.read_text().splitlines() == ["userId,movieId,rating,timestamp", "1,tt0000050,10,7"]
    store.close()


@pytest.mark.parametrize("scale, kind, words", [((5, 1), None, "lowest first"), ((1, float("inf")), None, "finite"),
                                                ("1-5", None, "two numbers"), (None, "text", "'int' or 'str'")])
def test_bad_settings_are_refused(tmp_path, scale, kind, words):
    with pytest.raises(ConfigError, match=words):
        FeedbackStore(tmp_path / "fb.sqlite3", scale=scale, id_kind=kind)
