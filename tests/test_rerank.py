"""Re-ranking for variety (`movierec.rerank`): MMR and calibrated recommendations, through the
library (re-rankers, metrics, the evaluation runner, compare), the answer layer, the CLI and
a real server on loopback (tests/serving_helpers.py).

Each guard names the bug it was checked against in its docstring.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest
import scipy.sparse as sp
from typer.testing import CliRunner

from movierec.errors import ConfigError
from movierec.evaluation import metrics as M
from movierec.rerank import MMR, Calibrated, RerankInput, genre_distribution, kl_to_history, parse_rerank

from serving_helpers import NAME, LiveServer, error, make_registry

SCRIPT = Path(sys.executable).parent / "movierec"

# a toy catalog: genres Action (0), Comedy (1), Drama (2)
ACTION, COMEDY, DRAMA = (1, 0, 0), (0, 1, 0), (0, 0, 1)


def toy(reranker, scores, genres, history=(), k=4, vectors=None):
    """Re-rank candidates 0..c-1 (item index = position) with the given scores and genres."""
    genre_matrix = np.asarray(genres, dtype=np.float64)
    inp = RerankInput(item_idx=np.arange(len(scores)), scores=np.asarray(scores, dtype=np.float32), k=k,
                      history_idx=np.asarray(history, dtype=np.int64), genre_matrix=genre_matrix,
                      item_vectors=vectors)
    return reranker.rerank(inp)


# -- parsing -------------------------------------------------------------------------------
def test_parse_gives_back_the_text_form_and_hashable_values():
    """Bug planted: `_weight_text` formatting with "%g" to 3 digits (mmr:0.1234567 read back as
    another weight, so two weights would share a cache key)."""
    for text, canonical in (("mmr:0.3", "mmr:0.3"), ("MMR:0.30", "mmr:0.3"), ("calibrated:1", "calibrated:1"),
                            ("calibrated:0", "calibrated:0"), ("mmr:0.1234567", "mmr:0.1234567"),
                            ("mmr:0.5:genres", "mmr:0.5:genres"), (" mmr : 0.2 ", "mmr:0.2")):
        reranker = parse_rerank(text)
        assert str(reranker) == canonical
        assert parse_rerank(str(reranker)) == reranker and hash(parse_rerank(str(reranker))) == hash(reranker)
    assert parse_rerank(None) is None and parse_rerank("") is None
    assert MMR(0.3).name == "mmr" and Calibrated(0.3).name == "calibrated"
    assert MMR(0.3).pool(10) == 100 and MMR(0.3).pool(50) == 250 and Calibrated(0.3).pool(1000) == 1000


def test_the_pool_limit_is_the_queries_limit():
    from movierec.answers.query import MAX_K
    from movierec.rerank import MAX_POOL

    assert MAX_POOL == MAX_K


@pytest.mark.parametrize("text, fragment", [
    ("mmr:1.5", "must be a number from 0 to 1"), ("calibrated:-0.1", "must be a number from 0 to 1"),
    ("mmr:nan", "must be a number from 0 to 1"), ("mmr:inf", "must be a number from 0 to 1"),
    ("mmr:much", "must be a number from 0 to 1"), ("mmr", "Give the mmr re-ranker as mmr:WEIGHT"),
    ("calibrated:0.3:genres", "Give the calibrated re-ranker as"), ("mmr:0.3:colour", "Unknown MMR similarity"),
    ("fancy:0.3", "Unknown re-ranker 'fancy'; choose from mmr:WEIGHT, calibrated:WEIGHT"),
])
def test_bad_rerankers_are_refused_with_one_sentence(text, fragment):
    """Bug planted: the weight check `0.0 <= w <= 1.0` dropped (mmr:1.5 accepted)."""
    with pytest.raises(ConfigError) as caught:
        parse_rerank(text)
    message = str(caught.value)
    assert fragment in message and "\n" not in message and message.endswith(".")
    for bad in (True, 1.01, -1, float("nan"), "0.3"):
        with pytest.raises(ConfigError):
            MMR(bad)
        with pytest.raises(ConfigError):
            Calibrated(bad)


# -- the re-rankers ------------------------------------------------------------------------
def test_weight_zero_keeps_the_models_order():
    """Bugs planted: relevance normalised as 1 - x (the order reversed); np.argmax replaced
    by the last maximum (ties reordered)."""
    rng = np.random.default_rng(0)
    for trial in range(20):
        c = int(rng.integers(1, 60))
        scores = np.sort(rng.normal(size=c))[::-1]
        if trial % 2:
            scores = np.round(scores, 0)  # many ties
        genres = rng.integers(0, 2, size=(c, 5))
        vectors = rng.normal(size=(c, 4))
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        history = rng.integers(0, c, size=6)
        for cls in (MMR, Calibrated):
            got = toy(cls(0.0), scores, genres, history, k=10, vectors=vectors)
            assert got.tolist() == list(range(min(10, c))), (cls, trial)


def test_mmr_raises_diversity():
    """Bug planted: MMR's penalty sign flipped (+ weight * similarity: it picks look-alikes)."""
    scores = [1.0, 0.95, 0.9, 0.85, 0.5, 0.45, 0.4]
    genres = [ACTION, ACTION, ACTION, ACTION, COMEDY, DRAMA, COMEDY]
    plain = toy(MMR(0.0), scores, genres)
    varied = toy(MMR(0.5), scores, genres)
    assert plain.tolist() == [0, 1, 2, 3]
    assert varied[0] == 0 and set(varied.tolist()) >= {4, 5}
    ild = M.intra_list_diversity(np.vstack([plain, varied]), np.asarray(genres), 4)
    assert ild[1] > ild[0] + 0.3


