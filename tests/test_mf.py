"""BiasedMF: contract, accuracy band, training mechanics, cold-start fold-in."""

from __future__ import annotations

import json

import numpy as np
import pytest

from contract import check_recommender_contract
from movierec.errors import ConfigError, UnknownItemError
from movierec.evaluation.embedding import genre_agreement
from movierec.models import create
from movierec.models.mf import BiasedMF

FAST = dict(dim=16, epochs=15, seed=0)


@pytest.fixture(scope="module")
def u1_model(u1):
    return BiasedMF(seed=0).fit(u1.train)


def _rmse(pred, truth):
    return float(np.sqrt(np.mean((np.asarray(pred, np.float64) - truth) ** 2)))


def test_registered():
    assert isinstance(create("mf", dim=8), BiasedMF)


def test_contract(small_split, tmp_path):
    check_recommender_contract(lambda: BiasedMF(**FAST), small_split.train, small_split.test, tmp_path, max_rmse=1.0)


def test_contract_with_output_range(small_split, tmp_path):
    m = check_recommender_contract(lambda: BiasedMF(output_range=True, **FAST), small_split.train,
                                   small_split.test, tmp_path, max_rmse=1.0)
    assert m.history_.records


def test_quality_band_u1(u1, u1_model):
    """Default BiasedMF on u1 (the hardest canonical fold): Surprise SVD gets ≈ 0.951 there."""
    pred = u1_model.predict(u1.test.users.raw(u1.test.user_idx), u1.test.items.raw(u1.test.item_idx))
    assert _rmse(pred, u1.test.rating) < 0.94


def test_fitted_attributes(u1, u1_model):
    m = u1_model
    assert m.user_embeddings_.shape == (u1.train.n_users, m.dim)
    assert m.item_embeddings_.shape == (u1.train.n_items, m.dim)
    assert m.user_bias_.shape == (u1.train.n_users,) and m.item_bias_.shape == (u1.train.n_items,)
    assert abs(m.global_mean_ - u1.train.rating.mean()) < 1e-4
    # early stopping on the internal hold-out ran, recorded per-epoch train and validation RMSE
    recs = m.history_.records
    assert recs and all({"epoch", "train_loss", "train_rmse", "val", "seconds"} <= set(r) for r in recs)
    assert m.best_epoch_ == m.history_.best_epoch
    assert recs[-1]["train_rmse"] < recs[0]["train_rmse"]


def test_predict_matches_score(small_split):
    m = BiasedMF(**FAST).fit(small_split.train)
    users = small_split.train.users.raw([0, 5, 9])
    scores = m.score(users)
    items = small_split.train.items.raw(np.arange(scores.shape[1]))
    for row, u in zip(scores, users):
        pred = m.predict(np.repeat(u, len(items)), items)
        inside = (row > 1) & (row < 5)  # predict clips to the rating scale, score does not
        np.testing.assert_allclose(pred[inside], row[inside], rtol=1e-5, atol=1e-5)


def test_explicit_validation_is_used(small_split):
    train, val = small_split.train, small_split.test
    m = BiasedMF(**FAST).fit(train, validation=val)
    best = m.history_.best_value
    pred = m.predict(val.users.raw(val.user_idx), val.items.raw(val.item_idx))
    assert abs(_rmse(pred, val.rating) - best) < 1e-4


def test_bad_params_raise_config_error(small_split):
    with pytest.raises(ConfigError):
        BiasedMF(optimizer="nope").fit(small_split.train)
    with pytest.raises(ConfigError):
        BiasedMF(dim=0).fit(small_split.train)


def test_other_optimisers_train(small_split):
    for opt, lr in (("sparse_adam", 0.02), ("adagrad", 0.1), ("sgd", 10.0)):
        m = BiasedMF(optimizer=opt, lr=lr, batch_size=1024, **FAST).fit(small_split.train)
        t = small_split.test
        assert _rmse(m.predict(t.users.raw(t.user_idx), t.items.raw(t.item_idx)), t.rating) < 1.05


