"""The service holds under change and failure, against real uvicorn processes on loopback.

* model swaps (promote, rollback, reload) while several clients keep asking: no request
  fails, and every answer comes from exactly one version (its items are that version's);
* a corrupt or incompatible bundle, or one that verifies but cannot be served (text movie
  IDs), is refused (409) before the registry's pointer moves, and the old model keeps
  serving, also when the pointer is moved to it behind the service's back or is corrupt;
* concurrent ratings: every acknowledged rating is in the database, even after kill -9;
* with two workers, a promote made by the CLI is served by every worker (each watches the
  registry's pointer).
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from serving_helpers import MOVIEREC, NAME, TOKEN, LiveServer, long_id_bundle, make_registry

STAR_WARS, JEDI = 50, 181
USERS = list(range(1, 25))


@pytest.fixture(scope="module")
def data(ml100k):
    return ml100k


@pytest.fixture
def registry(tmp_path, data) -> Path:
    return make_registry(tmp_path / "registry", data)


def _requests() -> list[tuple[str, str, dict]]:
    """(key, path, params) of the requests the clients cycle through."""
    reqs = [(f"u{u}", "/recommend", {"user_id": u, "k": 10}) for u in USERS]
    reqs.append(("similar", f"/similar/{STAR_WARS}", {"k": 10}))
    reqs.append(("cold", "/recommend_cold", {"liked": f"{STAR_WARS},{JEDI}", "k": 10}))
    return reqs


def _ids(body: dict) -> list[int]:
    return [m["movie_id"] for m in body["items"]]


def _expected(server: LiveServer, version: str) -> dict[str, list[int]]:
    out = {}
    for key, path, params in _requests():
        body = server.get(path, params=params).json()
        assert body["model"]["version"] == version
        out[key] = _ids(body)
    return out


def test_swaps_under_continuous_requests_fail_nothing_and_never_mix_versions(registry, tmp_path):
    with LiveServer(registry, tmp_path, admin_token=TOKEN, watch_interval=0.2) as server:
        expected = {"1": _expected(server, "1")}
        assert server.admin("POST", "/admin/promote", json={"version": "2"}).status_code == 200
        expected["2"] = _expected(server, "2")
        assert server.admin("POST", "/admin/rollback").status_code == 200
        assert expected["1"] != expected["2"]

        answers: list[tuple[float, str, int, str | None, list[int] | str]] = []
        failures: list[str] = []
        stop = threading.Event()

        def client(offset: int) -> None:
            reqs = _requests()
            with httpx.Client(base_url=server.base, timeout=60) as http:
                i = offset
                while not stop.is_set():
                    key, path, params = reqs[i % len(reqs)]
                    i += 1
                    sent = time.monotonic()
                    try:
                        r = http.get(path, params=params)
                    except httpx.HTTPError as exc:
                        failures.append(f"{path}: {exc!r}")
                        continue
                    if r.status_code != 200:
                        failures.append(f"{path}: {r.status_code} {r.text[:200]}")
                        continue
                    body = r.json()
                    answers.append((sent, key, r.status_code, body["model"]["version"], _ids(body)))

        threads = [threading.Thread(target=client, args=(7 * n,)) for n in range(4)]
        for t in threads:
            t.start()
        # (time the swap was asked for, time it was acknowledged, the version served from then on)
        swaps: list[tuple[float, float, str]] = []
        for action in ("promote", "rollback", "reload", "promote", "reload", "rollback", "promote", "rollback"):
            time.sleep(0.25)
            asked = time.monotonic()
            if action == "promote":
                r = server.admin("POST", "/admin/promote", json={"version": "2"})
            else:
                r = server.admin("POST", f"/admin/{action}")
            assert r.status_code == 200, r.text
            swaps.append((asked, time.monotonic(), r.json()["model"]["version"]))
        time.sleep(0.25)
        stop.set()
        for t in threads:
            t.join(60)

    assert not failures, failures[:5]
    assert len(answers) > 50
    seen_versions = {a[3] for a in answers}
    assert seen_versions == {"1", "2"}
    for sent, key, _, version, items in answers:
        # exactly one version: the items are those of the version the answer names
        assert items == expected[version][key], (key, version)
    for i, (_, done, version) in enumerate(swaps):
        until = swaps[i + 1][0] if i + 1 < len(swaps) else float("inf")
        after = [a for a in answers if done < a[0] < until]
        assert all(a[3] == version for a in after), f"an answer sent after swap {i} came from another version"


def _copy_version(registry: Path, source: str, target: str) -> Path:
    folder = registry / NAME / target
    shutil.copytree(registry / NAME / source, folder)
    return folder


def _pointer(registry: Path) -> str:
    return json.loads((registry / NAME / "CURRENT.json").read_text())["version"]


def _write_pointer(registry: Path, version: str) -> None:
    """Move the pointer as another process would (atomically), skipping all verification."""
    path = registry / NAME / "CURRENT.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"version": version, "history": ["1"]}))
    tmp.replace(path)


def test_corrupt_and_incompatible_bundles_are_refused_and_the_old_model_keeps_serving(registry, tmp_path):
    corrupt = _copy_version(registry, "2", "3")
    state = corrupt / "state.safetensors"
    raw = bytearray(state.read_bytes())
    raw[-10:] = bytes(b ^ 0xFF for b in raw[-10:])
    state.write_bytes(bytes(raw))
    incompatible = _copy_version(registry, "2", "4")
    manifest = json.loads((incompatible / "manifest.json").read_text())
    manifest["movierec_version"] = "99.0.0"
    (incompatible / "manifest.json").write_text(json.dumps(manifest))
    from movierec.artifacts import ModelRegistry

    unservable = ModelRegistry(registry).add(long_id_bundle(tmp_path), NAME, promote=False)
    assert unservable.version == "5" and ModelRegistry(registry).verify(NAME, "5") == [(unservable, None)]

    with LiveServer(registry, tmp_path, admin_token=TOKEN, watch_interval=0.1) as server:
        before = server.get("/recommend", params={"user_id": 1}).json()
        for version, words in (("3", "corrupt"), ("4", "newer than this movierec"),
                               ("5", "cannot serve version 5 of 'movies'")):
            r = server.admin("POST", "/admin/promote", json={"version": version})
            assert r.status_code == 409 and words in r.json()["detail"], r.text
            assert _pointer(registry) == "1"
            assert server.get("/health").json()["model"]["version"] == "1"
            assert server.get("/recommend", params={"user_id": 1}).json() == before

        # the pointer moved to the corrupt version behind the service's back: it keeps serving 1
        # (the last error is still the refused promote of 5 until the watcher looks)
        _write_pointer(registry, "3")
        deadline = time.monotonic() + 30
        while "corrupt" not in (server.admin("GET", "/admin/status").json()["last_error"] or ""):
            assert time.monotonic() < deadline, "the watcher never looked at the moved pointer"
            time.sleep(0.05)
        status = server.admin("GET", "/admin/status").json()
        assert "corrupt" in status["last_error"] and status["model"]["version"] == "1"
        assert status["pointer_version"] == "3"
        assert server.get("/recommend", params={"user_id": 1}).json() == before
        reload = server.admin("POST", "/admin/reload")
        assert reload.status_code == 409 and "corrupt" in reload.json()["detail"]
        assert server.get("/health").json()["model"]["version"] == "1"

        # a pointer that is not a pointer: reported, never a 5xx, the watcher goes on
        (registry / NAME / "CURRENT.json").write_text('{"version": ["2"]}')
        deadline = time.monotonic() + 30
        while "The pointer" not in (server.admin("GET", "/admin/status").json()["last_error"] or ""):
            assert time.monotonic() < deadline, "the watcher never reported the corrupt pointer"
            time.sleep(0.05)
        status = server.admin("GET", "/admin/status").json()
        assert status["pointer_version"] is None and status["model"]["version"] == "1"
        assert server.get("/recommend", params={"user_id": 1}).json() == before

        # and it still follows the pointer once it names a good version
        _write_pointer(registry, "2")
        deadline = time.monotonic() + 30
        while server.get("/health").json()["model"]["version"] != "2":
            assert time.monotonic() < deadline, "the watcher stopped after a failed load"
            time.sleep(0.05)
        assert server.admin("GET", "/admin/status").json()["last_error"] is None
        assert "Traceback" not in server.log()


def _post_ratings(base: str, profile: str, movies: list[int], acked: list, stop: threading.Event,
                  errors: list) -> None:
    """POST one rating per request (movie m gets rating 1 + (m % 9) / 2, on ML-100K's 1-5 scale); record the
    acked ones."""
    with httpx.Client(base_url=base, timeout=30) as http:
        for movie in movies:
            if stop.is_set():
                return
            rating = 1 + (movie % 9) / 2
            try:
                r = http.post("/ratings", json={"profile": profile, "ratings": [{"movie_id": movie, "rating": rating}]})
            except httpx.HTTPError as exc:
                errors.append(repr(exc))
                return
            if r.status_code != 200:
                errors.append(f"{r.status_code} {r.text[:200]}")
                return
            assert r.json()["stored"] == 1
            acked.append((profile, movie, rating))


def _stored(db: Path) -> set[tuple[str, int, float]]:
    with sqlite3.connect(db) as conn:
        return {(p, int(m), float(r)) for p, m, r in conn.execute("SELECT profile, movie_id, rating FROM ratings")}


def test_concurrent_ratings_are_all_stored(registry, tmp_path):
    acked: list = []
    errors: list = []
    stop = threading.Event()
    with LiveServer(registry, tmp_path) as server:
        threads = [threading.Thread(target=_post_ratings, args=(server.base, f"profile-{n:04d}",
                                                                list(range(1, 41)), acked, stop, errors))
                   for n in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not errors, errors[:3]
        assert len(acked) == 6 * 40
        listed = server.get("/ratings", params={"profile": "profile-0003"}).json()["ratings"]
        assert sorted(r["movie_id"] for r in listed) == list(range(1, 41))
    assert _stored(server.feedback_db) == set(acked)


def test_a_killed_server_loses_no_acknowledged_rating(registry, tmp_path):
    acked: list = []
    errors: list = []
    stop = threading.Event()
    server = LiveServer(registry, tmp_path)
    try:
        threads = [threading.Thread(target=_post_ratings, args=(server.base, f"killed-{n:04d}",
                                                                list(range(1, 1683)), acked, stop, errors))
                   for n in range(4)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 120
        while len(acked) < 200 and time.monotonic() < deadline and not errors:
            time.sleep(0.01)
        server.kill()  # SIGKILL while the clients are still posting
        for t in threads:
            t.join(60)
    finally:
        server.stop()
    assert len(acked) >= 200 and errors  # the clients saw the server die mid-stream
    stored = _stored(server.feedback_db)
    missing = set(acked) - stored
    assert not missing, f"{len(missing)} acknowledged ratings were lost, e.g. {sorted(missing)[:3]}"
    # a new server on the same database answers them
    with LiveServer(registry, tmp_path, feedback_db=str(server.feedback_db)) as again:
        listed = again.get("/ratings", params={"profile": "killed-0000"}).json()["ratings"]
        assert {(r["movie_id"], r["rating"]) for r in listed} >= {(m, r) for p, m, r in acked if p == "killed-0000"}


@pytest.mark.slow
def test_every_worker_serves_a_promote_made_by_the_cli(registry, tmp_path):
    with LiveServer(registry, tmp_path, cli=True, workers=2, env={"MOVIEREC_ADMIN_TOKEN": TOKEN}) as server:
        def status() -> dict:
            # a fresh connection each time, so the kernel hands requests to either worker
            r = httpx.get(f"{server.base}/admin/status", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
            assert r.status_code == 200, r.text
            return r.json()

        pids: dict[int, str] = {}
        deadline = time.monotonic() + 60
        while len(pids) < 2:
            s = status()
            pids[s["worker_pid"]] = s["model"]["version"]
            assert time.monotonic() < deadline, "only one worker ever answered"
        assert set(pids.values()) == {"1"}

        done = subprocess.run([str(MOVIEREC), "models", "promote", NAME, "2", "--registry", str(registry)],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        promoted = time.monotonic()
        serving: dict[int, str] = {}
        while not (len(serving) == 2 and set(serving.values()) == {"2"}):
            s = status()
            serving[s["worker_pid"]] = s["model"]["version"]
            assert time.monotonic() - promoted < 60, f"workers still serve {serving}"
        print(f"every worker served version 2 {time.monotonic() - promoted:.2f} s after the promote")
        for _ in range(40):
            assert httpx.get(f"{server.base}/health", timeout=30).json()["model"]["version"] == "2"
