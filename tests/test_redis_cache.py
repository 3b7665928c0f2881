"""The shared answer cache (`movierec serve --cache redis://...`) against a real Redis.

Each test that needs Redis starts Debian's `redis-server` on a free loopback port (no
persistence: `--save '' --appendonly no`); without it the tests are skipped, except on CI
(the `CI` variable set), which installs it (.ci/run): there a missing Redis is a failure.
Answers with and without the cache are the same bytes; two workers share entries (the
second worker's first look is a hit); a promotion changes the key (never a stale list); a
Redis killed mid-run gives 200s and one warning, and a restarted one is used again.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import redis as redis_py

from movierec.answers import Filters, KnownUser, Query, SimilarTo
from movierec.artifacts import Bundle
from movierec.errors import ConfigError
from movierec.models import create
from movierec.serving import cache as cache_mod
from movierec.serving.cache import KEY_PREFIX, RedisCache, answer_key, check_cache, model_tag, query_text
from movierec.serving.settings import ServeSettings
from movierec.serving.state import ServedModel
from serving_helpers import MOVIEREC, NAME, TOKEN, LiveServer, free_port, make_registry

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
WARNING = "The answer cache at"


class RedisProcess:
    """`redis-server` on a free loopback port, in memory only; `stop` kills it (SIGKILL,
    like a crash) and `start` brings it back, empty, on the same port."""

    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.tmp = tmp
        self.proc: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.tmp)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis_py.Redis(port=self.port, socket_timeout=1)
        deadline = time.monotonic() + 30
        while True:
            try:
                client.ping()
                return
            except redis_py.ConnectionError:
                assert self.proc.poll() is None, "redis-server exited at once"
                assert time.monotonic() < deadline, "redis-server did not answer in 30 s"
                time.sleep(0.05)

    def client(self) -> redis_py.Redis:
        return redis_py.Redis(port=self.port, socket_timeout=5)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def keys(self) -> list[bytes]:
        return sorted(self.client().keys(KEY_PREFIX + "*"))


@pytest.fixture
def redis_server(tmp_path):
    if not os.path.exists(REDIS_SERVER):
        if os.environ.get("CI"):  # CI installs redis-server (.ci/run): a missing one is a failure there
            pytest.fail("redis-server is not installed; `apt-get install redis-server` (CI's .ci/run does)")
        pytest.skip("redis-server is not installed (apt-get install redis-server) to run the Redis cache tests")
    server = RedisProcess(tmp_path)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def part(ml100k):
    return ml100k.subset(ml100k.user_idx < 150)


@pytest.fixture(scope="module")
def bundles(part) -> tuple[Bundle, Bundle]:
    """Two different models over the same people: version 1 (ALS) and 2 (EASE)."""
    return (Bundle.from_model(create("als", seed=0).fit(part), part), Bundle.from_model(create("ease").fit(part), part))


@pytest.fixture(scope="module")
def registry(tmp_path_factory, ml100k):
    return make_registry(tmp_path_factory.mktemp("redis_registry"), ml100k)


QUERIES = [Query(KnownUser(1), k=10), Query(KnownUser(1), k=5), Query(KnownUser(1), k=10, exclude_seen=False),
           Query(KnownUser(1), k=10, filters=Filters(min_ratings=20)), Query(KnownUser(2), k=10),
           Query(SimilarTo(50), k=10), Query(SimilarTo(50), k=10, filters=Filters(genres=("Comedy",)))]


# ---------------------------------------------------------------------------- without Redis


def test_bad_cache_settings_are_refused_in_one_sentence():
    assert check_cache("memory") == "memory" and check_cache(" redis://h:1/2 ") == "redis://h:1/2"
    for bad, words in (("foo", "got 'foo'"), ("redis://", "names no host"), ("redis://h:99999/0", "valid port"),
                       ("redis://h/x", "database number"), ("redis://h/0?timeout=1", "drop the options"),
                       ("", "Redis URL"), (7, "Redis URL"), ("http://h:1/0", "Redis URL")):
        with pytest.raises(ConfigError, match=words) as info:
            ServeSettings(source=Path("."), cache=bad)
        assert str(info.value).count(". ") == 0 and str(info.value).endswith(".")
    settings = ServeSettings(source=Path("."), cache="redis://:secret@h:1/0")
    assert "secret" not in repr(settings) and ServeSettings.from_json(settings.to_json()) == settings


def test_bad_cache_flag_exits_1_with_one_sentence(registry):
    proc = subprocess.run([str(MOVIEREC), "serve", "--registry", str(registry), "--cache", "redis:/nohost"],
                          capture_output=True, text=True, timeout=120, env={**os.environ, "MOVIEREC_DEBUG": ""})
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: The answer cache must be"), proc.stderr


def test_every_part_of_the_query_and_the_version_is_in_the_key(bundles):
    texts = {query_text(q) for q in QUERIES} | {query_text(Query(KnownUser("1"), k=10))}
    assert len(texts) == len(QUERIES) + 1  # 1 and "1" are different users
    for rerank in ("mmr:0.3", "mmr:0.5"):  # a re-ranker by its text form
        text = query_text(Query(KnownUser(1), k=10, rerank=_Rerank(rerank)))
        assert rerank in text and text not in texts
        texts.add(text)
    one, two = bundles
    tags = {model_tag(NAME, "1", one.manifest), model_tag(NAME, "2", one.manifest), model_tag(NAME, "1", two.manifest),
            model_tag("other", "1", one.manifest)}
    assert len(tags) == 4
    assert answer_key(model_tag(NAME, "1", one.manifest), QUERIES[0]).startswith(KEY_PREFIX)


class _Rerank:
    """A stand-in re-ranker: only its text form matters to the key."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __str__(self) -> str:
        return self.text

    def __hash__(self) -> int:
        return hash(self.text)


