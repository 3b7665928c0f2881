"""BiasedMF: accuracy band, training mechanics, embeddings, cold-start fold-in.

The shared model contract runs in tests/test_contract.py; these are mf's own promises.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from movierec.errors import ConfigError, UnknownItemError
from movierec.models import create
from movierec.models.mf import BiasedMF
from movierec.training.options import RuntimeOptions

FAST = dict(dim=16, epochs=15)
SEED0 = RuntimeOptions(seed=0)
#: default BiasedMF(seed=0) on u1 before the training-policy refactor (CPU, one thread)
U1_RMSE_SEED0 = 0.9239077565368156


@pytest.fixture(scope="module")
def u1_model(u1):
    return BiasedMF().fit(u1.train, runtime=SEED0)


def _rmse(pred, truth):
    return float(np.sqrt(np.mean((np.asarray(pred, np.float64) - truth) ** 2)))


def test_registered():
    assert isinstance(create("mf", dim=8), BiasedMF)


def test_output_range_trains_and_stays_in_range(small_split):
    m = BiasedMF(output_range=True, **FAST).fit(small_split.train, runtime=SEED0)
    t = small_split.test
    assert m.history_.records
    assert _rmse(m.predict(t.users.raw(t.user_idx), t.items.raw(t.item_idx)), t.rating) < 1.0
    low, high = m._range()
    scores = m.score(t.users.raw([0, 1]))
    assert scores.min() > low and scores.max() < high


def test_u1_rmse_unchanged(u1, u1_model):
    """The training refactor kept the numbers: default BiasedMF(seed=0) on u1, CPU."""
    pred = u1_model.predict(u1.test.users.raw(u1.test.user_idx), u1.test.items.raw(u1.test.item_idx))
    assert _rmse(pred, u1.test.rating) == pytest.approx(U1_RMSE_SEED0, abs=1e-4)


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
    m = BiasedMF(**FAST).fit(small_split.train, runtime=SEED0)
    users = small_split.train.users.raw([0, 5, 9])
    scores = m.score(users)
    items = small_split.train.items.raw(np.arange(scores.shape[1]))
    for row, u in zip(scores, users):
        pred = m.predict(np.repeat(u, len(items)), items)
        inside = (row > 1) & (row < 5)  # predict clips to the rating scale, score does not
        np.testing.assert_allclose(pred[inside], row[inside], rtol=1e-5, atol=1e-5)


def test_explicit_validation_is_used(small_split):
    train, val = small_split.train, small_split.test
    m = BiasedMF(**FAST).fit(train, validation=val, runtime=SEED0)
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
        m = BiasedMF(optimizer=opt, lr=lr, batch_size=1024, **FAST).fit(small_split.train, runtime=SEED0)
        t = small_split.test
        assert _rmse(m.predict(t.users.raw(t.user_idx), t.items.raw(t.item_idx)), t.rating) < 1.05


def test_fold_in_reproduces_a_trained_user(u1_model, u1):
    """Folding in a training user's own ratings lands close to their learned vector's predictions."""
    m, train = u1_model, u1.train
    u = int(np.argmax(train.user_counts()))
    rows = train.user_idx == u
    person = m.fold_in(train.items.raw(train.item_idx[rows]), train.rating[rows])
    assert person.vector.shape == (m.dim + 1,) and person.vector[-1] == 1.0
    items = train.items.raw(np.arange(train.n_items))
    trained = m.predict(np.repeat(train.users.raw([u]), len(items)), items)
    assert np.corrcoef(person.scores, trained)[0, 1] > 0.9


def test_embedding_layout(u1_model, u1):
    """Users [p_u, 1], movies [q_i, b_i]: a dot product is the score less a per-user constant
    (offset + b_u), so it orders each user's movies as score() (the ranking itself is the
    contract's embeddings check)."""
    m = u1_model
    emb = m.embeddings()
    assert emb.users.shape == (u1.train.n_users, m.dim + 1) and emb.items.shape == (u1.train.n_items, m.dim + 1)
    users = u1.train.users.raw(np.arange(0, u1.train.n_users, 50))
    dots = emb.users[m.user_index(users)].astype(np.float64) @ emb.items.T.astype(np.float64)
    diff = m.score(users).astype(np.float64) - dots
    np.testing.assert_allclose(diff, diff[:, :1] * np.ones_like(diff), atol=1e-4)


def test_similar_items_use_pure_factors(u1_model, u1):
    m = u1_model
    sims = m.similar_items([50], k=5)
    q = m.item_embeddings_ / np.linalg.norm(m.item_embeddings_, axis=1, keepdims=True)
    cos = q @ q[m.item_index([50])[0]]
    cos[m.item_index([50])[0]] = -np.inf
    # the 5 best cosines, best first (up to rounding-level ties: the model's product takes
    # another BLAS path than this one, which may order near-equal cosines differently)
    np.testing.assert_allclose(cos[m.item_index(sims.item_ids[0])], -np.sort(-cos)[:5], rtol=1e-5, atol=1e-6)


def test_recommend_new_from_ratings(u1_model):
    ids, ratings = [50, 172, 181, 1], [5.0, 5.0, 4.5, 2.0]
    rec = u1_model.recommend_new(ids, ratings, k=10)
    assert rec.item_ids.shape == (1, 10) and rec.user_ids.tolist() == [-1]
    assert not set(ids) & set(rec.item_ids[0].tolist())
    assert np.all(np.diff(rec.scores[0]) <= 1e-6)
    with pytest.raises(UnknownItemError):
        u1_model.fold_in([999_999], [4.0])
    with pytest.raises(ConfigError):
        u1_model.fold_in([])