def test_mmr_uses_the_models_vectors_when_it_has_them():
    """Bug planted: "auto" similarity always from genres (the vectors ignored)."""
    scores = [1.0, 0.9, 0.8, 0.7]
    genres = [ACTION] * 4  # genres cannot tell these apart
    vectors = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    assert toy(MMR(0.6), scores, genres, k=2, vectors=vectors).tolist() == [0, 2]
    assert toy(MMR(0.6, "genres"), scores, genres, k=2).tolist() == [0, 1]
    inp = RerankInput(np.arange(4), np.asarray(scores), 2, np.zeros(0, np.int64), np.asarray(genres, float), None)
    with pytest.raises(ConfigError, match="no movie vectors"):
        MMR(0.5, "vectors").rerank(inp)


def test_calibrated_lowers_kl():
    """Bug planted: the KL term's weight dropped (calibrated ranks by relevance only)."""
    scores = [1.0, 0.97, 0.94, 0.91, 0.88, 0.5, 0.45, 0.4]
    genres = [ACTION] * 5 + [COMEDY, COMEDY, DRAMA]
    history = [0, 1, 5, 6]  # half action, half comedy
    plain = toy(Calibrated(0.0), scores, genres, history)
    calibrated = toy(Calibrated(0.5), scores, genres, history)
    hist = sp.csr_matrix(np.array([[1, 1, 0, 0, 0, 1, 1, 0]] * 2))
    kl = M.calibration_kl(np.vstack([plain, calibrated]), hist, np.asarray(genres), 4)
    assert kl[1] < kl[0] / 3
    assert 2 <= sum(genres[i] == ACTION for i in calibrated.tolist()) <= 3
    full = toy(Calibrated(1.0), scores, genres, history)
    assert full.tolist() == [0, 5, 1, 6]  # two of each, as the history; ties to the better-ranked


def test_the_metric_and_the_reranker_measure_kl_the_same_way():
    """Bug planted: calibration_kl smoothing q~ = (1 - alpha) q + alpha * q (not p)."""
    rng = np.random.default_rng(3)
    genres = rng.integers(0, 2, size=(40, 6)).astype(float)
    genres[5] = 0  # a movie without a genre
    history = [[1, 2, 3, 5], [7, 9]]
    lists = np.array([[10, 11, 12, 5, -1], [20, 21, 22, 23, 24]])
    got = M.calibration_kl(lists, history, genres, 5)
    for row, items in enumerate(lists):
        p = genre_distribution(np.asarray(history[row]), genres)
        q = genre_distribution(items[items >= 0], genres)
        assert got[row] == pytest.approx(float(kl_to_history(p, q)), rel=1e-9)
    assert got[0] > 0
    perfect = M.calibration_kl(np.array([[1, 2, 3, 5]]), [[1, 2, 3, 5]], genres, 4)
    assert perfect[0] == pytest.approx(0.0, abs=1e-12)
    assert np.isnan(M.calibration_kl(np.array([[1, 2]]), [[5]], genres, 2))[0]  # a history without genres