def test_a_redis_that_is_not_there_degrades_with_one_warning(bundles, caplog, monkeypatch):
    """Nothing listens on the port: every answer is computed (the same bytes), one warning
    is logged, and Redis is not asked again until its pause is over."""
    monkeypatch.setattr(cache_mod, "BACKOFF_FIRST", 60.0)
    shared = RedisCache(f"redis://127.0.0.1:{free_port()}/0")
    tries = []
    real_get = shared._client.get
    monkeypatch.setattr(shared._client, "get", lambda key: tries.append(key) or real_get(key))
    served = ServedModel.build(bundles[0], NAME, "1", shared_cache=shared)
    plain = ServedModel.build(bundles[0], NAME, "1")
    with caplog.at_level(logging.WARNING, logger="movierec.serving.cache"):
        for query in QUERIES * 3:
            assert served.answer_bytes(query) == plain.answer_bytes(query)
    warnings = [r for r in caplog.records if r.getMessage().startswith(WARNING)]
    assert len(warnings) == 1 and "cannot be reached" in warnings[0].getMessage()
    assert len(tries) == 1  # paused after the first failure: no request waits on a dead Redis
    status = served.memo.status()
    assert status["kind"] == "redis" and status["reachable"] is False and status["hits"] == 0


def test_one_warning_however_often_a_dead_redis_is_tried(bundles, caplog, monkeypatch):
    """No pause between tries: every lookup and store asks the dead Redis, still one warning."""
    monkeypatch.setattr(cache_mod, "BACKOFF_FIRST", 0.0)
    monkeypatch.setattr(cache_mod, "BACKOFF_MAX", 0.0)
    served = ServedModel.build(bundles[0], NAME, "1", shared_cache=RedisCache(f"redis://127.0.0.1:{free_port()}/0"))
    with caplog.at_level(logging.WARNING, logger="movierec.serving.cache"):
        for query in QUERIES * 2:
            served.answer_bytes(query)
    assert served.memo.misses == 2 * len(QUERIES)
    assert len([r for r in caplog.records if r.getMessage().startswith(WARNING)]) == 1


# ------------------------------------------------------------------------------- with Redis


def test_answers_are_the_same_with_and_without_redis(redis_server, bundles):
    shared = RedisCache(redis_server.url)
    served = ServedModel.build(bundles[0], NAME, "1", shared_cache=shared)
    plain = ServedModel.build(bundles[0], NAME, "1", cache_size=0)
    first = [served.answer_bytes(q) for q in QUERIES]
    assert first == [plain.answer_bytes(q) for q in QUERIES]
    assert (served.memo.hits, served.memo.misses) == (0, len(QUERIES)) and len(redis_server.keys()) == len(QUERIES)
    # another process's model of the same version (a second worker, a replica) finds them all
    other = ServedModel.build(bundles[0], NAME, "1", shared_cache=RedisCache(redis_server.url))
    assert [other.answer_bytes(q) for q in QUERIES] == first
    assert (other.memo.hits, other.memo.misses) == (len(QUERIES), 0)
    # a list longer than CACHE_MAX_K, and a cache size of 0, are never kept
    off = ServedModel.build(bundles[0], NAME, "1", cache_size=0, shared_cache=shared)
    off.answer_bytes(Query(KnownUser(3), k=10))
    served.answer_bytes(Query(KnownUser(3), k=200))
    assert len(redis_server.keys()) == len(QUERIES)


