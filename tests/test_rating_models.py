"""The most accurate rating models (AutoRec, BPMF, item kNN, blend) keep the model contract.

Settings are small (few epochs / samples) so the suite stays fast; the quality bands are
on the canonical ML-100K fold u1 and are loose versions of the benchmark figures.
"""

from __future__ import annotations

import numpy as np
import pytest

from contract import check_recommender_contract
from movierec.data.split import ml100k_fold
from movierec.errors import ConfigError
from movierec.models import create, get_class
from movierec.models._rating_utils import carve_validation, fit_biases
from movierec.models.autorec import AutoRec
from movierec.models.bayesian_mf import BayesianMF
from movierec.models.blend import Blend
from movierec.models.item_knn import ItemKNN

SMALL_AUTOREC = dict(hidden=200, weight_decay=150.0, lr=3e-3, epochs=25, patience=4, seed=0)
SMALL_BPMF = dict(dim=10, burn_in=10, samples=50, seed=0)


def test_registered_names():
    assert get_class("autorec") is AutoRec
    assert get_class("bpmf") is BayesianMF
    assert get_class("blend") is Blend
    assert get_class("item-knn") is ItemKNN
    for name in ("autorec", "bpmf", "blend", "item-knn"):
        assert get_class(name).predicts_ratings


def test_autorec_contract(u1, tmp_path):
    model = check_recommender_contract(lambda: AutoRec(**SMALL_AUTOREC), u1.train, u1.test, tmp_path, max_rmse=0.95)
    assert 1 <= model.best_epoch_ <= SMALL_AUTOREC["epochs"]


def test_bpmf_contract(u1, tmp_path):
    model = check_recommender_contract(lambda: BayesianMF(**SMALL_BPMF), u1.train, u1.test, tmp_path, max_rmse=0.93)
    assert model.item_embeddings_.shape == (u1.train.n_items, SMALL_BPMF["dim"])


def test_item_knn_contract(u1, tmp_path):
    check_recommender_contract(lambda: ItemKNN(k=30), u1.train, u1.test, tmp_path, max_rmse=0.95)


def test_blend_contract_and_weights(u1, tmp_path):
    bases = [["bpmf", SMALL_BPMF], ["item-knn", {"k": 30}]]
    model = check_recommender_contract(lambda: Blend(models=bases, seed=0), u1.train, u1.test, tmp_path,
                                       max_rmse=0.93)
    # weights fitted on held-out training ratings; the blend beats each base there
    val = model.validation_rmse_
    assert val["blend"] <= min(val["bpmf"], val["item-knn"]) + 1e-9
    assert [type(b) for b in model.bases_] == [BayesianMF, ItemKNN]
    # refitted bases are plain models fitted on all training data
    direct = BayesianMF(**SMALL_BPMF).fit(u1.train)
    users = u1.train.users.raw(np.arange(5))
    np.testing.assert_allclose(model.bases_[0].score(users), direct.score(users), atol=1e-6)


def test_knn_predict_matches_score(u1):
    model = ItemKNN(k=20).fit(u1.train)
    u, i = u1.test.user_idx[:300], u1.test.item_idx[:300]
    scores = model._score(u)
    np.testing.assert_allclose(model._predict(u, i), scores[np.arange(len(u)), i], atol=1e-5)


def test_blend_rejects_ranking_models(u1):
    with pytest.raises(ConfigError):
        Blend(models=[["pop", {}]]).fit(u1.train)
    with pytest.raises(ConfigError):
        Blend(models=[["bpmf", {"no_such": 1}]]).fit(u1.train)


def test_blend_uses_given_validation(u1):
    part, val = carve_validation(u1.train, 0.1, seed=3)
    model = Blend(models=[["item-knn", {"k": 20}]], seed=0).fit(part, validation=val)
    # bases are refitted on train + validation
    assert model.bases_[0].residuals_.nnz == u1.train.n_ratings


def test_carve_validation_is_a_partition(u1):
    a, b = carve_validation(u1.train, 0.05, seed=7)
    assert a.n_ratings + b.n_ratings == u1.train.n_ratings
    pairs_a = set(zip(a.user_idx.tolist(), a.item_idx.tolist()))
    pairs_b = set(zip(b.user_idx.tolist(), b.item_idx.tolist()))
    assert not pairs_a & pairs_b
    a2, b2 = carve_validation(u1.train, 0.05, seed=7)
    np.testing.assert_array_equal(b.user_idx, b2.user_idx)


def test_users_without_training_ratings_fall_back_to_biases(ml100k):
    # a training set lacking one user entirely: that user still gets finite, in-range scores
    split = ml100k_fold(ml100k, "u1")
    missing = split.train.user_idx[0]
    train = split.train.subset(split.train.user_idx != missing)
    mu, bu, bi = fit_biases(train.user_idx, train.item_idx, train.rating, train.n_users, train.n_items)
    assert bu[missing] == 0
    for model in (AutoRec(hidden=50, epochs=3, patience=2, seed=0), BayesianMF(dim=4, burn_in=2, samples=4)):
        model.fit(train)
        scores = model._score(np.array([missing]))
        assert np.isfinite(scores).all()
        assert scores.min() >= 1 and scores.max() <= 5


def test_bad_params():
    with pytest.raises(ConfigError):
        create("bpmf", dim=0).fit(_tiny())
    with pytest.raises(ConfigError):
        create("autorec", hidden=0).fit(_tiny())


def _tiny():
    from movierec.data.dataset import Dataset
    from movierec.data.idmap import IdMap

    users, items = IdMap(np.arange(3)), IdMap(np.arange(4))
    return Dataset(
        name="tiny",
        users=users,
        items=items,
        user_idx=np.array([0, 1, 2, 0], np.int32),
        item_idx=np.array([0, 1, 2, 3], np.int32),
        rating=np.array([1, 2, 3, 4], np.float32),
        timestamp=np.zeros(4, np.int64),
    )


def test_autorec_averages_several_networks(u1):
    small = dict(hidden=40, epochs=4, patience=2)
    pair = AutoRec(n_models=2, seed=0, **small).fit(u1.train)
    first = AutoRec(n_models=1, seed=0, **small).fit(u1.train)
    second = AutoRec(n_models=1, seed=1, **small).fit(u1.train)
    assert pair.encoder_weight_.shape == (2, 40, u1.train.n_users)
    np.testing.assert_array_equal(pair.encoder_weight_[0], first.encoder_weight_[0])
    np.testing.assert_array_equal(pair.encoder_weight_[1], second.encoder_weight_[0])
    u, i = u1.test.user_idx[:200], u1.test.item_idx[:200]
    p1, p2 = first._predict(u, i), second._predict(u, i)
    inside = (p1 > 1.01) & (p1 < 4.99) & (p2 > 1.01) & (p2 < 4.99)  # no clipping involved
    mean = (p1 + p2) / 2
    np.testing.assert_allclose(pair._predict(u, i)[inside], mean[inside], atol=1e-4)
