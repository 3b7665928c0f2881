"""Rating baselines: global mean and the regularised bias model."""

from __future__ import annotations

import numpy as np

from contract import check_recommender_contract
from movierec.evaluation.runner import evaluate_ratings
from movierec.models import create
from movierec.models.bias import BiasOnly, GlobalMean


def _rmse(model, test):
    return evaluate_ratings(model, test)["rmse"]


def test_registered():
    assert isinstance(create("global-mean"), GlobalMean)
    assert isinstance(create("bias", reg_user=3.0), BiasOnly)


def test_global_mean_contract(small_split, tmp_path):
    check_recommender_contract(GlobalMean, small_split.train, small_split.test, tmp_path, max_rmse=1.25)


def test_bias_contract(small_split, tmp_path):
    check_recommender_contract(BiasOnly, small_split.train, small_split.test, tmp_path, max_rmse=1.0)


def test_global_mean_predicts_the_mean(small_split):
    m = GlobalMean().fit(small_split.train)
    pred = m.predict(small_split.test.users.raw(small_split.test.user_idx[:10]),
                     small_split.test.items.raw(small_split.test.item_idx[:10]))
    assert np.allclose(pred, small_split.train.rating.mean(), atol=1e-5)


def test_bias_solution_is_stationary(small_split):
    """At convergence each bias is the regularised mean residual of its rows."""
    train = small_split.train
    m = BiasOnly(reg_user=5.0, reg_item=5.0, n_iter=200).fit(train)
    u, i, r = train.user_idx, train.item_idx, train.rating.astype(np.float64)
    resid = r - m.global_mean_ - m.user_bias_[u] - m.item_bias_[i]
    grad_u = np.bincount(u, weights=resid, minlength=train.n_users) - 5.0 * m.user_bias_
    grad_i = np.bincount(i, weights=resid, minlength=train.n_items) - 5.0 * m.item_bias_
    assert np.abs(grad_u).max() < 1e-2 and np.abs(grad_i).max() < 1e-2


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