def test_relevance_is_normalised_per_list():
    """Bug planted: `relevance` returns the raw scores (a model with scores in the thousands
    then ignores the weight)."""
    scores = np.array([1.0, 0.95, 0.9, 0.85, 0.5, 0.45, 0.4])
    genres = [ACTION, ACTION, ACTION, ACTION, COMEDY, DRAMA, COMEDY]
    base = toy(MMR(0.3), scores, genres)
    assert toy(MMR(0.3), scores * 5000 + 7, genres).tolist() == base.tolist()
    assert toy(MMR(0.3), scores * 1e-4, genres).tolist() == base.tolist()


# -- the evaluation runner and compare -------------------------------------------------------
@pytest.fixture(scope="module")
def leave_last(ml100k):
    from movierec.evaluation.protocols import build_split
    from movierec.models import create

    split = build_split(ml100k, "leave-last", holdout=1, seed=42)
    train = split.train_full()
    return split, train, create("als", seed=0).fit(train)


def test_the_runner_reranks_the_models_longer_list(leave_last):
    """Bugs planted: the runner ranks only max(ks) (no longer pool: re-ranking can only
    reorder the same ten); the history passed to the re-ranker taken from the wrong rows."""
    from movierec.evaluation.runner import evaluate_ranking

    split, train, model = leave_last
    metrics = ("ndcg", "diversity_genre", "calibration_kl", "coverage")
    plain = evaluate_ranking(model, train, split.test, ks=(10,), metrics=metrics)
    same = evaluate_ranking(model, train, split.test, ks=(10,), metrics=metrics, rerank=MMR(0.0))
    assert np.array_equal(plain.recommendations, same.recommendations)
    mmr = evaluate_ranking(model, train, split.test, ks=(10,), metrics=metrics, rerank=MMR(0.5, "genres"))
    cal = evaluate_ranking(model, train, split.test, ks=(10,), metrics=metrics, rerank=Calibrated(0.7))
    outside = [not set(new) <= set(old)
               for new, old in zip(mmr.recommendations.tolist(), plain.recommendations.tolist())]
    assert np.mean(outside) > 0.5  # most lists hold movies from beyond the model's top ten
    assert mmr.summary["diversity_genre@10"] > 1.1 * plain.summary["diversity_genre@10"]
    assert cal.summary["calibration_kl@10"] < 0.6 * plain.summary["calibration_kl@10"]
    assert cal.info["rerank"] == "calibrated:0.7" and plain.info["rerank"] is None


def test_the_runner_calibrates_each_user_to_their_own_history(leave_last):
    """Bug planted: the history handed to the re-ranker read from the list's row instead of
    the user's row (invisible when every user is evaluated: rows and users then coincide)."""
    from movierec.evaluation.runner import evaluate_ranking

    split, train, model = leave_last
    late = split.test.subset(split.test.user_idx >= 400)  # rows no longer equal user indices
    result = evaluate_ranking(model, train, late, ks=(10,), metrics=("ndcg",), rerank=Calibrated(0.8))
    seen = train.to_csr("ones")
    genres = train.catalog.genre_matrix
    for row in range(0, len(result.user_idx), 50):
        u = int(result.user_idx[row])
        idx, scores = model.rank_indices(np.array([u]), 100, seen)
        own = Calibrated(0.8).rerank(RerankInput(idx[0], scores[0], 10, seen.indices[seen.indptr[u]:seen.indptr[u + 1]],
                                                 genres, None))
        assert result.recommendations[row].tolist() == idx[0][own].tolist()


def test_a_lower_calibration_kl_counts_as_better(leave_last):
    """Bug planted: significance's `better` left as diff > 0 for calibration_kl (a better
    calibrated model marked '-' in the table)."""
    from movierec.evaluation.runner import compare_models
    from movierec.models import create

    split, train, model = leave_last
    comp = compare_models({"pop": create("pop").fit(train), "als": model}, train, split.test, ks=(10,),
                          metrics=("ndcg", "calibration_kl"), n_resamples=50)
    sig = comp.significance.set_index("metric")
    assert comp.results["als"].summary["calibration_kl@10"] < comp.results["pop"].summary["calibration_kl@10"]
    assert bool(sig.loc["calibration_kl@10", "better"]) and sig.loc["calibration_kl@10", "diff"] < 0
    assert bool(sig.loc["ndcg@10", "better"]) == bool(sig.loc["ndcg@10", "diff"] > 0)


