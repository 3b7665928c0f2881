"""Scalable EASE and SeqEASE: `max_items` keeps the item-item model to the most rated
movies, the rest are served by popularity below every modelled movie."""

from __future__ import annotations

import numpy as np
import pytest

from movierec.errors import ConfigError
from movierec.models import create
from movierec.models import ease as ease_module
from movierec.models.ease import LEFT_OUT_SCORE, ease_weights, gram_matrix
from movierec.testing.contract import CHECKS, make_case

CAP = 300  # of the small split's 1,600-odd movies


@pytest.fixture(scope="module")
def capped(small_split):
    return {name: create(name, max_items=CAP).fit(small_split.train) for name in ("ease", "seq-ease")}


def test_the_default_keeps_every_movie_of_the_small_datasets():
    # ML-100K (1,682 movies) and ml-latest-small (9,724) fit under the default whole
    assert create("ease").max_items == create("seq-ease").max_items == 20_000


@pytest.mark.parametrize("name", ["ease", "seq-ease"])
def test_a_cap_at_or_above_the_catalog_is_dense_ease(name, small_split):
    train = small_split.train
    dense = create(name, max_items=None).fit(train)
    for cap in (len(dense.model_items_), train.n_items, 20_000):  # the first: exactly every rated movie
        model = create(name, max_items=cap).fit(train)
        users = np.arange(train.n_users)
        np.testing.assert_array_equal(model.score_indices(users), dense.score_indices(users))
        np.testing.assert_array_equal(model.model_items_, dense.model_items_)


@pytest.mark.parametrize("name", ["ease", "seq-ease"])
def test_the_model_keeps_the_most_rated_movies(name, capped, small_split):
    model = capped[name]
    counts = small_split.train.item_counts()
    assert len(model.model_items_) == CAP and model.weights_.shape == (CAP, CAP)
    assert np.all(np.diff(model.model_items_) > 0)  # index order
    left = np.setdiff1d(np.arange(len(counts)), model.model_items_)
    assert counts[model.model_items_].min() >= counts[left].max()


@pytest.mark.parametrize("name", ["ease", "seq-ease"])
def test_unmodelled_movies_rank_after_modelled_ones_by_popularity(name, capped, small_split):
    model = capped[name]
    counts = np.bincount(model.seen_.indices, minlength=model.n_items_)
    users = small_split.train.users.raw_ids[::25]
    recs = model.recommend(users, k=model.n_items_)
    inside = np.zeros(model.n_items_, dtype=bool)
    inside[model.model_items_] = True
    for _, items, scores in recs:
        idx = model.item_index(items)
        first_out = int(np.argmin(inside[idx]))
        # every modelled movie (not seen) comes before every unmodelled one
        assert inside[idx[:first_out]].all() and not inside[idx[first_out:]].any()
        assert np.all(np.diff(counts[idx[first_out:]]) <= 0)  # the rest by popularity
        assert np.all(np.isfinite(scores)) and scores[first_out:].max() < -1e29 < scores[:first_out].min()


@pytest.mark.parametrize("name", ["ease", "seq-ease"])
def test_fold_in_similar_and_explain_with_unmodelled_movies(name, capped):
    model = capped[name]
    counts = np.bincount(model.seen_.indices, minlength=model.n_items_)
    out = np.setdiff1d(np.arange(model.n_items_), model.model_items_)
    out_rated = out[counts[out] > 0][:3]
    given = model.items_.raw_ids[np.concatenate([model.model_items_[:4], out_rated])]
    person = model.fold_in(given, ratings=np.array([5, 4, 5, 2, 5, 4, 3], dtype=float)[: len(given)])
    assert np.isfinite(person.scores).all()
    assert person.scores[model.model_items_].min() > person.scores[out].max()
    # similar movies of an unmodelled movie: the most rated modelled movies (the fallback), scores <= 0
    q = model.items_.raw_ids[out_rated[0]]
    similar = model.similar_items([q], k=5)
    top = model.item_index(similar.items_of(0))
    best_in = model.model_items_[np.argsort(-counts[model.model_items_], kind="stable")][:5]
    assert sorted(counts[top]) == sorted(counts[best_in]) and np.all(similar.scores[0] <= 0)
    assert np.all(np.diff(counts[top]) <= 0)
    # explain (similarities at a few columns) agrees with the full rows, left-out rows and columns included
    rows = np.concatenate([model.model_items_[:3], out_rated])
    among = np.concatenate([out_rated[::-1], model.model_items_[5:9]])
    np.testing.assert_array_equal(model.item_similarities(rows, among=among),
                                  model.item_similarities(rows)[:, among])
    # an unmodelled movie never explains a recommendation: no positive similarity
    assert (model.item_similarities(out_rated, among=model.model_items_) <= 0).all()


