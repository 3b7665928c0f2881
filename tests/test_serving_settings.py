"""The service's one settings object (`ServeSettings`): validated once, carried whole to
every worker as JSON, built by `create_app`'s convenience arguments; and the feedback
store's connections, bounded by the threads alive."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from movierec.data.feedback import FeedbackStore
from movierec.errors import ConfigError
from movierec.serving.settings import CACHE_SIZE, SETTINGS_ENV, ServeSettings

TOKEN = "settings-token-0123456789"


def test_settings_travel_whole_through_one_environment_variable(tmp_path):
    settings = ServeSettings(tmp_path / "registry", model="movies", feedback_db=tmp_path / "fb.sqlite3",
                             admin_token=TOKEN, cache_size=123, threads=3, watch_interval=0.25, max_body_bytes=4096)
    env = settings.to_env()
    assert list(env) == [SETTINGS_ENV] and json.loads(env[SETTINGS_ENV])["cache_size"] == 123
    again = ServeSettings.from_env_variable(env)
    assert again == settings and isinstance(again.source, Path) and isinstance(again.feedback_db, Path)
    assert ServeSettings.from_env_variable(ServeSettings(tmp_path, threads=None).to_env()).threads is None


def test_the_token_is_read_from_the_environment_and_never_shown(tmp_path):
    env = {"MOVIEREC_ADMIN_TOKEN": TOKEN}
    settings = ServeSettings.from_environment(tmp_path, env, cache_size=7)
    assert settings.admin_token == TOKEN and settings.cache_size == 7
    assert TOKEN not in repr(settings) and TOKEN not in str(settings)
    assert ServeSettings.from_environment(tmp_path, env, admin_token=None).admin_token is None
    assert ServeSettings.from_environment(tmp_path, {"MOVIEREC_ADMIN_TOKEN": ""}).admin_token is None
    assert ServeSettings.from_environment(tmp_path, {}).cache_size == CACHE_SIZE


@pytest.mark.parametrize("values, words", [
    ({"cache_size": -1}, "answer cache size"), ({"cache_size": 1.5}, "answer cache size"),
    ({"cache_size": True}, "answer cache size"), ({"threads": 0}, "compute threads"),
    ({"watch_interval": -0.1}, "watch interval"), ({"watch_interval": float("inf")}, "watch interval"),
    ({"watch_interval": "1"}, "watch interval"), ({"max_body_bytes": 0}, "body size limit"),
    ({"model": ""}, "model name"), ({"source": ""}, "registry or bundle folder"),
    ({"admin_token": 5}, "admin token"), ({"feedback_db": 3}, "feedback database"),
])
def test_settings_out_of_range_are_refused_in_one_sentence(tmp_path, values, words):
    with pytest.raises(ConfigError, match=words):
        ServeSettings(**{"source": tmp_path, **values})


@pytest.mark.parametrize("text, words", [
    ("not json", "not valid JSON"), ("[1]", "JSON object"), ('{"source": "x", "colour": 1}', "unknown settings: colour"),
    ('{"source": "x", "cache": 1}', "answer cache must be"),
    ('{"model": "m"}', "names no registry"), ('{"source": "x", "threads": -2}', "compute threads"),
])
def test_bad_settings_variables_are_refused(text, words):
    with pytest.raises(ConfigError, match=words):
        ServeSettings.from_env_variable({SETTINGS_ENV: text})
    with pytest.raises(ConfigError, match=f"Set {SETTINGS_ENV}"):
        ServeSettings.from_env_variable({})


def test_the_default_feedback_database(tmp_path):
    assert ServeSettings(tmp_path / "reg").default_feedback_db(True) == tmp_path / "reg" / "feedback.sqlite3"
    assert ServeSettings(tmp_path / "reg" / "m" / "2").default_feedback_db(False) == \
        tmp_path / "reg" / "m" / "feedback.sqlite3"
    assert ServeSettings(tmp_path, feedback_db=tmp_path / "f.db").default_feedback_db(True) == tmp_path / "f.db"


@pytest.fixture(scope="module")
def small_registry(tmp_path_factory, ml100k) -> Path:
    from movierec.artifacts import Bundle, ModelRegistry
    from movierec.models import create

    root = tmp_path_factory.mktemp("settings_registry")
    part = ml100k.subset(ml100k.user_idx < 100)
    ModelRegistry(root).add(Bundle.from_model(create("pop").fit(part), part), "movies")
    return root


def test_create_app_takes_settings_or_builds_them_from_its_keywords(small_registry, tmp_path, monkeypatch):
    from movierec.serving.app import create_app

    monkeypatch.setenv("MOVIEREC_ADMIN_TOKEN", TOKEN)
    app = create_app(small_registry, cache_size=0, compute_threads=None, watch_interval=0,
                     feedback_db=tmp_path / "fb.sqlite3")
    expected = ServeSettings(small_registry, model="movies", feedback_db=tmp_path / "fb.sqlite3", admin_token=TOKEN,
                             cache_size=0, threads=None, watch_interval=0)
    assert app.state.settings == expected and app.state.server.cache_size == 0
    app.state.store.close()
    given = ServeSettings(small_registry, admin_token=None)
    app = create_app(given)
    assert app.state.settings.admin_token is None and app.state.settings.model == "movies"
    assert app.state.settings.feedback_db == small_registry / "feedback.sqlite3"
    app.state.store.close()
    with pytest.raises(ConfigError, match="either a ServeSettings"):
        create_app(given, cache_size=5)


def test_the_store_closes_the_connections_of_ended_threads(tmp_path):
    """A server's thread pool renews its threads: the store keeps one connection per live
    thread, not one per thread that ever asked."""
    store = FeedbackStore(tmp_path / "fb.sqlite3")
    try:
        for n in range(6):
            thread = threading.Thread(target=store.add, args=(f"profile-{n:04d}", [(50, 4.0)]))
            thread.start()
            thread.join()
        assert store.count() == 6
        # each thread's connection opened closes the one of the thread before it: this
        # thread's and the last one's are left, not one per thread that ever asked
        assert store.open_connections == 2
    finally:
        store.close()
    assert store.open_connections == 0