def test_served_and_offline_mmr_lists_agree(leave_last, ml100k):
    """The answer layer re-ranks a known user's list as the runner does (same pool, same
    vectors; BPR's embeddings carry a bias column its similarity vectors lack). Bug planted:
    the answerer's MMR compared the embeddings' movie side instead of the model's
    similarity vectors."""
    from movierec.answers import Answerer, KnownUser, Query
    from movierec.artifacts import Bundle
    from movierec.evaluation.runner import evaluate_ranking
    from movierec.models import create

    split, train, _ = leave_last
    model = create("bpr", seed=0).fit(train)
    answerer = Answerer(Bundle.from_model(model, train))
    result = evaluate_ranking(model, train, split.test, ks=(10,), metrics=("ndcg",), rerank=MMR(0.4))
    for row in range(0, len(result.user_idx), 97):
        user = train.users.raw(np.array([result.user_idx[row]]))[0]
        served = answerer.answer(Query(KnownUser(user), k=10, rerank=MMR(0.4))).movie_ids
        assert list(served) == train.items.raw(result.recommendations[row]).tolist()


def test_compare_reranks_and_draws_the_trade_off(tmp_path):
    """Bug planted: `compare` dropped `rerank` on the way to `compare_models` (the lists were
    the models' own)."""
    from movierec.experiments import CompareSpec, compare
    from movierec.reporting.report import write_report

    spec = dict(dataset="ml-100k", protocol="leave-last", holdout=1, models=["pop"], config_root=tmp_path)
    plain = compare(CompareSpec(**spec))
    varied = compare(CompareSpec(**spec, rerank="calibrated:0.8", rerank_curves=["mmr", "calibrated"],
                                 curve_weights=[0, 0.5, 1]))
    doc = varied.to_json()
    assert doc["rerank"] == "calibrated:0.8" and plain.to_json()["rerank"] is None
    assert doc["models"]["pop"]["calibration_kl@10"] < 0.7 * plain.to_json()["models"]["pop"]["calibration_kl@10"]
    points = doc["rerank_curves"]["points"]
    assert [(p["rerank"], p["weight"]) for p in points] == [("mmr", 0), ("mmr", 0.5), ("mmr", 1),
                                                            ("calibrated", 0), ("calibrated", 0.5), ("calibrated", 1)]
    zero = [p for p in points if p["weight"] == 0]
    assert zero[0]["ndcg@10"] == zero[1]["ndcg@10"] == pytest.approx(plain.results["pop"].summary["ndcg@10"])
    paths = write_report(varied, tmp_path / "report")
    assert paths["rerank_curves"].stat().st_size > 10_000
    assert "Re-ranking trade-off" in (tmp_path / "report" / "report.md").read_text()
    with pytest.raises(ConfigError, match="Unknown re-ranker 'fancy' for a trade-off curve"):
        compare(CompareSpec(**spec, rerank_curves=["fancy"]))
    with pytest.raises(ConfigError, match="must be a number from 0 to 1"):
        compare(CompareSpec(**spec, rerank_curves=["mmr"], curve_weights=[0, 2]))