@pytest.mark.parametrize("name", ["ease", "seq-ease"])
def test_bundle_round_trip_keeps_the_item_subset(name, capped, small_split, tmp_path):
    from movierec.artifacts import Bundle, load_bundle, save_bundle

    model = capped[name]
    folder = tmp_path / "bundle"
    saved = save_bundle(Bundle.from_model(model, small_split.train), folder)
    loaded = load_bundle(saved if saved is not None else folder).model
    assert loaded.max_items == CAP
    np.testing.assert_array_equal(loaded.model_items_, model.model_items_)
    users = np.arange(model.seen_.shape[0])
    np.testing.assert_array_equal(loaded.score_indices(users), model.score_indices(users))
    out = np.setdiff1d(np.arange(model.n_items_), model.model_items_)[:4]
    np.testing.assert_array_equal(loaded.item_similarities(out), model.item_similarities(out))


@pytest.mark.parametrize("name", ["ease", "seq-ease"])
def test_the_model_contract_holds_with_a_cap(name, small_split, tmp_path):
    case = make_case(name, small_split.train, small_split.test, max_items=CAP)
    assert len(case.model.model_items_) == CAP < small_split.train.n_items
    for check, run in CHECKS.items():
        run(case, tmp_path / check)


@pytest.mark.parametrize("bad", [0, -5, 2.5, "100", True])
def test_bad_max_items_is_one_sentence(bad, small_split):
    with pytest.raises(ConfigError, match="max_items must be a positive whole number of movies or None"):
        create("ease", max_items=bad).fit(small_split.train)


def test_the_gram_matrix_summed_in_groups_of_users_is_exact(small_split, monkeypatch):
    X = small_split.train.to_csr("ones").astype(np.float32)
    X.data[:] = 1.0
    whole = gram_matrix(X)
    np.testing.assert_array_equal(whole, (X.T @ X).toarray())
    monkeypatch.setattr(ease_module, "GRAM_CHUNK_ENTRIES", 5_000)  # many groups, some of one user
    np.testing.assert_array_equal(gram_matrix(X), whole)
    assert whole.dtype == np.float32 and (whole.flags.c_contiguous or whole.flags.f_contiguous)


def test_in_place_weights_match_the_textbook_inverse(small_split):
    X = small_split.train.to_csr("ones").astype(np.float64)[:, :200]
    gram = (X.T @ X).toarray()
    P = np.linalg.inv(gram + 50.0 * np.eye(200))
    expected = np.eye(200) - P / np.diag(P)[None, :]
    copy = gram.astype(np.float32)
    B = ease_weights(copy, 50.0, overwrite=True)
    np.testing.assert_allclose(B, expected, rtol=0, atol=2e-5)
    assert B.flags.c_contiguous and np.all(np.diag(B) == 0)
    # without overwrite the caller's Gram matrix is left alone
    kept = gram.astype(np.float32)
    ease_weights(kept, 50.0)
    np.testing.assert_array_equal(kept, gram.astype(np.float32))


def test_left_out_scores_sit_below_every_score_within_float32(capped):
    row = capped["ease"]._left_out_row
    out = np.setdiff1d(np.arange(len(row)), capped["ease"].model_items_)
    assert row[out].max() <= LEFT_OUT_SCORE / 2 and row[out].min() >= LEFT_OUT_SCORE
