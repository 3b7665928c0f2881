"""The two-stage ranker (`ranker`): its leak-free stage-2 window, its candidates and its features.

The registered-model promises (lists, bundles, determinism) are the contract suite's
(tests/test_contract.py -k ranker); these tests cover what is the ranker's own.
"""

from __future__ import annotations

import numpy as np
import pytest

from movierec.data.dataset import Catalog, Dataset
from movierec.data.idmap import IdMap
from movierec.errors import CapabilityError, ConfigError, SplitError
from movierec.features.ranker_features import CONTEXT_FEATURES, RankerFeatures
from movierec.models import create
from movierec.models.ranker import Ranker, check_stage2_window

FAST = {"generators": [["ease", {"regularization": 200.0}], ["pop", {}]], "n_candidates": 30,
        "n_estimators": 20, "min_child_samples": 20, "seed": 0}
DAY = 86400


@pytest.fixture(scope="module")
def train(ml100k):
    """The first 200 users of ML-100K, their last rating held out as a test part would be."""
    from movierec.data.split import leave_last_k_split

    return leave_last_k_split(ml100k.subset(ml100k.user_idx < 200), k=1, validation_k=0).train


@pytest.fixture(scope="module")
def fitted(train):
    return create("ranker", **FAST).fit(train)


def test_the_generators_fit_with_the_rankers_runtime_and_seed(train, monkeypatch):
    """A torch generator trains on the device, threads and progress the ranker's fit was
    given (both its stage-1 fit and its final one), seeded by the ranker's seed."""
    from movierec.models.mf import BiasedMF
    from movierec.training.options import RuntimeOptions

    seen: list[RuntimeOptions] = []
    real_fit = BiasedMF._fit

    def recording_fit(self, data, validation):
        seen.append(self.runtime_)
        return real_fit(self, data, validation)

    monkeypatch.setattr(BiasedMF, "_fit", recording_fit)
    params = {**FAST, "generators": [["mf", {"dim": 8, "epochs": 1}], ["pop", {}]], "seed": 7}
    runtime = RuntimeOptions(seed=1, device="cpu", num_threads=2, progress=False, distributed=False)
    ranker = create("ranker", **params).fit(train, runtime=runtime)
    assert seen == [RuntimeOptions(seed=7, device="cpu", num_threads=2, progress=False, distributed=False)] * 2
    assert ranker.generators_[0].runtime_ == seen[-1]


# -- the stage-2 window ------------------------------------------------------------------
def test_window_is_each_persons_latest_training_ratings(train):
    """The window is carved from the training data only: every person's latest `holdout`
    ratings, disjoint from the generators' part, which together make up the training data."""
    fit_part, window = Ranker(**FAST, holdout=2)._stage2_window(train)
    assert fit_part.n_ratings + window.n_ratings == train.n_ratings
    assert np.bincount(window.user_idx, minlength=train.n_users).max() == 2
    last_fit = np.full(train.n_users, -1)
    np.maximum.at(last_fit, fit_part.user_idx, fit_part.timestamp)
    assert (window.timestamp >= last_fit[window.user_idx]).all()
    n = train.n_items
    assert not np.isin(window.user_idx.astype(np.int64) * n + window.item_idx,
                       fit_part.user_idx.astype(np.int64) * n + fit_part.item_idx).any()
    check_stage2_window(fit_part, window)  # the fit's own check agrees


def test_fit_records_a_window_inside_the_training_data(fitted, train):
    info = fitted.stage2_
    assert info["fit_ratings"] + info["window_ratings"] == train.n_ratings
    assert info["window_end"] <= int(train.timestamp.max())
    assert 0 < info["groups_with_a_hit"] <= info["window_users"]


def test_a_given_validation_set_is_the_window_and_seen_at_serving(train):
    """fit(train, validation): the validation ratings label stage 2, then the generators
    and the seen movies (never recommended again) take them in."""
    fit_part, window = Ranker(**FAST)._stage2_window(train)
    model = create("ranker", **FAST).fit(fit_part, validation=window)
    assert model.stage2_["window_ratings"] == window.n_ratings
    everything = train.to_csr("ones").nnz
    assert model.seen_.nnz == everything and len(model.seen_ratings_) == everything
    assert all(gen.seen_.nnz == everything for gen in model.generators_)
    top = model.recommend(train.users.raw(window.user_idx[:20]), k=10)
    for user, items in zip(window.user_idx[:20], top.item_ids):
        held = window.item_idx[window.user_idx == user]
        assert not np.isin(model.item_index(items), held).any()


