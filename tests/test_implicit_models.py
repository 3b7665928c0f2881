"""Contract and quality tests for the implicit-feedback models: ALS, BPR, EASE, SeqEASE."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from movierec.data.split import leave_last_k_split
from movierec.errors import ConfigError, NotFittedError, UnknownItemError, UnknownUserError
from movierec.evaluation.runner import evaluate_ranking
from movierec.models.base import Recommender
from movierec.models.registry import create

# small, fast settings; quality is checked separately with tuned-like settings
FAST = {
    "als": {"factors": 16, "iterations": 5},
    "bpr": {"factors": 16, "iterations": 20},
    "ease": {"regularization": 200.0},
    "seq-ease": {"regularization": 200.0, "tau": 10.0, "floor": 0.2, "beta": 0.5},
}
NAMES = list(FAST)


@pytest.fixture(scope="module")
def loo(ml100k):
    """ML-100K, per-user temporal leave-last-1 (validation: the one before)."""
    return leave_last_k_split(ml100k, k=1)


@pytest.fixture(scope="module")
def small_train(ml100k):
    """The first 300 users of ML-100K: enough for contract checks, quick to fit."""
    keep = ml100k.user_idx < 300
    return ml100k.subset(keep, name="ml-100k:first-300")


@pytest.fixture(scope="module")
def fitted(small_train):
    return {name: create(name, **params).fit(small_train) for name, params in FAST.items()}


@pytest.mark.parametrize("name", NAMES)
def test_fit_returns_self(name, small_train):
    model = create(name, **FAST[name])
    assert model.fit(small_train) is model


@pytest.mark.parametrize("name", NAMES)
def test_unfitted_raises(name):
    with pytest.raises(NotFittedError):
        create(name).recommend([1])


@pytest.mark.parametrize("name", NAMES)
def test_k_and_exclude_seen(name, fitted, small_train):
    model = fitted[name]
    users = small_train.users.raw(np.arange(5))
    recs = model.recommend(users, k=7)
    assert recs.item_ids.shape == (5, 7)
    assert np.all(np.diff(recs.scores, axis=1) <= 0)
    seen = small_train.to_csr("ones")
    for row, u in enumerate(range(5)):
        seen_items = set(small_train.items.raw(seen[u].indices).tolist())
        assert not seen_items & set(recs.item_ids[row].tolist())
        assert len(set(recs.item_ids[row].tolist())) == 7
    # without exclusion the top list may contain seen movies, and scores are the same
    top_all = model.recommend(users, k=7, exclude_seen=False)
    assert top_all.scores[0, 0] >= recs.scores[0, 0]


@pytest.mark.parametrize("name", NAMES)
def test_unknown_user(name, fitted):
    with pytest.raises(UnknownUserError):
        fitted[name].recommend([10**9], k=5)


@pytest.mark.parametrize("name", NAMES)
def test_save_load_identical_scores(name, fitted, tmp_path, small_train):
    model = fitted[name]
    path = model.save(tmp_path / name)
    loaded = Recommender.load(path)
    assert type(loaded) is type(model)
    assert loaded.get_params() == model.get_params()
    users = small_train.users.raw(np.arange(10))
    np.testing.assert_array_equal(loaded.score(users), model.score(users))
    np.testing.assert_array_equal(loaded.recommend(users, k=10).item_ids, model.recommend(users, k=10).item_ids)


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_model(name, small_train):
    a = create(name, **FAST[name]).fit(small_train)
    b = create(name, **FAST[name]).fit(small_train)
    users = small_train.users.raw(np.arange(20))
    np.testing.assert_array_equal(a.score(users), b.score(users))


def test_no_blas_thread_warning(small_train):
    """implicit warns about OpenBLAS threads unless the wrapper limits them; users never see it."""
    import implicit.utils

    implicit.utils._checked_blas_config = False  # make implicit check again
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        create("als", factors=8, iterations=2).fit(small_train)
        create("bpr", factors=8, iterations=2).fit(small_train)


def test_orientation_and_embeddings(fitted, small_train):
    als, bpr = fitted["als"], fitted["bpr"]
    assert als.user_embeddings_.shape == (small_train.n_users, 16)
    assert als.item_embeddings_.shape == (small_train.n_items, 16)
    # BPR keeps implicit's bias column: user side all ones, dot product = implicit's score
    assert bpr.user_embeddings_.shape[1] == bpr.item_embeddings_.shape[1]
    np.testing.assert_array_equal(bpr.user_embeddings_[:, -1], 1.0)
    np.testing.assert_array_equal(bpr.item_bias_, bpr.item_embeddings_[:, -1])
    u = small_train.users.raw([3])
    np.testing.assert_allclose(
        als.score(u)[0], als.item_embeddings_ @ als.user_embeddings_[3], rtol=1e-5, atol=1e-6
    )
    sims = als.similar_items(small_train.items.raw([0]), k=5)
    assert sims.item_ids.shape == (1, 5)


def test_bad_params(small_train):
    with pytest.raises(ConfigError):
        create("als", values="clicks").fit(small_train)
    with pytest.raises(ConfigError):
        create("ease", regularization=0.0).fit(small_train)
    with pytest.raises(ConfigError):
        create("seq-ease", floor=2.0).fit(small_train)


def test_ease_similar_items_and_left_out_items(small_train):
    model = create("ease", regularization=100.0, min_item_count=5).fit(small_train)
    counts = small_train.item_counts()
    rare = np.flatnonzero(counts < 5)
    recs = model.recommend(small_train.users.raw(np.arange(3)), k=20)
    assert not set(small_train.items.raw(rare).tolist()) & set(recs.item_ids.ravel().tolist())
    sims = model.similar_items(small_train.items.raw([0]), k=3)
    assert sims.item_ids.shape == (1, 3)


def test_seq_ease_reduces_to_ease(small_train):
    """tau -> inf, floor 1, beta 0 is plain EASE."""
    ease = create("ease", regularization=150.0).fit(small_train)
    seq = create("seq-ease", regularization=150.0, tau=1e9, floor=1.0, beta=0.0).fit(small_train)
    users = small_train.users.raw(np.arange(30))
    np.testing.assert_allclose(seq.score(users), ease.score(users), rtol=1e-5, atol=1e-6)


def test_als_fold_in_matches_trained_user(fitted, small_train):
    """The closed-form fold-in of a user's own history ranks like their trained vector."""
    model = fitted["als"]
    seen = small_train.to_csr("ones")
    overlaps = []
    for u in range(20):
        items = small_train.items.raw(seen[u].indices)
        vec = model.fold_in(items)
        cos = vec @ model.user_embeddings_[u] / (np.linalg.norm(vec) * np.linalg.norm(model.user_embeddings_[u]))
        assert cos > 0.95
        trained = set(model.recommend(small_train.users.raw([u]), k=10).item_ids[0].tolist())
        cold = set(model.recommend_for_items(items, k=10).item_ids[0].tolist())
        overlaps.append(len(trained & cold) / 10)
    assert np.mean(overlaps) >= 0.7
    with pytest.raises(UnknownItemError):
        model.fold_in([10**9])