def test_another_version_never_reads_the_previous_answers(redis_server, bundles):
    shared = RedisCache(redis_server.url)
    v1 = ServedModel.build(bundles[0], NAME, "1", shared_cache=shared)
    v2 = ServedModel.build(bundles[1], NAME, "2", shared_cache=shared)
    for query in QUERIES:
        v1.answer_bytes(query)
    answers = [v2.answer_bytes(q) for q in QUERIES]
    assert answers == [ServedModel.build(bundles[1], NAME, "2").answer_bytes(q) for q in QUERIES]
    assert (v2.memo.hits, v2.memo.misses) == (0, len(QUERIES)) and len(redis_server.keys()) == 2 * len(QUERIES)


@pytest.mark.slow
def test_two_workers_share_answers_and_a_promotion_changes_the_key(redis_server, registry, tmp_path):
    """`movierec serve --workers 2 --cache redis://...`: an answer computed by one worker is a
    hit for the other; after a promotion every answer names the new version."""
    with LiveServer(registry, tmp_path, cli=True, workers=2, env={"MOVIEREC_ADMIN_TOKEN": TOKEN},
                    cli_args=("--cache", redis_server.url, "--watch-interval", "0.2")) as server:
        health = server.get("/health").json()["cache"]
        assert (health["kind"], health["url"], health["reachable"]) == ("redis", redis_server.url, True)
        first = httpx.get(f"{server.base}/recommend?user_id=1&k=10", timeout=30)
        assert first.status_code == 200 and first.json()["model"]["version"] == "1"
        statuses: dict[int, dict] = {}
        deadline = time.monotonic() + 60
        while len(statuses) < 2 or not all(s["hits"] + s["misses"] for s in statuses.values()):
            # a fresh connection each time, so the kernel hands requests to either worker
            r = httpx.get(f"{server.base}/recommend?user_id=1&k=10", timeout=30)
            assert r.status_code == 200 and r.content == first.content
            status = httpx.get(f"{server.base}/admin/status", headers={"Authorization": f"Bearer {TOKEN}"},
                               timeout=30).json()
            statuses[status["worker_pid"]] = status["cache"]
            assert time.monotonic() < deadline, f"both workers never answered: {statuses}"
        assert sum(s["misses"] for s in statuses.values()) == 1  # computed once, by one worker
        assert all(s["kind"] == "redis" and s["reachable"] for s in statuses.values())

        assert server.admin("POST", "/admin/promote", json={"version": "2"}).status_code == 200
        deadline = time.monotonic() + 60
        seen = 0
        while seen < 10:  # both workers follow the pointer within a poll interval
            r = httpx.get(f"{server.base}/recommend?user_id=1&k=10", timeout=30)
            assert r.status_code == 200
            seen = seen + 1 if r.json()["model"]["version"] == "2" else 0
            assert time.monotonic() < deadline, "the promotion was not served"
        assert r.content != first.content
    assert len({key.rsplit(b":", 1)[0] for key in redis_server.keys()}) == 2  # one tag per version


@pytest.mark.slow
def test_a_redis_killed_mid_run_gives_200s_one_warning_and_recovers(redis_server, registry, tmp_path):
    with LiveServer(registry, tmp_path, cache=redis_server.url, watch_interval=0) as server:
        users = range(1, 13)
        before = {u: server.get(f"/recommend?user_id={u}&k=10").content for u in users}
        assert server.get("/health").json()["cache"]["misses"] == len(before)

        redis_server.stop()
        for _ in range(3):
            for user in users:
                r = server.get(f"/recommend?user_id={user}&k=10")
                assert r.status_code == 200 and r.content == before[user]
            r = server.get("/recommend?user_id=1&k=7&min_ratings=5")  # through the route, not the fast path
            assert r.status_code == 200 and len(r.json()["items"]) == 7
        assert server.get("/health").json()["cache"]["reachable"] is False
        assert server.log().count(WARNING) == 1, server.log()

        redis_server.start()  # empty: it held answers in memory only
        deadline = time.monotonic() + 60
        while not server.get("/health").json()["cache"]["reachable"]:
            assert time.monotonic() < deadline, "the service never used Redis again"
            time.sleep(0.2)
        hits = server.get("/health").json()["cache"]["hits"]
        assert server.get("/recommend?user_id=1&k=10").content == before[1]
        assert server.get("/recommend?user_id=1&k=10").content == before[1]
        assert server.get("/health").json()["cache"]["hits"] == hits + 1 and len(redis_server.keys()) == 1
        assert server.log().count(WARNING) == 1
