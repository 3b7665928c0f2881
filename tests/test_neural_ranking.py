"""The PyTorch implicit-feedback models, NeuMF and MF-rank: their own promises and quality.

The generic contract (k, seen movies, unknown users, state round trip, same seed same
model) runs over every model in tests/test_contract.py (`movierec.testing.contract`).
"""

from __future__ import annotations

import numpy as np
import pytest

from movierec.data.split import leave_last_k_split
from movierec.errors import CapabilityError, ConfigError
from movierec.models import create
from movierec.training.options import RuntimeOptions
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
    model = create(request.param, **FAST[request.param])
    assert model.fit(small_train, runtime=RuntimeOptions(seed=3)) is model
    return model, small_train


def test_registered():
    from movierec.models import available

    assert {"neumf", "mf-rank"} <= set(available())


def test_state_round_trip_keeps_the_training_history(fitted):
    """The per-epoch history (best epoch, validation curve) travels with the state."""
    model, _ = fitted
    loaded = type(model)(**model.get_params()).load_state_dict(model.state_dict(), model.users_, model.items_)
    assert model.history_.records and loaded.history_.to_dict() == model.history_.to_dict()


@pytest.mark.parametrize("name", MODELS)
def test_seed_matters(name, small_train):
    """Another seed gives another model (the same seed giving the same one is the contract's)."""
    users = small_train.users.raw(np.arange(10))
    a = create(name, **FAST[name]).fit(small_train, runtime=RuntimeOptions(seed=11)).score(users)
    c = create(name, **FAST[name]).fit(small_train, runtime=RuntimeOptions(seed=12)).score(users)
    assert not np.array_equal(a, c)


def test_mf_rank_embeddings_and_similar_items(small_train):
    model = create("mf-rank", **FAST["mf-rank"]).fit(small_train)
    assert model.user_embeddings_.shape == (small_train.n_users, 16)
    emb = model.embeddings()
    assert emb.users.shape == (small_train.n_users, 17) and emb.items.shape == (small_train.n_items, 17)
    # users [p_u, 1], movies [q_i, b_i]: the dot product is the score itself, bias included
    users = small_train.users.raw(np.arange(30))
    np.testing.assert_allclose(emb.users[:30] @ emb.items.T, model.score(users), rtol=1e-5, atol=1e-5)
    assert np.abs(model.item_bias_).max() > 0
    sims = model.similar_items([1, 50], k=5)
    assert sims.item_ids.shape == (2, 5)
    assert 1 not in sims.item_ids[0]
    # similarity is the cosine of the pure factors (the bias column left out)
    q = model.item_embeddings_ / np.linalg.norm(model.item_embeddings_, axis=1, keepdims=True)
    cos = q @ q[model.item_index([50])[0]]
    cos[model.item_index([50])[0]] = -np.inf
    # the 5 best cosines, best first (up to rounding-level ties: the model's product takes
    # another BLAS path than this one, which may order near-equal cosines differently)
    np.testing.assert_allclose(cos[model.item_index(sims.item_ids[1])], -np.sort(-cos)[:5], rtol=1e-5, atol=1e-6)


def test_mf_rank_fold_in(split100k):
    """A training user's own movies, folded in as liked, come back near their trained list;
    ratings count as liked movies weighted by rating, below min_rating left out."""
    train = split100k.train_full()
    model = create("mf-rank", dim=32, epochs=6, patience=0, n_neg=128, temperature=0.25, reg=1e-4).fit(train)
    csr = train.to_csr("rating")
    users = train.users.raw(np.arange(0, 900, 45))
    trained = model.recommend(users, k=10)
    overlaps = []
    for row, uid in enumerate(users):
        given = train.items.raw(csr[row * 45].indices)
        person = model.fold_in(given)
        np.testing.assert_allclose(model.embeddings().items @ person.vector.astype(np.float32), person.scores,
                                   rtol=1e-4, atol=1e-4)
        overlaps.append(len(set(model.recommend_new(given, k=10).item_ids[0]) & set(trained.item_ids[row])) / 10)
    assert np.mean(overlaps) > 0.4
    given = train.items.raw(csr[0].indices[:6])
    low_first = model.fold_in(given, [1, 1, 1, 5, 5, 5]).scores
    high_first = model.fold_in(given, [5, 5, 5, 1, 1, 1]).scores
    assert not np.allclose(low_first, high_first)
    picky = create("mf-rank", dim=8, epochs=1, patience=0, n_neg=16, min_rating=4).fit(train)
    with pytest.raises(ConfigError, match="min_rating"):
        picky.fold_in(given[:2], [1, 2])
    np.testing.assert_allclose(picky.fold_in(given[:2], [5, 2]).scores, picky.fold_in(given[:1], [5]).scores)


def test_neumf_declares_no_embeddings_or_fold_in(fitted):
    model, train = fitted
    if model.name != "neumf":
        return
    with pytest.raises(CapabilityError):
        model.embeddings()
    with pytest.raises(CapabilityError):
        model.fold_in(train.items.raw([0]))
    with pytest.raises(CapabilityError):
        model.similar_items(train.items.raw([0]))


@pytest.mark.parametrize("name", MODELS)
def test_search_spaces_are_the_old_ones(name):
    from movierec.models.registry import get_class

    expected = {"mf-rank": ["dim", "lr", "reg", "n_neg", "temperature"],
                "neumf": ["dim", "mlp_layers", "lr", "reg", "n_neg", "dropout", "min_rating"]}[name]
    assert list(get_class(name).search_space) == expected


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