def test_quality_band_ml100k_leave_last(loo):
    """ML-100K leave-last-1 (fit on train + validation, test on each user's last movie):
    EASE, ALS and SeqEASE well above popularity; SeqEASE above EASE."""
    train = loo.train_full()
    params = {
        "pop": {},
        "als": {"factors": 64, "regularization": 1.0, "alpha": 5.0, "iterations": 10},
        "ease": {"regularization": 200.0},
        "seq-ease": {"regularization": 200.0, "tau": 10.0, "floor": 0.2, "beta": 0.5},
    }
    ndcg = {}
    for name, p in params.items():
        model = create(name, **p).fit(train)
        ndcg[name] = evaluate_ranking(model, train, loo.test, ks=(10,), metrics=("ndcg",)).summary["ndcg@10"]
    assert ndcg["ease"] > 1.3 * ndcg["pop"], ndcg
    assert ndcg["als"] > 1.3 * ndcg["pop"], ndcg
    assert ndcg["seq-ease"] > 1.2 * ndcg["ease"], ndcg


def test_tune_ranking_uses_validation_only(loo, tmp_path):
    from movierec.models.tune_ranking import load_tuned, save_tuned, tune_ranking

    best, study = tune_ranking("ease", loo, n_trials=3, seed=0)
    assert set(best) >= {"regularization"}
    assert len(study.trials) == 3
    again, _ = tune_ranking("ease", loo, n_trials=3, seed=0)
    assert again == best  # seeded sampler
    path = save_tuned(tmp_path / "ml-100k" / "loo" / "ease.json", best, {"ndcg@10": study.best_value})
    assert load_tuned(path)["params"] == best
