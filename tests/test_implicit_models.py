"""The implicit-feedback models (ALS, BPR, EASE, SeqEASE): their own promises about
embeddings, similar movies, cold start (fold-in) and quality, on real ML-100K.

The generic contract (unfitted errors, k and seen movies, unknown IDs, state round trip,
determinism, embeddings ranking as recommend, capability errors) runs over every model in
tests/test_contract.py (`movierec.testing.contract`)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from movierec.data.split import leave_last_k_split
from movierec.errors import ConfigError, NoLikedMoviesError
from movierec.evaluation.runner import evaluate_ranking
from movierec.models.registry import create, get_class
from movierec.models.seq_ease import positions_from_end
from movierec.models.space import Categorical, Float, Int

# small, fast settings; quality is checked separately with tuned-like settings
FAST = {
    "als": {"factors": 16, "iterations": 5},
    "bpr": {"factors": 16, "iterations": 20},
    "ease": {"regularization": 200.0},
    "seq-ease": {"regularization": 200.0, "tau": 10.0, "floor": 0.2, "beta": 0.5},
}
NAMES = list(FAST)

#: liked-only people for the taste checks (ML-100K movie IDs)
STAR_WARS_FAN = [50, 172, 181, 174, 96, 82]  # Star Wars, Empire, Jedi, Raiders, Terminator 2, Jurassic Park
DISNEY_FAN = [1, 71, 95, 588, 432, 99]  # Toy Story, Lion King, Aladdin, Beauty and the Beast, Fantasia, Snow White


@pytest.fixture(scope="module")
def loo(ml100k):
    """ML-100K, per-user temporal leave-last-1 (validation: the one before)."""
    return leave_last_k_split(ml100k, k=1)


@pytest.fixture(scope="module")
def train(small_split):
    return small_split.train


@pytest.fixture(scope="module")
def fitted(train):
    return {name: create(name, **params).fit(train) for name, params in FAST.items()}


def _top10_overlap(model, train, users, person_input) -> float:
    """Mean share of each user's trained top-10 that their folded-in top-10 repeats."""
    overlaps = []
    for u in users:
        items, ratings = person_input(u)
        trained = model.recommend(train.users.raw([u]), k=10).items_of(0)
        new = model.recommend_new(items, ratings, k=10).items_of(0)
        overlaps.append(len(set(trained.tolist()) & set(new.tolist())) / 10)
    return float(np.mean(overlaps))


def _liked(train):
    seen = train.to_csr("ones")
    return lambda u: (train.items.raw(seen[u].indices), None)


def _history_in_time_order(train, u) -> np.ndarray:
    """Raw movie IDs of user index u, oldest first (SeqEASE's training order)."""
    pos = positions_from_end(train)
    mine = np.flatnonzero(train.user_idx == u)
    return train.items.raw(train.item_idx[mine[np.argsort(-pos[mine], kind="stable")]])


def test_search_spaces_as_the_tuner_sampled_them():
    """Same names, ranges, log flags and order as the former suggest_params."""
    assert list(get_class("als").search_space.items()) == [
        ("factors", Categorical([32, 64, 128, 256])), ("regularization", Float(1e-3, 100.0, log=True)),
        ("alpha", Float(0.1, 100.0, log=True)), ("iterations", Int(5, 30)), ("values", Categorical(["ones", "rating"]))]
    assert list(get_class("bpr").search_space.items()) == [
        ("factors", Categorical([32, 64, 128])), ("learning_rate", Float(1e-3, 0.2, log=True)),
        ("regularization", Float(1e-5, 0.1, log=True)), ("iterations", Int(20, 300, log=True))]
    assert get_class("ease").search_space == {"regularization": Float(1.0, 5000.0, log=True)}
    assert list(get_class("seq-ease").search_space.items()) == [
        ("regularization", Categorical([50.0, 100.0, 200.0, 400.0, 800.0, 1600.0])),
        ("tau", Float(1.0, 100.0, log=True)), ("floor", Float(0.0, 0.6)), ("beta", Float(0.0, 2.0))]