def test_compare_cli_rerank_json_and_movies_with_train_test(tmp_path, ml100k):
    """`compare --train/--test --movies` has genre metrics (None without a movies file) and
    `--json` reports calibration_kl@K. Bug planted: the movies file ignored for explicit files."""
    from movierec.cli import app

    frame = ml100k.to_frame()
    cut = np.quantile(frame["timestamp"], 0.9)
    frame[frame.timestamp < cut].to_csv(tmp_path / "train.csv", index=False)
    frame[frame.timestamp >= cut].to_csv(tmp_path / "test.csv", index=False)
    movies = tmp_path / "movies.csv"
    catalog = ml100k.catalog
    rows = ["movieId,title,genres"] + [
        f'{mid},"{str(catalog.titles[i]).replace(chr(34), "")}",{"|".join(catalog.genres[i]) or "(no genres listed)"}'
        for i, mid in enumerate(ml100k.items.raw_ids.tolist())]
    movies.write_text("\n".join(rows) + "\n")
    runner = CliRunner()
    base = ["compare", "--train", str(tmp_path / "train.csv"), "--test", str(tmp_path / "test.csv"), "--models",
            "pop", "--json", "--config-dir", str(tmp_path)]
    without = runner.invoke(app, base)
    assert without.exit_code == 0, without.output
    doc = json.loads(without.stdout.strip().splitlines()[-1])
    assert doc["models"]["pop"]["calibration_kl@10"] is None and doc["models"]["pop"]["diversity_genre@10"] is None
    given = runner.invoke(app, [*base, "--movies", str(movies), "--rerank", "mmr:0.3"])
    assert given.exit_code == 0, given.output
    doc = json.loads(given.stdout.strip().splitlines()[-1])
    assert doc["rerank"] == "mmr:0.3"
    assert doc["models"]["pop"]["calibration_kl@10"] > 0 and doc["models"]["pop"]["diversity_genre@10"] > 0


def test_compare_cli_refuses_bad_rerankers_in_one_line(tmp_path):
    """Bug planted: the CLI building CompareSpec without rerank (an unknown name accepted)."""
    for args in (["--rerank", "mmr:7"], ["--rerank", "fancy:0.2"], ["--rerank-curve", "fancy"],
                 ["--rerank-curve", "mmr", "--curve-weights", "0,3"], ["--curve-weights", "0,0.5"]):
        proc = subprocess.run([str(SCRIPT), "compare", "--dataset", "ml-100k", "--models", "pop", *args],
                              capture_output=True, text=True, timeout=180)
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        assert proc.returncode == 1 and len(lines) == 1 and lines[0].startswith("error: "), (args, proc.stderr)


# -- the CLI and the API answer what the library answers --------------------------------------
@pytest.fixture(scope="module")
def registry(tmp_path_factory, ml100k) -> Path:
    return make_registry(tmp_path_factory.mktemp("rerank") / "registry", ml100k)


@pytest.fixture(scope="module")
def library(registry):
    from movierec.answers import Answerer
    from movierec.artifacts import ModelRegistry

    return Answerer(ModelRegistry(registry).load(NAME))


@pytest.fixture(scope="module")
def server(registry, tmp_path_factory):
    live = LiveServer(registry, tmp_path_factory.mktemp("rerank_server"), cache_size=100)
    yield live
    live.stop()


def items(answer) -> list:
    return answer.items_json()


def test_the_api_answers_what_the_library_answers(server, library):
    """Bug planted: GET /recommend built its Query without `rerank` (the parameter ignored:
    the plain list answered)."""
    from movierec.answers import KnownUser, NewPerson, Query

    for text in ("mmr:0.5", "calibrated:0.6"):
        rerank = parse_rerank(text)
        want = items(library.answer(Query(KnownUser(42), k=10, rerank=rerank)))
        assert want != items(library.answer(Query(KnownUser(42), k=10)))
        got = server.get("/recommend", params={"user_id": 42, "k": 10, "rerank": text})
        assert got.status_code == 200 and got.json()["items"] == want
        batch = server.post("/recommend/batch", json={"user_ids": [42, 7], "k": 10, "rerank": text}).json()
        both = library.answer_users([42, 7], Query(KnownUser(42), k=10, rerank=rerank))  # scored together, as the route
        assert [r["items"] for r in batch["results"]] == [items(a) for a in both]
        cold = items(library.answer(Query(NewPerson(liked=(1, 50, 181)), k=8, rerank=rerank)))
        assert server.get("/recommend_cold", params={"liked": "1,50,181", "k": 8, "rerank": text}).json()["items"] \
            == cold
        assert server.post("/recommend_cold", json={"liked": [1, 50, 181], "k": 8, "rerank": text}).json()["items"] \
            == cold
    plain = server.get("/recommend", params={"user_id": 42, "k": 10}).json()["items"]
    assert plain == items(library.answer(Query(KnownUser(42), k=10)))