def test_a_planted_leak_fails_the_fit(train, monkeypatch):
    """Stage-2 labels taken from data the generators also train on: the fit refuses."""
    def leaky(self, data):
        latest = np.argsort(data.timestamp, kind="stable")[-500:]
        return data, data.subset(latest)  # the window's ratings are in the generators' data too

    monkeypatch.setattr(Ranker, "_stage2_window", leaky)
    with pytest.raises(SplitError, match="shares ratings with its generators"):
        create("ranker", **FAST).fit(train)


def test_a_test_set_given_as_window_that_overlaps_training_fails(ml100k, train):
    """A validation set holding training ratings (e.g. the test part re-used by mistake) leaks."""
    overlap = train.subset(np.arange(0, train.n_ratings, 50))
    with pytest.raises(SplitError, match="shares ratings"):
        create("ranker", **FAST).fit(train, validation=overlap)


def test_a_window_older_than_the_training_ratings_fails(train):
    """A window of each person's earliest ratings labels the past from the future: refused."""
    order = np.lexsort((train.timestamp, train.user_idx))
    starts = np.r_[0, np.flatnonzero(np.diff(train.user_idx[order])) + 1]
    earliest = np.zeros(train.n_ratings, dtype=bool)
    earliest[order[starts]] = True
    with pytest.raises(SplitError, match="older than"):
        check_stage2_window(train.subset(~earliest), train.subset(earliest))


# -- candidates and scores ---------------------------------------------------------------
def test_movies_outside_every_generators_candidates_score_below_every_candidate(fitted):
    users = np.arange(0, 200, 7)
    scores = fitted.score_indices(users)
    seen = fitted.seen_[users].toarray() > 0
    pool = np.zeros_like(seen)
    for gen in fitted.generators_:
        s = gen.score_indices(users).astype(np.float64)
        s[seen] = -np.inf
        top = np.argsort(-s, axis=1, kind="stable")[:, :fitted.n_candidates]
        np.put_along_axis(pool, top, True, axis=1)
    for row in range(len(users)):
        cand, rest = scores[row, pool[row]], scores[row, ~pool[row]]
        assert len(cand) >= fitted.n_candidates and len(rest)
        assert rest.max() < cand.min(), f"user {users[row]}: a non-candidate outranks a candidate"
    # the second stage really re-orders: its list is not the first generator's list
    first = fitted.generators_[0].score_indices(users).astype(np.float64)
    first[seen] = -np.inf
    assert (np.argsort(-scores, axis=1)[:, :10] != np.argsort(-first, axis=1)[:, :10]).any()


def test_the_lightgbm_model_is_saved_as_its_text_format(fitted):
    state = fitted.state_dict()
    blob = state.arrays["model.lgbm"]
    assert blob.dtype == np.uint8
    assert bytes(blob).decode("utf-8").startswith("tree\n")
    assert state.meta["model"]["features"] == fitted.feature_names()
    gains = fitted.feature_importance()
    assert list(gains) == fitted.feature_names() and sum(gains.values()) > 0


@pytest.mark.parametrize("params, match", [
    ({"n_candidates": 0}, "n_candidates"),
    ({"n_estimators": 0}, "n_estimators"),
    ({"holdout": 0}, "holdout must be a positive whole number"),
    ({"generators": []}, "at least one candidate generator"),
    ({"generators": [["ranker", {}]]}, "cannot use itself"),
    ({"generators": [["ease", {"no_such": 1}]]}, "Bad parameters for ranker generator 'ease'"),
])
def test_bad_parameters_are_refused_in_one_sentence(train, params, match):
    with pytest.raises(ConfigError, match=match):
        create("ranker", **{**FAST, **params}).fit(train)


# -- the context features ----------------------------------------------------------------
def _tiny() -> Dataset:
    """3 people, 4 movies; movie 3 is rated only at the end (trending), movie 0 early."""
    users, items = IdMap([1, 2, 3]), IdMap([10, 20, 30, 40])
    u = np.array([0, 0, 1, 1, 2, 0, 1, 2, 2, 0], dtype=np.int32)
    i = np.array([0, 1, 0, 1, 0, 2, 2, 1, 3, 3], dtype=np.int32)
    r = np.array([5, 4, 3, 2, 4, 5, 1, 3, 5, 4], dtype=np.float32)
    t = (np.arange(10, dtype=np.int64) * 10 + 1_000_000_000) * 1
    t[-2:] = t[-3] + np.array([100, 200]) * DAY  # the last two ratings (both of movie 3) much later
    genres = np.array([[1, 0], [1, 0], [0, 1], [0, 1]], dtype=np.uint8)
    catalog = Catalog(titles=np.array(["a", "b", "c", "d"], dtype=object), years=np.array([1990, 1995, -1, 2000]),
                      genres=[["A"], ["A"], ["B"], ["B"]], genre_names=["A", "B"], genre_matrix=genres)
    return Dataset("tiny", users, items, u, i, r, t, catalog=catalog)


