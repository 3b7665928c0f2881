"""Rating baselines: global mean and the regularised bias model (incl. its fold-in)."""

from __future__ import annotations

import numpy as np
import pytest

from movierec.errors import CapabilityError
from movierec.evaluation.runner import evaluate_ratings
from movierec.models import create
from movierec.models.bias import BiasOnly, GlobalMean
from movierec.models.space import Float


def _rmse(model, test):
    return evaluate_ratings(model, test)["rmse"]


def test_registered():
    assert isinstance(create("global-mean"), GlobalMean)
    assert isinstance(create("bias", reg_user=3.0), BiasOnly)


def test_declared_capabilities_and_search_space():
    assert GlobalMean.predicts_ratings and BiasOnly.predicts_ratings
    assert not GlobalMean.capabilities.fold_in and BiasOnly.capabilities.fold_in
    # same names, ranges and order as the tuner sampled before search spaces were declared
    assert BiasOnly.search_space == {"reg_user": Float(0.1, 50.0, log=True), "reg_item": Float(0.1, 50.0, log=True)}
    assert list(BiasOnly.search_space) == ["reg_user", "reg_item"]
    assert GlobalMean.search_space == {}


def test_rmse_bands(small_split):
    """(The state round trip of both is the contract's.)"""
    train, test = small_split.train, small_split.test
    for cls, band in ((GlobalMean, 1.25), (BiasOnly, 1.0)):
        assert _rmse(cls().fit(train), test) <= band


def test_global_mean_predicts_the_mean(small_split):
    m = GlobalMean().fit(small_split.train)
    pred = m.predict(small_split.test.users.raw(small_split.test.user_idx[:10]),
                     small_split.test.items.raw(small_split.test.item_idx[:10]))
    assert np.allclose(pred, small_split.train.rating.mean(), atol=1e-5)


def test_global_mean_declares_no_cold_start_or_vectors(small_split):
    m = GlobalMean().fit(small_split.train)
    items = small_split.train.items.raw([0, 1])
    with pytest.raises(CapabilityError):
        m.fold_in(items)
    with pytest.raises(CapabilityError):
        m.recommend_new(items, k=5)
    with pytest.raises(CapabilityError):
        m.embeddings()
    with pytest.raises(CapabilityError):
        m.similar_items(items)


def test_bias_solution_is_stationary(small_split):
    """At convergence each bias is the regularised mean residual of its rows."""
    train = small_split.train
    m = BiasOnly(reg_user=5.0, reg_item=5.0, n_iter=200).fit(train)
    u, i, r = train.user_idx, train.item_idx, train.rating.astype(np.float64)
    resid = r - m.global_mean_ - m.user_bias_[u] - m.item_bias_[i]
    grad_u = np.bincount(u, weights=resid, minlength=train.n_users) - 5.0 * m.user_bias_
    grad_i = np.bincount(i, weights=resid, minlength=train.n_items) - 5.0 * m.item_bias_
    assert np.abs(grad_u).max() < 1e-2 and np.abs(grad_i).max() < 1e-2


def test_bias_fold_in_is_the_training_user_update(small_split):
    """A training user's own ratings folded in give their trained bias (the last step of
    training is exactly this ridge update), so the same scores and the same top-10."""
    train = small_split.train
    m = BiasOnly(reg_user=7.0, reg_item=3.0).fit(train)
    ratings = train.to_csr("rating")
    overlaps = []
    for u in train.active_users()[:30]:
        row = ratings[u]
        person = m.fold_in(train.items.raw(row.indices), row.data)
        np.testing.assert_allclose(person.scores, m.score_indices(np.array([u]))[0], atol=1e-4)
        assert person.vector is None
        trained = m.recommend(train.users.raw([u]), k=10).item_ids[0]
        new = m.recommend_new(train.items.raw(row.indices), row.data, k=10).item_ids[0]
        overlaps.append(len(set(trained) & set(new)) / 10)
    # the same top 10, up to near-ties at the cut (the scores agree to 1e-4, not bit for bit)
    assert np.mean(overlaps) >= 0.98
    # the bias follows every rating (bias declares dislikes: a low rating is not dropped):
    # all-1 ratings give a lower bias than all-5 ratings, and the ranking stays the same
    assert BiasOnly.capabilities.dislikes
    items = train.items.raw(np.arange(20))
    low, high = m.fold_in(items, np.ones(20)), m.fold_in(items, np.full(20, 5.0))
    assert not low.liked.any() and high.liked.all()
    assert np.all(high.scores > low.scores + 0.5)
    np.testing.assert_array_equal(np.argsort(-low.scores, kind="stable")[:50],
                                  np.argsort(-high.scores, kind="stable")[:50])
    # liked movies alone: the movie-bias ranking, b_u = 0
    liked = m.fold_in(items)
    np.testing.assert_allclose(liked.scores, m.global_mean_ + m.item_bias_, atol=1e-5)


def test_bias_beats_global_mean_on_u1(u1):
    """Quality band on the canonical fold: bias ≈ 0.955, mean ≈ 1.154 on u1."""
    gm = _rmse(GlobalMean().fit(u1.train), u1.test)
    bias = _rmse(BiasOnly().fit(u1.train), u1.test)
    assert 1.10 < gm < 1.20
    assert bias < 0.965 and bias < gm - 0.15


def test_heavier_regularisation_shrinks_biases(small_split):
    light = BiasOnly(reg_user=0.1, reg_item=0.1).fit(small_split.train)
    heavy = BiasOnly(reg_user=100.0, reg_item=100.0).fit(small_split.train)
    assert np.abs(heavy.item_bias_).sum() < np.abs(light.item_bias_).sum()