def test_fold_in_reproduces_a_trained_user(u1_model, u1):
    """Folding in a training user's own ratings lands close to their learned vector's predictions."""
    m, train = u1_model, u1.train
    u = int(np.argmax(train.user_counts()))
    rows = train.user_idx == u
    ratings = dict(zip(train.items.raw(train.item_idx[rows]).tolist(), train.rating[rows].tolist()))
    p, b = m.fold_in(ratings)
    assert p.shape == (m.dim,)
    items = train.items.raw(np.arange(train.n_items))
    folded = m.predict_for_ratings(ratings, items)
    trained = m.predict(np.repeat(train.users.raw([u]), len(items)), items)
    assert np.corrcoef(folded, trained)[0, 1] > 0.9


def test_recommend_for_ratings(u1_model):
    ratings = {50: 5.0, 172: 5.0, 181: 4.5, 1: 2.0}
    rec = u1_model.recommend_for_ratings(ratings, k=10)
    assert rec.item_ids.shape == (1, 10)
    assert not set(ratings) & set(rec.item_ids[0].tolist())
    assert np.all(np.diff(rec.scores[0]) <= 1e-6)
    with pytest.raises(UnknownItemError):
        u1_model.fold_in({999_999: 4.0})
    with pytest.raises(ConfigError):
        u1_model.fold_in({})


def test_fold_in_matches_training_on_held_out_users(u1, u1_model, ml100k):
    """Cold start: users removed from training, folded in from their training ratings,
    predict their test ratings about as well as when the model trained on them."""
    train, test = u1.train, u1.test
    rng = np.random.default_rng(0)
    counts_tr, counts_te = train.user_counts(), test.user_counts()
    eligible = np.flatnonzero((counts_tr >= 20) & (counts_te >= 5))
    held = rng.choice(eligible, size=100, replace=False)
    without = train.subset(~np.isin(train.user_idx, held))
    cold = BiasedMF(seed=0).fit(without)

    in_test = np.isin(test.user_idx, held)
    t_users, t_items, t_truth = test.user_idx[in_test], test.item_idx[in_test], test.rating[in_test].astype(np.float64)
    trained_pred = u1_model._predict(t_users.astype(np.int64), t_items.astype(np.int64))
    folded_pred = np.empty(len(t_users))
    for u in held:
        rows = train.user_idx == u
        ratings = (train.items.raw(train.item_idx[rows]), train.rating[rows])
        sel = t_users == u
        folded_pred[sel] = cold.predict_for_ratings(ratings, test.items.raw(t_items[sel]))
    bias_only = cold._clip(cold.offset_ + cold.item_bias_[t_items])  # no user information at all
    rmse_trained, rmse_folded, rmse_none = _rmse(trained_pred, t_truth), _rmse(folded_pred, t_truth), _rmse(bias_only, t_truth)
    print(json.dumps({"fold_in_rmse": round(rmse_folded, 4), "trained_rmse": round(rmse_trained, 4),
                      "no_user_rmse": round(rmse_none, 4), "users": len(held), "test_ratings": int(in_test.sum())}))
    assert rmse_folded < rmse_trained + 0.03
    assert rmse_folded < rmse_none - 0.03


def test_genre_agreement_beats_shuffled(u1_model):
    result = genre_agreement(u1_model, k=10, seed=0)
    print(json.dumps(result))
    assert result["agreement"] > result["shuffled"] + 0.05
    assert 0 <= result["shuffled"] <= 1 and result["n_movies"] > 100


def test_plots(u1_model, tmp_path):
    from movierec.viz import plot_item_embedding_map, plot_learning_curve

    a = plot_learning_curve(u1_model.history_, tmp_path / "curve.png")
    b = plot_item_embedding_map(u1_model, tmp_path / "tsne.png", min_ratings=100)
    for p in (a, b):
        assert p.is_file() and p.read_bytes()[:4] == b"\x89PNG"


def test_history_survives_save_load(u1_model, tmp_path):
    loaded = BiasedMF.load(u1_model.save(tmp_path / "m"))
    assert loaded.history_.column("val") == pytest.approx(u1_model.history_.column("val"))
    assert loaded.best_epoch_ == u1_model.best_epoch_
    np.testing.assert_array_equal(loaded.recommend_for_ratings({50: 5.0}, k=5).item_ids,
                                  u1_model.recommend_for_ratings({50: 5.0}, k=5).item_ids)