def test_liked_only_fold_in_follows_taste(ml100k):
    """Liked movies are implicit feedback, not all-5 ratings: a Star Wars fan and a Disney
    fan get different lists, each leaning to their taste (full ML-100K, default mf)."""
    m = BiasedMF().fit(ml100k)
    cat = ml100k.catalog
    star_wars, disney = [50, 172, 181], [1, 71, 95, 588]
    titles = [cat.titles[i] for i in ml100k.items.lookup(star_wars + disney)]
    assert titles == ["Star Wars", "Empire Strikes Back, The", "Return of the Jedi",
                      "Toy Story", "Lion King, The", "Aladdin", "Beauty and the Beast"]
    a = m.recommend_new(star_wars, k=10).item_ids[0]
    b = m.recommend_new(disney, k=10).item_ids[0]

    def on_taste(ids, genres):
        return sum(bool(set(genres) & set(cat.genres[i])) for i in ml100k.items.lookup(ids))

    print(json.dumps({"star_wars": [cat.titles[i] for i in ml100k.items.lookup(a)],
                      "disney": [cat.titles[i] for i in ml100k.items.lookup(b)]}))
    assert len(set(a.tolist()) & set(b.tolist())) <= 3
    assert on_taste(a, ["Action", "Sci-Fi", "Adventure"]) >= 2
    assert on_taste(b, ["Children's", "Animation"]) >= 2
    # the vector is in embedding space: its dot products are the scores
    person = m.fold_in(disney)
    np.testing.assert_allclose(m.embeddings().items.astype(np.float64) @ person.vector, person.scores,
                               rtol=1e-4, atol=1e-4)


def test_fold_in_matches_training_on_held_out_users(u1, u1_model, ml100k):
    """Cold start: users removed from training, folded in from their training ratings,
    predict their test ratings about as well as when the model trained on them."""
    train, test = u1.train, u1.test
    rng = np.random.default_rng(0)
    counts_tr, counts_te = train.user_counts(), test.user_counts()
    eligible = np.flatnonzero((counts_tr >= 20) & (counts_te >= 5))
    held = rng.choice(eligible, size=100, replace=False)
    without = train.subset(~np.isin(train.user_idx, held))
    cold = BiasedMF().fit(without, runtime=SEED0)

    in_test = np.isin(test.user_idx, held)
    t_users, t_items, t_truth = test.user_idx[in_test], test.item_idx[in_test], test.rating[in_test].astype(np.float64)
    trained_pred = u1_model._predict(t_users.astype(np.int64), t_items.astype(np.int64))
    folded_pred = np.empty(len(t_users))
    for u in held:
        rows = train.user_idx == u
        sel = t_users == u
        scores = cold.fold_in(train.items.raw(train.item_idx[rows]), train.rating[rows]).scores
        folded_pred[sel] = cold._clip(scores[t_items[sel]])  # predictions clip to the scale, scores do not
    bias_only = cold._clip(cold.offset_ + cold.item_bias_[t_items])  # no user information at all
    rmse_trained, rmse_folded, rmse_none = _rmse(trained_pred, t_truth), _rmse(folded_pred, t_truth), _rmse(bias_only, t_truth)
    print(json.dumps({"fold_in_rmse": round(rmse_folded, 4), "trained_rmse": round(rmse_trained, 4),
                      "no_user_rmse": round(rmse_none, 4), "users": len(held), "test_ratings": int(in_test.sum())}))
    assert rmse_folded < rmse_trained + 0.03
    assert rmse_folded < rmse_none - 0.03


def test_genre_agreement_beats_shuffled(u1_model, u1):
    from movierec.evaluation.embedding import genre_agreement

    result = genre_agreement(u1_model, u1.train.catalog, k=10, seed=0)
    print(json.dumps(result))
    assert result["agreement"] > result["shuffled"] + 0.05
    assert 0 <= result["shuffled"] <= 1 and result["n_movies"] > 100


def test_plots(u1_model, u1, tmp_path):
    from movierec.reporting.viz import plot_item_embedding_map, plot_learning_curve

    a = plot_learning_curve(u1_model.history_, tmp_path / "curve.png")
    b = plot_item_embedding_map(u1_model, u1.train.catalog, tmp_path / "tsne.png", min_ratings=100)
    for p in (a, b):
        assert p.is_file() and p.read_bytes()[:4] == b"\x89PNG"


def test_history_survives_state_round_trip(u1_model):
    m = u1_model
    state = m.state_dict()
    json.dumps(state.meta)  # the history is plain JSON
    loaded = BiasedMF(**m.get_params()).load_state_dict(state, m.users_, m.items_)
    assert loaded.history_.column("val") == pytest.approx(m.history_.column("val"))
    assert loaded.best_epoch_ == m.best_epoch_
    users = m.users_.raw([0, 1, 2])
    np.testing.assert_array_equal(loaded.score(users), m.score(users))
    np.testing.assert_array_equal(loaded.recommend_new([50], k=5).item_ids, m.recommend_new([50], k=5).item_ids)
    np.testing.assert_array_equal(loaded.fold_in([50, 1], [5.0, 1.0]).scores, m.fold_in([50, 1], [5.0, 1.0]).scores)


def test_search_space_is_the_old_one():
    from movierec.models.space import Categorical, Float

    assert list(BiasedMF.search_space) == ["dim", "reg", "reg_bias", "lr", "batch_size", "init_std", "output_range"]
    assert BiasedMF.search_space["reg"] == Float(0.02, 0.3, log=True)
    assert BiasedMF.search_space["dim"] == Categorical([16, 32, 64, 128])
