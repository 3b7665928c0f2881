"""One answer layer behind both front ends: for the same bundle, `movierec recommend/similar
--json` and the HTTP API (a real uvicorn on loopback) return identical lists, reasons and
fallback flags for known users, new people and similar movies, and refuse the same bad
question with the same sentence (CLI: "error: <sentence>" and exit 1; API: a 4xx whose
`detail` is the sentence).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from serving_helpers import LiveServer

SCRIPT = Path(sys.executable).parent / "movierec"
SCIFI = [50, 172, 183, 195, 96]
ROMANCE = [88, 66, 70, 255]


@pytest.fixture(scope="module")
def registry(tmp_path_factory, ml100k) -> Path:
    """EASE (the quickstart's model) on all of ML-100K, as version 1 of "ease"."""
    from movierec.artifacts import ModelRegistry
    from movierec.artifacts.train import train

    root = tmp_path_factory.mktemp("same_answers") / "registry"
    ModelRegistry(root).add(train("ease", ml100k, seed=0), "ease")
    return root


@pytest.fixture(scope="module")
def server(registry, tmp_path_factory):
    live = LiveServer(registry, tmp_path_factory.mktemp("same_answers_server"), cache_size=100)
    yield live
    live.stop()


def cli(registry: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(SCRIPT), *args[:1], "--registry", str(registry), "--name", "ease", *args[1:]],
                          capture_output=True, text=True, env=dict(os.environ), timeout=180)


def cli_json(registry: Path, *args: str) -> dict:
    proc = cli(registry, *args, "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def api(server, method: str, path: str, **kwargs) -> httpx.Response:
    return httpx.request(method, server.base + path, timeout=60, **kwargs)


SAME = ("items", "fallback", "fallback_reason")


@pytest.mark.parametrize("cli_args, method, path, kwargs", [
    (("recommend", "--user", "42", "-k", "10"), "GET", "/recommend", {"params": {"user_id": 42, "k": 10}}),
    (("recommend", "--user", "42", "-k", "7", "--include-seen"), "GET", "/recommend",
     {"params": {"user_id": 42, "k": 7, "exclude_seen": "false"}}),
    (("recommend", "--user", "7", "-k", "8", "--min-ratings", "200", "--genres", "Comedy,Drama", "--exclude", "1,2"),
     "GET", "/recommend", {"params": {"user_id": 7, "k": 8, "min_ratings": 200, "genres": "Comedy,Drama",
                                      "exclude": "1,2"}}),
    (("recommend", "--liked", "1,71,95", "-k", "10"), "GET", "/recommend_cold", {"params": {"liked": "1,71,95"}}),
    (("recommend", "--rated", ",".join(f"{m}=5" for m in SCIFI) + "," + ",".join(f"{m}=1" for m in ROMANCE),
      "-k", "10"), "POST", "/recommend_cold",
     {"json": {"ratings": [{"movie_id": m, "rating": 5} for m in SCIFI] + [{"movie_id": m, "rating": 1}
                                                                             for m in ROMANCE], "k": 10}}),
    (("recommend", "--rated", "50=4,88=2", "--liked", "1", "--liked-threshold", "2", "--only",
      ",".join(str(m) for m in range(1, 400)), "-k", "6"), "POST", "/recommend_cold",
     {"json": {"ratings": [{"movie_id": 50, "rating": 4}, {"movie_id": 88, "rating": 2}], "liked": [1],
               "liked_threshold": 2, "k": 6, "filters": {"only": list(range(1, 400))}}}),
    (("recommend", "--liked", "99998,99999", "-k", "5"), "GET", "/recommend_cold",
     {"params": {"liked": "99998,99999", "k": 5}}),  # the fallback, flagged the same way
    (("similar", "--movie", "50", "-k", "10"), "GET", "/similar/50", {"params": {"k": 10}}),
    (("similar", "--movie", "1", "-k", "5", "--min-ratings", "300"), "GET", "/similar/1",
     {"params": {"k": 5, "min_ratings": 300}}),
])
def test_the_cli_and_the_api_answer_the_same(registry, server, cli_args, method, path, kwargs):
    from_cli = cli_json(registry, *cli_args)
    response = api(server, method, path, **kwargs)
    assert response.status_code == 200, response.text
    from_api = response.json()
    assert from_cli["model"] == from_api["model"] == {"name": "ease", "version": "1"}
    for key in SAME:
        assert from_cli[key] == from_api[key], key
    assert len(from_api["items"]) > 0 and all(item["title"] and item["reason"] for item in from_api["items"])
    for key in ("user_id", "movie", "liked", "disliked", "ignored", "liked_threshold"):
        assert from_cli.get(key) == from_api.get(key), key


def test_a_batch_answers_what_single_requests_answer(server):
    batch = api(server, "POST", "/recommend/batch", json={"user_ids": [1, 42, 7], "k": 5,
                                                         "filters": {"min_ratings": 100}}).json()
    for result in batch["results"]:
        single = api(server, "GET", "/recommend", params={"user_id": result["user_id"], "k": 5,
                                                          "min_ratings": 100}).json()
        assert result["items"] == single["items"]


@pytest.mark.parametrize("cli_args, method, path, kwargs, status", [
    (("recommend", "--user", "99999"), "GET", "/recommend", {"params": {"user_id": 99999}}, 404),
    (("recommend", "--user", "42", "-k", "0"), "GET", "/recommend", {"params": {"user_id": 42, "k": 0}}, 422),
    (("recommend", "--user", "42", "-k", "1001"), "GET", "/recommend", {"params": {"user_id": 42, "k": 1001}}, 422),
    (("recommend", "--user", "42", "--genres", "Space Opera"), "GET", "/recommend",
     {"params": {"user_id": 42, "genres": "Space Opera"}}, 422),
    (("recommend", "--user", "42", "--min-ratings", "5000"), "GET", "/recommend",
     {"params": {"user_id": 42, "min_ratings": 5000}}, 422),
    (("recommend", "--user", "42", "--min-ratings", "-1"), "GET", "/recommend",
     {"params": {"user_id": 42, "min_ratings": -1}}, 422),
    (("recommend", "--user", "42", "--only", "1,99999"), "GET", "/recommend",
     {"params": {"user_id": 42, "only": "1,99999"}}, 404),
    (("recommend", "--rated", "50=9"), "POST", "/recommend_cold", {"json": {"ratings": [{"movie_id": 50,
                                                                                         "rating": 9}]}}, 422),
    (("recommend", "--rated", "50=5", "--liked-threshold", "7"), "POST", "/recommend_cold",
     {"json": {"ratings": [{"movie_id": 50, "rating": 5}], "liked_threshold": 7}}, 422),
    (("similar", "--movie", "99999"), "GET", "/similar/99999", {}, 404),
    (("similar", "--movie", "50", "--genres", "Space Opera"), "GET", "/similar/50",
     {"params": {"genres": "Space Opera"}}, 422),
])
def test_the_cli_and_the_api_refuse_with_the_same_sentence(registry, server, cli_args, method, path, kwargs,
                                                           status):
    proc = cli(registry, *cli_args)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    response = api(server, method, path, **kwargs)
    assert response.status_code == status, response.text
    assert response.json()["detail"] == lines[0].removeprefix("error: ")
