"""`als-spark`: Spark MLlib's ALS fitted in `local[2]`, served as an ordinary bundle (issue 19, item 6).

One Spark session serves the module (the `spark` fixture); a model finds it running and
leaves it running. The first test fits with no session running, so the model starts and
stops its own. Loading a bundle and answering from it runs in a subprocess where pyspark
cannot be imported and no Java is on PATH. Missing Java and a missing pyspark are each
one sentence (exit 1 from the CLI, nothing written).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from movierec.errors import ConfigError
from movierec.models import create
from movierec.models.als_spark import (
    DEFAULT_MASTER,
    MASTER_ENV,
    java_problem,
    parse_driver_memory,
    resolve_master,
    spark_session,
)

try:
    import pyspark  # noqa: F401

    PYSPARK_MISSING = None
except ImportError:
    PYSPARK_MISSING = "pyspark is not installed (bash scripts/setup.sh dev,spark)"
SPARK_MISSING = PYSPARK_MISSING or java_problem()

needs_pyspark = pytest.mark.skipif(PYSPARK_MISSING is not None, reason=str(PYSPARK_MISSING))
needs_spark = pytest.mark.skipif(SPARK_MISSING is not None, reason=str(SPARK_MISSING))

PARAMS = {"factors": 16, "iterations": 5, "regularization": 0.05, "alpha": 10.0, "seed": 0}
ROOT = Path(__file__).resolve().parents[1]


def _cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    code = "import sys; from movierec.cli import main; sys.argv = ['movierec', *sys.argv[1:]]; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=300)


@pytest.fixture(scope="module")
def spark(small_split):
    """The module's session, opened after one fit with no session running (which must start
    Spark and stop it again): {"session", "own_fit": (context before, context after, model)}."""
    if SPARK_MISSING is not None:
        pytest.skip(str(SPARK_MISSING))
    from pyspark import SparkContext

    before = SparkContext._active_spark_context
    model = create("als-spark", **{**PARAMS, "iterations": 2}).fit(small_split.train)
    after = SparkContext._active_spark_context
    with spark_session("local[2]", driver_memory="1g") as session:
        yield {"session": session, "own_fit": (before, after, model)}


@pytest.fixture(scope="module")
def fitted(spark, small_split):
    return create("als-spark", **PARAMS).fit(small_split.train)


# -- without Spark running ------------------------------------------------------------------
@needs_spark
def test_a_fit_with_no_session_starts_spark_and_stops_it(spark, small_split):
    before, after, model = spark["own_fit"]
    assert before is None, "no session may run before the module's first fit"
    assert after is None, "the model must stop the session it started"
    assert model.user_embeddings_.shape == (small_split.train.n_users, 16)


def test_master_comes_from_the_parameter_then_spark_submit_then_the_environment(monkeypatch):
    monkeypatch.delenv("PYSPARK_GATEWAY_PORT", raising=False)
    monkeypatch.delenv(MASTER_ENV, raising=False)
    assert resolve_master(None) == DEFAULT_MASTER == "local[2]"
    monkeypatch.setenv(MASTER_ENV, "spark://cluster:7077")
    assert resolve_master(None) == "spark://cluster:7077"
    assert resolve_master("local[4]") == "local[4]"
    monkeypatch.setenv("PYSPARK_GATEWAY_PORT", "4040")  # started by spark-submit: its --master
    assert resolve_master(None) is None and resolve_master("yarn") == "yarn"
    with pytest.raises(ConfigError, match="master must name a Spark master"):
        resolve_master("")
    assert parse_driver_memory("512m") == 512 << 20 and parse_driver_memory("2g") == 2 << 30
    with pytest.raises(ConfigError, match="driver_memory must be a size"):
        parse_driver_memory("lots")


def test_java_problem_names_the_package_when_java_is_missing_or_too_old(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    sentence = java_problem({"PATH": str(empty)})
    assert sentence == ("als-spark needs Java 17: install it with `apt-get install openjdk-17-jre-headless` "
                        "(or set JAVA_HOME).")
    assert "has no bin/java" in java_problem({"PATH": str(empty), "JAVA_HOME": str(empty)})
    old = tmp_path / "jdk11"
    (old / "bin").mkdir(parents=True)
    (old / "bin" / "java").write_text('#!/bin/sh\necho \'openjdk version "11.0.22" 2024-01-16\' >&2\n')
    (old / "bin" / "java").chmod(0o755)
    assert "is Java 11" in java_problem({"PATH": "/usr/bin:/bin", "JAVA_HOME": str(old)})
    (old / "bin" / "java").write_text('#!/bin/sh\necho \'java version "1.8.0_392"\' >&2\n')
    assert "is Java 8" in java_problem({"PATH": "/usr/bin:/bin", "JAVA_HOME": str(old)})
    (old / "bin" / "java").write_text('#!/bin/sh\necho \'openjdk version "21.0.1" 2023-10-17\' >&2\n')
    assert java_problem({"PATH": "/usr/bin:/bin", "JAVA_HOME": str(old)}) is None


@needs_pyspark
def test_cli_without_java_says_how_to_get_it_exits_1_and_writes_nothing(tmp_path):
    ratings = tmp_path / "ratings.csv"
    rows = [f"{u},{i},{1 + (u * i) % 5},{1000 + u + i}" for u in range(1, 21) for i in range(1, 16)]
    ratings.write_text("userId,movieId,rating,timestamp\n" + "\n".join(rows) + "\n")
    nojava = tmp_path / "bin"
    nojava.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("JAVA_HOME", "PYSPARK_GATEWAY_PORT", MASTER_ENV)}
    env["PATH"] = str(nojava)
    out = tmp_path / "model"
    proc = _cli(["train", "--model", "als-spark", "--data", str(ratings), "--out", str(out), "--quiet"], env,
                tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "als-spark needs Java 17: install it with `apt-get install openjdk-17-jre-headless`" in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not out.exists()


def test_without_pyspark_the_model_says_which_extra_to_install(monkeypatch, small_split):
    monkeypatch.setitem(sys.modules, "pyspark", None)  # `import pyspark` raises ImportError
    with pytest.raises(ConfigError, match=r"install the spark extra with `bash scripts/setup.sh dev,spark` "
                                          r"\(or `pip install 'movierec\[spark\]'`\)"):
        create("als-spark", **PARAMS).fit(small_split.train)


def test_bad_parameters_are_one_sentence_before_spark_starts(small_split):
    with pytest.raises(ConfigError, match="Explicit ALS"):
        create("als-spark", implicit_prefs=False).fit(small_split.train)
    with pytest.raises(ConfigError, match="factors >= 1"):
        create("als-spark", factors=0).fit(small_split.train)


# -- with the module's Spark session --------------------------------------------------------
@needs_spark
def test_fit_uses_the_running_session_and_leaves_it_running(spark, fitted, small_split):
    from pyspark import SparkContext

    assert SparkContext._active_spark_context is spark["session"].sparkContext
    U, V = fitted.user_embeddings_, fitted.item_embeddings_
    assert U.shape == (small_split.train.n_users, 16) and V.shape == (small_split.train.n_items, 16)
    assert U.dtype == np.float32 and np.isfinite(U).all() and np.isfinite(V).all()
    # every training user and movie has a factor row (index order kept); the others stay zero
    rated = np.bincount(small_split.train.item_idx, minlength=small_split.train.n_items) > 0
    assert (np.abs(V[rated]).sum(axis=1) > 0).all() and not V[~rated].any()


@needs_spark
def test_fold_in_reproduces_sparks_own_user_factors(fitted, small_split):
    """Spark's last step solves every user with the movie factors fixed; folding a training
    user's movies in solves the same equations, so it gives back that user's vector."""
    train = small_split.train
    for user in train.users.raw(np.arange(0, 300, 37)):
        u = int(train.users.lookup([user])[0])
        movies = train.items.raw(fitted.seen_[u].indices)
        person = fitted.fold_in(movies)
        np.testing.assert_allclose(person.vector, fitted.user_embeddings_[u], rtol=2e-3, atol=2e-4)


@needs_spark
def test_explicit_mode_fits_the_ratings_and_folds_in_as_spark_solves(spark, small_split):
    model = create("als-spark", **{**PARAMS, "implicit_prefs": False, "values": "rating",
                                   "regularization": 0.1}).fit(small_split.train)
    test = small_split.test
    u, i = test.user_idx, test.item_idx
    predicted = np.einsum("nd,nd->n", model.user_embeddings_[u], model.item_embeddings_[i])
    rmse = float(np.sqrt(np.mean((predicted - test.rating) ** 2)))
    assert rmse < 1.3, f"explicit ALS should predict held-out stars, RMSE {rmse:.3f}"
    # user 5's own ratings, every one counted as liked (threshold 1 star), give back its vector
    start, end = model.seen_.indptr[5], model.seen_.indptr[6]
    movies, stars = small_split.train.items.raw(model.seen_.indices[start:end]), model.seen_ratings_[start:end]
    person = model.fold_in(movies, stars, liked_threshold=1)
    np.testing.assert_allclose(person.vector, model.user_embeddings_[5], rtol=2e-3, atol=2e-4)


@needs_spark
def test_ranks_like_als_and_beats_popularity(fitted, small_split):
    from movierec.evaluation.runner import evaluate_ranking

    def ndcg(model) -> float:
        return evaluate_ranking(model, small_split.train, small_split.test, ks=(10,)).summary["ndcg@10"]

    als = create("als", factors=16, iterations=5, regularization=5.0, alpha=10.0, seed=0).fit(small_split.train)
    pop = create("pop").fit(small_split.train)
    spark_ndcg, als_ndcg, pop_ndcg = ndcg(fitted), ndcg(als), ndcg(pop)
    # measured when written: als-spark 0.298, als 0.323, pop 0.215
    assert spark_ndcg > 1.1 * pop_ndcg, f"als-spark {spark_ndcg:.4f} vs pop {pop_ndcg:.4f}"
    assert spark_ndcg > 0.85 * als_ndcg, f"als-spark {spark_ndcg:.4f} vs als {als_ndcg:.4f}"


@needs_spark
def test_bundle_loads_and_answers_with_no_pyspark_and_no_java(fitted, small_split, tmp_path):
    from movierec.answers import Answerer, KnownUser, Query
    from movierec.artifacts import Bundle, load_bundle, save_bundle
    from movierec.retrieval import ModelIndex

    folder = save_bundle(Bundle.from_model(fitted, small_split.train), tmp_path / "bundle") or tmp_path / "bundle"
    user = int(small_split.train.users.raw([7])[0])
    loaded = load_bundle(folder)
    answer = Answerer(loaded, ModelIndex.build(loaded.model, "exact")).answer(Query(KnownUser(user), k=10))
    assert answer.movie_ids == fitted.recommend([user], k=10).items_of(0).tolist()

    probe = textwrap.dedent(f"""
        import json, sys
        sys.modules["pyspark"] = None  # any import of pyspark fails
        from movierec.answers import Answerer, KnownUser, Query
        from movierec.artifacts import load_bundle
        from movierec.retrieval import ModelIndex
        bundle = load_bundle({str(folder)!r})
        answer = Answerer(bundle, ModelIndex.build(bundle.model, "exact")).answer(Query(KnownUser({user}), k=10))
        print(json.dumps([bundle.model.name, [int(m) for m in answer.movie_ids]]))
    """)
    env = {k: v for k, v in os.environ.items() if k != "JAVA_HOME"}
    env["PATH"] = str(tmp_path)
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    name, movies = json.loads(proc.stdout.strip().splitlines()[-1])
    assert name == "als-spark" and movies == answer.movie_ids