def test_context_features_of_a_tiny_history():
    ds = _tiny()
    f = RankerFeatures.fit(ds, recent_share=0.2, shrinkage=0.0)
    x = f.pairs(np.array([0, 2, 1]), np.array([3, 0, 2]))
    col = {name: x[:, k] for k, name in enumerate(CONTEXT_FEATURES)}
    np.testing.assert_allclose(col["movie_log_pop"], np.log1p([2, 3, 2]), rtol=1e-6)
    # movie 3 is all of the recent ratings: rising; movie 0 none of them: falling
    assert col["movie_trend"][0] > 0 > col["movie_trend"][1]
    np.testing.assert_allclose(col["movie_mean_rating"], [4.5, 4.0, 3.0], rtol=1e-6)
    assert np.isnan(col["movie_age_years"][2]) and col["movie_age_years"][1] > col["movie_age_years"][0]
    np.testing.assert_allclose(col["user_log_activity"], np.log1p([4, 3, 3]), rtol=1e-6)
    np.testing.assert_allclose(col["user_mean_rating"], [4.5, 4.0, 2.0], rtol=1e-6)
    # person 2 (index 1) last rated 100+ days before the end; person 1 (index 0) rated at the end
    assert col["user_days_since_last"][0] == pytest.approx(0.0)
    assert col["user_days_since_last"][2] > 199
    # genre profiles: person index 0 rated A, A, B, B; index 2 A, A, B; index 1 A, A, B
    np.testing.assert_allclose(col["genre_match"], [1 / np.sqrt(2), 2 / np.sqrt(5), 1 / np.sqrt(5)], rtol=1e-6)
    restored = RankerFeatures.from_state(f.state())
    np.testing.assert_array_equal(restored.pairs(np.array([0, 1]), np.array([1, 2])),
                                  f.pairs(np.array([0, 1]), np.array([1, 2])))


def test_a_new_persons_context_features_are_a_known_persons_with_the_same_history():
    """Person index 0 of the tiny history rated movies 0-3 (5, 4, 5, 4 stars), the last one
    at the history's end: given as a new person, their columns are the same."""
    f = RankerFeatures.fit(_tiny(), recent_share=0.2, shrinkage=0.0)
    items = np.array([3, 0, 2, 1])
    new = f.new_person_pairs(np.array([0, 1, 2, 3]), np.array([5.0, 4.0, 5.0, 4.0]), items)
    np.testing.assert_allclose(new, f.pairs(np.zeros(4, dtype=np.int64), items), rtol=1e-6)
    liked_only = f.new_person_pairs(np.array([0, 2]), None, items)
    col = {name: liked_only[:, k] for k, name in enumerate(CONTEXT_FEATURES)}
    assert np.isnan(col["user_mean_rating"]).all()  # no ratings given: unknown, not made up
    np.testing.assert_allclose(col["user_log_activity"], np.log1p(2), rtol=1e-6)
    np.testing.assert_allclose(col["genre_match"], np.full(4, 1 / np.sqrt(2)), rtol=1e-6)


# -- a new person (fold-in) ----------------------------------------------------------------
GIVEN = [50, 172, 181, 1, 99]
STARS = [5.0, 5.0, 4.0, 4.5, 1.0]


def test_a_new_person_is_folded_in_through_the_generators_and_stage_2(fitted):
    person = fitted.fold_in(GIVEN, STARS)
    assert person.liked.tolist() == [True, True, True, True, False]
    assert np.isfinite(person.scores).all() and person.vector is None
    # the candidates of the generators' fold-ins, scored by LambdaRank over the given ratings' features
    idx = fitted.item_index(GIVEN)
    gens = [np.array(g.fold_in(GIVEN, STARS).scores, dtype=np.float64) for g in fitted.generators_]
    for s in gens:
        s[idx] = -np.inf
    ease_top = set(np.argsort(-gens[0], kind="stable")[:fitted.n_candidates].tolist())
    pop_top = set(np.argsort(-gens[1], kind="stable")[:fitted.n_candidates].tolist())
    candidates = np.array(sorted(ease_top | pop_top))
    order = np.argsort(-person.scores, kind="stable")
    assert set(order[:len(candidates)].tolist()) == set(candidates.tolist())
    gen_cols = []
    for s in gens:
        top = np.argsort(-s, kind="stable")[:fitted.n_candidates]
        rank = np.full(len(s), float(fitted.n_candidates))
        rank[top] = np.arange(fitted.n_candidates)
        gen_cols += [s[candidates], rank[candidates], s[top[0]] - s[candidates]]
    x = np.concatenate([np.stack(gen_cols, axis=1).astype(np.float32),
                        fitted.features_.new_person_pairs(idx, np.asarray(STARS), candidates)], axis=1)
    np.testing.assert_allclose(person.scores[candidates], fitted.booster_.predict(x, num_threads=1),
                               rtol=1e-5, atol=1e-6)
    alone = fitted.fold_in(GIVEN[-1:], STARS[-1:])  # a disliked movie only: ease still folds it in
    assert np.isfinite(alone.scores).all() and not alone.liked.any()