def test_no_blas_thread_warning(train):
    """implicit warns about OpenBLAS threads unless the wrapper limits them; users never see it."""
    import implicit.utils

    implicit.utils._checked_blas_config = False  # make implicit check again
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        create("als", factors=8, iterations=2).fit(train)
        create("bpr", factors=8, iterations=2).fit(train)


def test_bpr_embedding_layout_and_similarity_vectors(fitted, train):
    """implicit's bias column: user side all ones, item side the bias; similar movies
    compare the pure factors (cosine), never the popularity column."""
    bpr = fitted["bpr"]
    np.testing.assert_array_equal(bpr.user_embeddings_[:, -1], 1.0)
    np.testing.assert_array_equal(bpr.item_bias_, bpr.item_embeddings_[:, -1])
    V = bpr.item_embeddings_[:, :-1]
    V = V / np.maximum(np.linalg.norm(V, axis=1, keepdims=True), 1e-12)
    q = int(np.argmax(train.item_counts()))
    sims = V.astype(np.float64) @ V[q].astype(np.float64)
    sims[q] = -np.inf
    got = bpr.similar_items(train.items.raw([q]), k=5)
    # the same top 5 by cosine, up to float32 rounding between BLAS paths (near-ties may swap)
    np.testing.assert_allclose(got.scores[0], np.sort(sims)[::-1][:5], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(sims[train.items.lookup(got.items_of(0))], got.scores[0], rtol=1e-5, atol=1e-6)


def test_als_orientation_and_similar_items(fitted, train):
    als = fitted["als"]
    assert als.user_embeddings_.shape == (train.n_users, 16)
    assert als.item_embeddings_.shape == (train.n_items, 16)
    q = train.items.raw([0])
    sims = als.similar_items(q, k=5)
    assert sims.item_ids.shape == (1, 5) and q[0] not in sims.items_of(0)


def test_bad_params(train):
    with pytest.raises(ConfigError):
        create("als", values="clicks").fit(train)
    with pytest.raises(ConfigError):
        create("ease", regularization=0.0).fit(train)
    with pytest.raises(ConfigError):
        create("seq-ease", floor=2.0).fit(train)


def test_ease_similar_items_are_rows_of_b_and_left_out_items(train):
    model = create("ease", regularization=100.0, min_item_count=5).fit(train)
    counts = train.item_counts()
    rare = np.flatnonzero(counts < 5)
    recs = model.recommend(train.users.raw(np.arange(3)), k=20)
    assert not set(train.items.raw(rare).tolist()) & set(recs.item_ids.ravel().tolist())
    q = int(np.argmax(counts))
    row = np.full(train.n_items, -np.inf, dtype=np.float32)
    pos = int(np.flatnonzero(model.model_items_ == q)[0])
    row[model.model_items_] = model.weights_[pos]
    row[q] = -np.inf
    sims = model.similar_items(train.items.raw([q]), k=3)
    np.testing.assert_array_equal(sims.items_of(0), train.items.raw(np.argsort(-row, kind="stable")[:3]))
    np.testing.assert_array_equal(sims.scores[0], np.sort(row)[::-1][:3])


def test_seq_ease_reduces_to_ease(train):
    """tau -> inf, floor 1, beta 0 is plain EASE."""
    ease = create("ease", regularization=150.0).fit(train)
    seq = create("seq-ease", regularization=150.0, tau=1e9, floor=1.0, beta=0.0).fit(train)
    users = train.users.raw(np.arange(30))
    np.testing.assert_allclose(seq.score(users), ease.score(users), rtol=1e-5, atol=1e-6)


def test_ease_weights_are_kept_by_the_training_dataset(train):
    """EASE's inverse is reused across fits on the same Dataset object (tuning trials, and
    SeqEASE with EASE's lambda), kept in that object's bounded memo, never module-wide."""
    import pickle

    from movierec.models import ease as ease_module

    assert not [n for n in vars(ease_module) if "CACHE" in n.upper() and not n.startswith("__")]
    data = train.subset(np.arange(train.n_ratings))  # a fresh object: an empty memo
    a = create("ease", regularization=123.0).fit(data)
    b = create("seq-ease", regularization=123.0).fit(data)
    assert b.weights_ is a.weights_ and not a.weights_.flags.writeable
    other = create("ease", regularization=123.0).fit(data.subset(np.arange(data.n_ratings)))
    assert other.weights_ is not a.weights_
    np.testing.assert_array_equal(other.weights_, a.weights_)
    for lam in range(1, 2 * data.MEMO_SIZE):
        create("ease", regularization=float(lam)).fit(data)
    assert len(data._memo) == data.MEMO_SIZE
    assert "_memo" not in pickle.loads(pickle.dumps(data)).__dict__
    data.MEMO_BYTES = 1  # on this object only: over the byte bound, the latest value alone is kept
    create("ease", regularization=99.0).fit(data)
    assert list(data._memo) == [("ease.weights", 1, 99.0, "ones")]


# -- cold start ----------------------------------------------------------------------------


def test_ease_fold_in_equals_the_trained_user(fitted, train):
    """x @ B with the same history x: exactly the trained scores, for both value kinds."""
    model = fitted["ease"]
    seen = train.to_csr("ones")
    for u in train.active_users()[:30]:
        person = model.fold_in(train.items.raw(seen[u].indices))
        np.testing.assert_array_equal(person.scores, model._score(np.array([u]))[0])
        assert person.vector is None
    assert _top10_overlap(model, train, train.active_users()[:30], _liked(train)) == 1.0
    rated = create("ease", regularization=200.0, values="rating").fit(train)
    ratings = train.to_csr("rating")
    u = int(train.active_users()[3])
    row = ratings[u]
    # given in any order: the history is a set; with the liked threshold at the bottom of
    # the scale every rating is liked, as every rating is an interaction in training
    order = np.arange(len(row.indices))[::-1]
    person = rated.fold_in(train.items.raw(row.indices[order]), row.data[order], liked_threshold=1.0)
    np.testing.assert_array_equal(person.scores, rated._score(np.array([u]))[0])
    # at the default threshold (3.5) the movies rated 3 or less are dislikes instead
    assert (row.data < 3.5).any()
    assert not np.allclose(rated.fold_in(train.items.raw(row.indices), row.data).scores, person.scores)


def test_seq_ease_fold_in_equals_the_trained_user(fitted, train):
    """The history in time order (oldest first) gets the trained recency weights and
    transition query, so exactly the trained scores; another order scores differently."""
    model = fitted["seq-ease"]
    users = train.active_users()[:30]
    for u in users:
        person = model.fold_in(_history_in_time_order(train, u))
        np.testing.assert_array_equal(person.scores, model._score(np.array([u]))[0])
    overlap = _top10_overlap(model, train, users, lambda u: (_history_in_time_order(train, u), None))
    assert overlap == 1.0
    history = _history_in_time_order(train, users[0])
    reversed_scores = model.fold_in(history[::-1]).scores
    assert np.abs(reversed_scores - model.fold_in(history).scores).max() > 1e-3


def test_als_fold_in_matches_trained_user(fitted, train):
    """The exact closed-form user solve of a user's own history lands near their trained
    vector (training's solve is a few CG steps, before the last item update) and ranks
    alike; measured on 30 users: cosine > 0.97, mean top-10 overlap about 0.92."""
    model = fitted["als"]
    seen = train.to_csr("ones")
    users = train.active_users()[:30]
    for u in users:
        person = model.fold_in(train.items.raw(seen[u].indices))
        trained = model.user_embeddings_[u]
        assert person.vector @ trained / (np.linalg.norm(person.vector) * np.linalg.norm(trained)) > 0.95
        np.testing.assert_allclose(person.scores, model.embeddings().items @ person.vector, rtol=1e-5, atol=1e-5)
    assert _top10_overlap(model, train, users, _liked(train)) >= 0.85


def test_als_fold_in_uses_ratings_only_when_fitted_on_them(train):
    items = train.items.raw(np.flatnonzero(train.item_counts())[:8])
    low, high = np.full(8, 4.0), np.array([5.0, 5.0, 5.0, 5.0, 4.0, 4.0, 4.0, 4.0])  # all liked (>= 3.5)
    ones = create("als", factors=8, iterations=3).fit(train)
    np.testing.assert_array_equal(ones.fold_in(items, low).vector, ones.fold_in(items).vector)
    rated = create("als", factors=8, iterations=3, values="rating").fit(train)
    assert not np.allclose(rated.fold_in(items, low).vector, rated.fold_in(items, high).vector)
    # liked movies alone count as the top of the scale
    np.testing.assert_array_equal(rated.fold_in(items).vector, rated.fold_in(items, np.full(8, 5.0)).vector)


def test_als_drops_disliked_movies(train):
    """ALS learns only from liked movies: those rated below 3.5 change nothing, and a
    person who liked none of the movies given is refused with a typed error."""
    items = train.items.raw(np.flatnonzero(train.item_counts())[:8])
    mixed = np.array([5.0, 4.0, 5.0, 4.0, 1.0, 3.0, 2.0, 1.0])
    for values in ("ones", "rating"):
        model = create("als", factors=8, iterations=3, values=values).fit(train)
        person = model.fold_in(items, mixed)
        assert person.liked.tolist() == [True] * 4 + [False] * 4
        assert person.item_idx.tolist() == model.item_index(items).tolist()
        np.testing.assert_array_equal(person.vector, model.fold_in(items[:4], mixed[:4]).vector)
        with pytest.raises(NoLikedMoviesError, match="model 'als' learns only from movies a person likes"):
            model.fold_in(items[4:], mixed[4:])


def test_bpr_fold_in_optimises_the_users_bpr_objective(fitted, train):
    """BPR's user objective with the movies fixed, solved to its optimum: close to the
    SGD-trained vectors (measured: mean cosine 0.94, top-10 overlap 0.72 on 30 users)."""
    model = fitted["bpr"]
    seen = train.to_csr("ones")
    users = train.active_users()[:30]
    cosines = []
    for u in users[:10]:
        person = model.fold_in(train.items.raw(seen[u].indices))
        assert person.vector[-1] == 1.0  # the bias column stays 1
        trained = model.user_embeddings_[u, :-1]
        cosines.append(person.vector[:-1] @ trained / (np.linalg.norm(person.vector[:-1]) * np.linalg.norm(trained)))
    assert np.mean(cosines) > 0.9
    assert _top10_overlap(model, train, users, _liked(train)) >= 0.6


@pytest.fixture(scope="module")
def full_models(ml100k):
    return {"als": create("als").fit(ml100k), "ease": create("ease").fit(ml100k)}


@pytest.mark.parametrize("name", ["als", "ease"])
def test_liked_only_lists_follow_taste(name, full_models, ml100k):
    """A Star Wars fan and a Disney fan (liked movies only) get different lists, the
    Disney fan's full of children's films. Measured on ML-100K: overlap 0 for both
    models; children's films 1 vs 9 (ALS) and 1 vs 8 (EASE)."""
    model = full_models[name]
    fan_a = model.recommend_new(STAR_WARS_FAN, k=10).items_of(0)
    fan_b = model.recommend_new(DISNEY_FAN, k=10).items_of(0)
    assert len(set(fan_a.tolist()) & set(fan_b.tolist())) <= 3
    assert not set(fan_a.tolist()) & set(STAR_WARS_FAN) and not set(fan_b.tolist()) & set(DISNEY_FAN)

    def kids(ids):
        return sum("Children's" in ml100k.catalog.genres[i] for i in ml100k.items.lookup(ids))

    assert kids(fan_b) >= 6 and kids(fan_a) <= 2


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
