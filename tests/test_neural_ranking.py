"""Contract and quality tests of the PyTorch implicit-feedback models: NeuMF and MF-rank."""

from __future__ import annotations

import numpy as np
import pytest

from movierec.data.split import leave_last_k_split
from movierec.errors import ConfigError, UnknownUserError
from movierec.models import create
from movierec.models.base import Recommender
from movierec.models._ranking_common import (
    NegativeSampler,
    RankingValidator,
    holdout_last,
    implicit_interactions,
    interaction_matrix,
)

# few epochs, no early stopping: fast and enough for the contract
FAST = {
    "neumf": {"dim": 8, "mlp_layers": 2, "epochs": 2, "patience": 0},
    "mf-rank": {"dim": 16, "epochs": 2, "patience": 0, "n_neg": 64},
}
MODELS = sorted(FAST)


@pytest.fixture(scope="module")
def split100k(ml100k):
    return leave_last_k_split(ml100k, 1)


@pytest.fixture(scope="module")
def small_train(ml100k):
    """The first 200 users of ML-100K: a small real slice for the contract tests."""
    return ml100k.subset(ml100k.user_idx < 200)


@pytest.fixture(scope="module", params=MODELS)
def fitted(request, small_train):
    model = create(request.param, **FAST[request.param], seed=3)
    assert model.fit(small_train) is model
    return model, small_train


def test_registered():
    from movierec.models import available

    assert {"neumf", "mf-rank"} <= set(available())


def test_k_and_exclude_seen(fitted):
    model, train = fitted
    users = train.users.raw(np.arange(5))
    recs = model.recommend(users, k=7)
    assert recs.item_ids.shape == (5, 7)
    assert np.all(np.diff(recs.scores, axis=1) <= 0)
    seen = train.to_csr("ones")
    for row, uid in enumerate(users):
        seen_raw = set(train.items.raw(seen[row].indices).tolist())
        assert not seen_raw & set(recs.item_ids[row].tolist())
    with_seen = model.recommend(users, k=50, exclude_seen=False)
    assert with_seen.item_ids.shape == (5, 50)
    # the top of an unfiltered list contains seen items for a model fitted on them
    assert any(set(with_seen.item_ids[r].tolist()) & set(train.items.raw(seen[r].indices).tolist())
               for r in range(5))


def test_unknown_user(fitted):
    model, _ = fitted
    with pytest.raises(UnknownUserError):
        model.recommend([999_999], k=5)


def test_save_load_round_trip(fitted, tmp_path):
    model, train = fitted
    users = train.users.raw(np.arange(20))
    model.save(tmp_path / "m")
    loaded = Recommender.load(tmp_path / "m")
    assert type(loaded) is type(model)
    np.testing.assert_array_equal(loaded.score(users), model.score(users))
    np.testing.assert_array_equal(loaded.recommend(users, k=10).item_ids, model.recommend(users, k=10).item_ids)


@pytest.mark.parametrize("name", MODELS)
def test_same_seed_same_scores(name, small_train):
    users = small_train.users.raw(np.arange(10))
    a = create(name, **FAST[name], seed=11).fit(small_train).score(users)
    b = create(name, **FAST[name], seed=11).fit(small_train).score(users)
    c = create(name, **FAST[name], seed=12).fit(small_train).score(users)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_mf_rank_embeddings_and_similar_items(small_train):
    model = create("mf-rank", **FAST["mf-rank"]).fit(small_train)
    assert model.user_embeddings_.shape == (small_train.n_users, 16)
    assert model.item_embeddings_.shape == (small_train.n_items, 16)
    sims = model.similar_items([1, 50], k=5)
    assert sims.item_ids.shape == (2, 5)
    assert 1 not in sims.item_ids[0]


def test_bpr_loss_and_bad_params(small_train):
    model = create("mf-rank", dim=8, epochs=1, patience=0, loss="bpr", n_neg=2).fit(small_train)
    assert np.isfinite(model.score(small_train.users.raw([0]))).all()
    with pytest.raises(ConfigError):
        create("mf-rank", loss="hinge").fit(small_train)
    with pytest.raises(ConfigError):
        create("neumf", dim=0).fit(small_train)


def test_min_rating_filters_interactions(small_train):
    users, items, _ = implicit_interactions(small_train, min_rating=4)
    assert len(users) == int((small_train.rating >= 4).sum())
    model = create("neumf", **FAST["neumf"], min_rating=4).fit(small_train)
    assert model.recommend(small_train.users.raw([0]), k=3).item_ids.shape == (1, 3)


def test_negative_sampler_avoids_positives(small_train):
    users, items, _ = implicit_interactions(small_train)
    sampler = NegativeSampler(users, items, small_train.n_items)
    rng = np.random.default_rng(0)
    neg = sampler.sample(rng, users, 5)
    assert neg.shape == (len(users), 5)
    assert not sampler.contains(np.repeat(users, 5), neg.ravel()).any()
    again = NegativeSampler(users, items, small_train.n_items).sample(np.random.default_rng(0), users, 5)
    np.testing.assert_array_equal(neg, again)


def test_holdout_last_and_validator():
    users = np.array([0, 0, 0, 1, 1, 2, 2, 2])
    items = np.array([1, 2, 3, 1, 2, 0, 1, 2])
    times = np.array([5, 9, 1, 1, 2, 3, 3, 1])
    held = holdout_last(users, items, times)
    # user 0: latest is item 2; user 1 has only two interactions; user 2: tie -> later row
    assert held.tolist() == [False, True, False, False, False, False, True, False]
    relevant = interaction_matrix(np.array([0]), np.array([2]), 3, 4)
    exclude = interaction_matrix(np.array([0]), np.array([1]), 3, 4)
    v = RankingValidator(np.array([0]), relevant, exclude, k=2)
    # item 1 (excluded) scores highest; item 2 ranks first of the rest -> NDCG 1
    assert v(lambda rows: np.array([[0.0, 9.0, 5.0, 1.0]], dtype=np.float32)) == pytest.approx(1.0)
    # item 2 second -> 1/log2(3)
    assert v(lambda rows: np.array([[6.0, 9.0, 5.0, 1.0]], dtype=np.float32)) == pytest.approx(1 / np.log2(3))


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_quality_band_ml100k(name, split100k, ml100k):
    """Both models, early-stopped on the split's validation part, beat popularity by far on
    ML-100K leave-last-1 (popularity: NDCG@10 ~ 0.045)."""
    from movierec.evaluation.runner import evaluate_ranking

    split = split100k
    params = {"neumf": {"epochs": 12, "patience": 2}, "mf-rank": {"epochs": 12, "patience": 2}}[name]
    model = create(name, **params).fit(split.train, split.validation)
    pop = create("pop").fit(split.train)
    ours = evaluate_ranking(model, split.train, split.test, ks=(10,)).summary["ndcg@10"]
    base = evaluate_ranking(pop, split.train, split.test, ks=(10,)).summary["ndcg@10"]
    assert ours > 1.2 * base
    assert model.history_.best_epoch >= 1