def test_a_generator_that_cannot_fold_in_is_named(train):
    model = create("ranker", **{**FAST, "generators": [["ease", {"regularization": 200.0}],
                                                       ["global-mean", {}]]}).fit(train)
    with pytest.raises(CapabilityError, match="generator 'global-mean' cannot fold in a new person"):
        model.fold_in(GIVEN, STARS)


def test_a_new_person_gets_the_rankers_list_from_the_cli_and_the_api(fitted, train, tmp_path):
    import json
    import subprocess
    import sys
    from pathlib import Path

    from fastapi.testclient import TestClient

    from movierec.artifacts import Bundle, ModelRegistry
    from movierec.serving.app import create_app
    from movierec.serving.settings import ServeSettings

    registry = tmp_path / "registry"
    ModelRegistry(registry).add(Bundle.from_model(fitted, train), "ranker")
    expected = fitted.recommend_new(GIVEN, STARS, k=10).items_of(0).tolist()
    rated = ",".join(f"{m}={r:g}" for m, r in zip(GIVEN, STARS))
    proc = subprocess.run([str(Path(sys.executable).with_name("movierec")), "recommend", "--registry", str(registry),
                           "--name", "ranker", "--rated", rated, "--k", "10", "--json"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout.strip().splitlines()[-1])
    assert not doc["fallback"] and [row["movie_id"] for row in doc["items"]] == expected
    app = create_app(ServeSettings(registry, feedback_db=tmp_path / "feedback.sqlite3"))
    with TestClient(app) as client:
        stored = client.post("/ratings", json={"profile": "new-person-01", "ratings": [
            {"movie_id": m, "rating": r} for m, r in zip(GIVEN, STARS)]})
        assert stored.status_code == 200, stored.text
        page = client.get("/profile/recommend", params={"profile": "new-person-01", "k": 10}).json()
        cold = client.post("/recommend_cold", json={"ratings": [{"movie_id": m, "rating": r}
                                                                for m, r in zip(GIVEN, STARS)], "k": 10}).json()
    for answer in (page, cold):
        assert not answer["fallback"] and [row["movie_id"] for row in answer["items"]] == expected


# -- the compare report -------------------------------------------------------------------
def test_the_compare_report_shows_the_rankers_feature_importance(tmp_path):
    """Bugs planted: `compare` not recording the importance; the report leaving it out."""
    from movierec.experiments import CompareSpec, compare
    from movierec.reporting.report import feature_importance_table, write_report

    spec = dict(dataset="ml-100k", protocol="leave-last", holdout=1, config_root=tmp_path)
    comp = compare(CompareSpec(**spec, models=["pop", "ranker"], params={"ranker": FAST}))
    gains = comp.info["feature_importance"]["ranker"]
    assert list(gains) == Ranker(**FAST).feature_names() and sum(gains.values()) > 0
    table = feature_importance_table(comp)
    assert table["share"].sum() == pytest.approx(1.0) and table["gain"].is_monotonic_decreasing
    paths = write_report(comp, tmp_path / "report")
    assert paths["feature_importance"].stat().st_size > 5_000
    text = (tmp_path / "report" / "report.md").read_text()
    section = text.split("## Ranker feature importance", 1)[1].split("\n## ", 1)[0]
    top = table.iloc[0]
    assert f"| ranker | {top['feature']} |" in section and f"{top['share']:.1%}" in section
    assert "![feature_importance](feature_importance.png)" in text
    plain = compare(CompareSpec(**spec, models=["pop"]))
    assert "feature_importance" not in plain.info
    assert "feature_importance" not in write_report(plain, tmp_path / "plain")
    assert "Ranker feature importance" not in (tmp_path / "plain" / "report.md").read_text()
