"""`movierec serve` and `movierec feedback export`: bad input in one sentence, a real server
that prints its URL, every worker of `--workers 2` serving with the same settings, a single
bundle folder served, the ratings exported as MovieLens CSV."""

from __future__ import annotations

import csv
import os
import sqlite3
import subprocess
import sys
import time

import httpx
import pytest
from typer.testing import CliRunner

from movierec.cli import app
from movierec.errors import MovierecError
from serving_helpers import MOVIEREC, NAME, LiveServer, make_registry

runner = CliRunner()


@pytest.fixture(scope="module")
def registry(tmp_path_factory, ml100k):
    return make_registry(tmp_path_factory.mktemp("cli_registry"), ml100k)


def fails(*args: str) -> str:
    """Run `movierec ARGS` as a person would; it must exit 1 with one `error:` line."""
    proc = subprocess.run([str(MOVIEREC), *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "MOVIEREC_DEBUG": ""})
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


def test_serve_refuses_bad_input_in_one_sentence(tmp_path, registry):
    assert "No model registry or bundle folder" in fails("serve", "--registry", str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    for args, words in ((["--registry", str(tmp_path / "empty")], "holds no models"),
                        (["--registry", str(registry), "--model", "nope"], "no model named 'nope'"),
                        (["--registry", str(registry), "--port", "70000"], "port"),
                        (["--registry", str(registry), "--workers", "0"], "worker"),
                        (["--registry", str(registry), "--cache-size", "-1"], "answer cache size"),
                        (["--registry", str(registry), "--threads", "0"], "compute threads"),
                        (["--registry", str(registry), "--watch-interval", "-1"], "watch interval"),
                        (["--registry", str(registry), "--watch-interval", "nan"], "watch interval")):
        result = runner.invoke(app, ["serve", *args])
        assert result.exit_code == 1 and isinstance(result.exception, MovierecError), result.output
        assert words in str(result.exception)


def test_help_lists_the_commands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0 and "serve" in result.stdout and "feedback" in result.stdout


def test_serve_prints_the_url_and_serves_without_admin(registry, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "MOVIEREC_ADMIN_TOKEN"}
    with LiveServer(registry, tmp_path, cli=True, env=env) as server:
        health = server.get("/health").json()
        assert health["model"] == {"name": NAME, "version": "1"}
        r = server.get("/admin/status")
        assert r.status_code == 404 and "Admin is disabled" in r.json()["detail"]
        assert server.post("/admin/promote", json={"version": "2"}).status_code == 404
        assert server.post("/ratings", json={"profile": "cli-profile-1", "ratings": [{"movie_id": 50, "rating": 4}]}
                           ).status_code == 200
        assert server.feedback_db.is_file()
    first = server.log().splitlines()[0]
    assert first == f"Serving {NAME} version 1 at http://localhost:{server.port}/ (API docs: /docs); Ctrl-C stops it."


@pytest.mark.slow
def test_every_worker_serves_with_the_same_settings(registry, tmp_path):
    """`--workers 2`: each worker process answers admin with the token from the environment
    and reports the cache size, threads and watch interval given as flags; ratings posted
    to either worker land in the one feedback database."""
    token = "workers-token-0123456789"
    flags = ("--cache-size", "123", "--threads", "2", "--watch-interval", "0.3")
    with LiveServer(registry, tmp_path, cli=True, workers=2, env={"MOVIEREC_ADMIN_TOKEN": token},
                    cli_args=flags) as server:
        statuses: dict[int, dict] = {}
        deadline = time.monotonic() + 60
        while len(statuses) < 2:
            # a fresh connection each time, so the kernel hands requests to either worker
            r = httpx.get(f"{server.base}/admin/status", headers={"Authorization": f"Bearer {token}"}, timeout=30)
            assert r.status_code == 200, r.text
            statuses[r.json()["worker_pid"]] = r.json()
            assert time.monotonic() < deadline, "only one worker ever answered"
        for status in statuses.values():
            assert (status["cache_size"], status["threads"], status["watch_interval"]) == (123, 2, 0.3)
            assert status["model"] == {"name": NAME, "version": "1"} and status["last_error"] is None
        for n in range(8):
            r = httpx.post(f"{server.base}/ratings", timeout=30,
                           json={"profile": f"worker-profile-{n}", "ratings": [{"movie_id": 50, "rating": 4}]})
            assert r.status_code == 200, r.text
    with sqlite3.connect(server.feedback_db) as conn:
        assert conn.execute("SELECT COUNT(DISTINCT profile) FROM ratings").fetchone()[0] == 8


def test_a_single_bundle_folder_is_served(registry, tmp_path):
    with LiveServer(registry / NAME / "2", tmp_path, admin_token="bundle-token-123") as server:
        health = server.get("/health").json()
        assert health["model"]["version"] == "2" and health["n_movies"] == 1682
        assert server.get("/recommend", params={"user_id": 1}).status_code == 200
        for path, body in (("/admin/promote", {"version": "1"}), ("/admin/rollback", None)):
            r = server.admin("POST", path, token="bundle-token-123", json=body)
            assert r.status_code == 409 and "single bundle folder" in r.json()["detail"], r.text
        assert server.admin("POST", "/admin/reload", token="bundle-token-123").status_code == 200


def test_feedback_export(tmp_path):
    from movierec.data.feedback import FeedbackStore

    db = tmp_path / "feedback.sqlite3"
    store = FeedbackStore(db)
    store.add("profile-aaaa", [(50, 5), (100, 3.5)], timestamp=1000)
    store.add("profile-bbbb", [(50, 1)], timestamp=2000)
    store.close()
    out = tmp_path / "export" / "ratings.csv"
    result = runner.invoke(app, ["feedback", "export", "--db", str(db), "--out", str(out), "--user-offset", "943"])
    assert result.exit_code == 0, result.output
    assert "3 ratings by 2 profiles" in result.stdout
    rows = list(csv.reader(out.open()))
    assert rows == [["userId", "movieId", "rating", "timestamp"], ["944", "50", "5", "1000"],
                    ["944", "100", "3.5", "1000"], ["945", "50", "1", "2000"]]
    assert "No feedback database" in fails("feedback", "export", "--db", str(tmp_path / "nope.sqlite3"),
                                           "--out", str(out))
    (tmp_path / "junk.sqlite3").write_bytes(b"junk" * 1000)
    assert "not a feedback database" in fails("feedback", "export", "--db", str(tmp_path / "junk.sqlite3"),
                                              "--out", str(out))


def test_serve_help_does_not_import_the_web_stack():
    code = ("import sys; from movierec.cli import app; from typer.testing import CliRunner; "
            "CliRunner().invoke(app, ['serve', '--help']); "
            "print(sorted(m for m in ('fastapi', 'uvicorn', 'sklearn', 'torch') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.stdout.strip().splitlines()[-1] == "[]", proc.stderr