def test_similar_and_profile_lists_take_rerank_too(server, library):
    """Bugs planted: /similar/{id} and /profile/recommend ignoring `rerank` (FastAPI drops
    unknown parameters silently, so the plain list would come back without a word)."""
    from movierec.answers import NewPerson, Query, SimilarTo

    rerank = parse_rerank("mmr:0.6")
    want = items(library.answer(Query(SimilarTo(50), k=10, rerank=rerank)))
    assert want != items(library.answer(Query(SimilarTo(50), k=10)))
    assert server.get("/similar/50", params={"k": 10, "rerank": "mmr:0.6"}).json()["items"] == want
    profile = "rerank-profile-01"
    rated = ((50, 5.0), (172, 5.0), (1, 4.0))
    assert server.post("/ratings", json={"profile": profile, "ratings": [
        {"movie_id": m, "rating": r} for m, r in rated]}).status_code == 200
    want = items(library.answer(Query(NewPerson(rated=rated), k=10, rerank=rerank)))
    got = server.get("/profile/recommend", params={"profile": profile, "k": 10, "rerank": "mmr:0.6"}).json()
    assert got["items"] == want
    with pytest.raises(ConfigError) as caught:
        parse_rerank("mmr:2")
    assert error(server.get("/similar/50", params={"rerank": "mmr:2"}), 422) == str(caught.value)


@pytest.mark.parametrize("method, path, kwargs", [
    ("GET", "/recommend", {"params": {"user_id": 42, "rerank": "mmr:1.5"}}),
    ("GET", "/recommend", {"params": {"user_id": 42, "rerank": "fancy:0.5"}}),
    ("GET", "/recommend_cold", {"params": {"liked": "1,50", "rerank": "calibrated:-1"}}),
    ("POST", "/recommend_cold", {"json": {"liked": [1, 50], "rerank": "mmr"}}),
    ("POST", "/recommend/batch", {"json": {"user_ids": [1], "rerank": "mmr:x"}}),
])
def test_the_api_refuses_bad_rerankers_with_the_librarys_sentence(server, method, path, kwargs):
    """Bug planted: the route catching ConfigError from parse_rerank and answering the plain list."""
    text = kwargs.get("params", kwargs.get("json"))["rerank"]
    with pytest.raises(ConfigError) as caught:
        parse_rerank(text)
    response = httpx.request(method, server.base + path, timeout=60, **kwargs)
    assert error(response, 422) == str(caught.value)


def test_the_fast_path_leaves_rerank_to_the_route():
    """The middleware's plain-question parsers pass a query with rerank= on to the route."""
    from movierec.serving.middleware import cold_query, recommend_query

    assert recommend_query(b"user_id=42&k=10") is not None
    assert recommend_query(b"user_id=42&k=10&rerank=mmr%3A0.3") is None
    assert cold_query(b"liked=1,50&rerank=calibrated%3A0.5") is None


def test_the_cli_answers_what_the_library_answers_and_refuses_in_one_line(registry, library):
    """Bug planted: `recommend --rerank` parsed but not passed to the Query."""
    from movierec.answers import KnownUser, Query, SimilarTo

    def run(*args):
        return subprocess.run([str(SCRIPT), args[0], "--registry", str(registry), "--name", NAME, *args[1:]],
                              capture_output=True, text=True, env=dict(os.environ), timeout=180)

    proc = run("recommend", "--user", "42", "-k", "10", "--rerank", "mmr:0.5", "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout.strip().splitlines()[-1])
    assert doc["rerank"] == "mmr:0.5"
    assert doc["items"] == items(library.answer(Query(KnownUser(42), k=10, rerank=MMR(0.5))))
    proc = run("similar", "--movie", "50", "-k", "6", "--rerank", "calibrated:0.4", "--json")
    assert proc.returncode == 0, proc.stderr
    similar = library.answer(Query(SimilarTo(50), k=6, rerank=Calibrated(0.4)))
    assert not similar.fallback
    assert json.loads(proc.stdout.strip().splitlines()[-1])["items"] == items(similar)
    for args in (("recommend", "--user", "42", "--rerank", "mmr:2"), ("similar", "--movie", "50", "--rerank", "x:1")):
        proc = run(*args)
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        assert proc.returncode == 1 and len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
        with pytest.raises(ConfigError) as caught:
            parse_rerank(args[-1])
        assert lines[0] == f"error: {caught.value}"
