"""The one cold-start API of the base class (`Recommender.fold_in` / `recommend_new`) and
the liked-movies solve of the factor models (`movierec.models._fold_in`).

Fast and exact, on tiny hand-made data: a probe model whose `_fold_in` records what the
base class hands it and scores movie j as (j + the sum of the given ratings), so every
list is known in advance; `Probe` learns from liked movies only, `DislikeProbe` declares
`dislikes`. The per-model fold-in quality runs in the contract suite and in
tests/test_likes_dislikes.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from movierec.data.dataset import Dataset
from movierec.data.idmap import IdMap
from movierec.errors import (
    CapabilityError,
    ConfigError,
    NoLikedMoviesError,
    NotFittedError,
    UnknownItemError,
    UnknownUserError,
)
from movierec.models._fold_in import implicit_user_vector, liked_fold_in
from movierec.models.base import Capabilities, NewUser, Recommender

ITEMS = np.array([100, 101, 102, 103, 104, 105, 106])  # raw movie IDs; index j is movie 100 + j


def _data(rating_scale: tuple[float, float] | None = (1.0, 5.0), items=ITEMS) -> Dataset:
    users = IdMap([7, 8], kind="user", error=UnknownUserError)
    user_idx = np.array([0, 0, 1, 1], dtype=np.int32)
    item_idx = np.array([0, 1, 1, 2], dtype=np.int32)
    data = Dataset("probe", users, IdMap(items, kind="movie", error=UnknownItemError), user_idx, item_idx, np.array([1, 5, 3, 4], dtype=np.float32),
                   np.zeros(4, dtype=np.int64))
    data.rating_scale = rating_scale
    return data


class Probe(Recommender):
    """Scores movie j as j + sum(ratings); remembers the arguments of `_fold_in`
    (item_idx, ratings, liked)."""

    name = "probe"
    capabilities = Capabilities(predicts_ratings=True, fold_in=True)

    def __init__(self, with_vector: bool = True) -> None:
        self.with_vector = with_vector

    def _fit(self, train, validation) -> None:
        self.calls_: list[tuple[np.ndarray, np.ndarray | None, np.ndarray]] = []

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        return np.tile(np.arange(len(self.items_), dtype=np.float32), (len(user_idx), 1))

    def _fold_in(self, item_idx, ratings, liked):
        self.calls_.append((item_idx, ratings, liked))
        shift = 0.0 if ratings is None else float(np.sum(ratings))
        scores = (np.arange(len(self.items_), dtype=np.float64) + shift)[None, :]  # (1, n): reshaped by fold_in
        vector = [[1.5, -2.0]] if self.with_vector else None  # a nested list: made a float32 (d,) array
        return scores, vector

    def _state(self):
        return {}

    def _set_state(self, state) -> None:
        pass


class NoColdStart(Probe):
    name = "probe-no-fold-in"
    capabilities = Capabilities(predicts_ratings=True)


class DislikeProbe(Probe):
    name = "probe-dislikes"
    capabilities = Capabilities(predicts_ratings=True, fold_in=True, dislikes=True)


@pytest.fixture()
def probe() -> Probe:
    return Probe().fit(_data())


def test_fold_in_hands_indices_and_ratings_to_the_model():
    model = DislikeProbe().fit(_data())
    person = model.fold_in([103, 100, 105], [5, 1, 2.5])
    item_idx, ratings, liked = model.calls_[-1]
    assert item_idx.dtype == np.int64 and item_idx.tolist() == [3, 0, 5]  # given order, model indices
    assert ratings.dtype == np.float64 and ratings.tolist() == [5.0, 1.0, 2.5]
    assert liked.dtype == bool and liked.tolist() == [True, False, False]  # 3.5 or more is liked
    assert person.item_idx.dtype == np.int64 and person.item_idx.tolist() == [3, 0, 5]
    assert person.ratings.tolist() == [5.0, 1.0, 2.5] and person.liked.tolist() == [True, False, False]
    assert person.scores.dtype == np.float32 and person.scores.shape == (len(ITEMS),)
    np.testing.assert_array_equal(person.scores, np.arange(len(ITEMS)) + 8.5)
    assert person.vector.dtype == np.float32 and person.vector.tolist() == [1.5, -2.0]
    # liked movies only: no ratings reach the model, every movie is liked; one scalar ID is a list of one
    person = model.fold_in(104)
    assert model.calls_[-1][1] is None and person.ratings is None
    assert model.calls_[-1][2].tolist() == [True] and person.liked.tolist() == [True]
    assert person.item_idx.tolist() == [4]
    np.testing.assert_array_equal(person.scores, np.arange(len(ITEMS)))
    # whole-star ratings arrive as float64 too
    assert model.fold_in([100, 101], [4, 2]).ratings.dtype == np.float64 and model.calls_[-1][1].dtype == np.float64
    # ratings given as a column are flattened, one per movie
    assert model.fold_in([100, 101], np.array([[2.0], [3.0]])).ratings.tolist() == [2.0, 3.0]


def test_a_model_without_dislikes_sees_only_the_liked_movies(probe):
    person = probe.fold_in([103, 100, 105, 106], [5, 1, 3, 3.5])
    item_idx, ratings, liked = probe.calls_[-1]
    assert item_idx.tolist() == [3, 6] and ratings.tolist() == [5.0, 3.5] and liked.tolist() == [True, True]
    # the person still holds every movie given, with the mask
    assert person.item_idx.tolist() == [3, 0, 5, 6] and person.ratings.tolist() == [5.0, 1.0, 3.0, 3.5]
    assert person.liked.tolist() == [True, False, False, True]
    np.testing.assert_array_equal(person.scores, np.arange(len(ITEMS)) + 8.5)  # only the liked ratings count
    # the same scores as the liked movies alone
    np.testing.assert_array_equal(person.scores, probe.fold_in([103, 106], [5, 3.5]).scores)


def test_nothing_liked_raises_for_a_model_without_dislikes(probe):
    with pytest.raises(NoLikedMoviesError, match=r"^None of the movies given is rated 3\.5 or more, and model "
                                                 r"'probe' learns only from movies a person likes\.$") as err:
        probe.recommend_new([100, 101], [1, 3], k=3)
    assert isinstance(err.value, ConfigError)  # a bad-input error for the CLI and the API
    assert not probe.calls_
    # a model with dislikes folds such a person in
    model = DislikeProbe().fit(_data())
    person = model.fold_in([100, 101], [1, 3])
    assert person.liked.tolist() == [False, False] and model.calls_[-1][2].tolist() == [False, False]


@pytest.mark.parametrize("scale, expected", [((1.0, 5.0), 3.5), ((0.5, 5.0), 3.3125), ((0.0, 10.0), 6.25),
                                             (None, None)])
def test_liked_threshold_follows_the_rating_scale(scale, expected):
    model = Probe().fit(_data(rating_scale=scale))
    assert model.liked_threshold() == expected


def test_half_stars_on_a_half_star_scale():
    """On 0.5-5 stars, 3.5 stars is liked and 3 is not."""
    model = DislikeProbe().fit(_data(rating_scale=(0.5, 5.0)))
    assert model.fold_in([100, 101, 102], [3.5, 3.0, 0.5]).liked.tolist() == [True, False, False]


def test_liked_threshold_is_checked_and_not_fitted_raises():
    with pytest.raises(NotFittedError):
        Probe().liked_threshold()
    model = DislikeProbe().fit(_data())
    assert model.fold_in([100, 101], [2, 1], liked_threshold=2).liked.tolist() == [True, False]
    assert model.fold_in([100, 101], [2, 1], liked_threshold=1).liked.all()  # the ends of the scale are allowed
    assert model.fold_in([100, 101], [5, 4], liked_threshold=5).liked.tolist() == [True, False]
    for bad in (np.nan, np.inf, "high", True):
        with pytest.raises(ConfigError, match=r"^The liked threshold must be a finite number of stars, got .*\.$"):
            model.fold_in([100], [4], liked_threshold=bad)
    for bad in (0.5, 5.5):
        with pytest.raises(ConfigError, match=r"^The liked threshold must lie on the model's rating scale \[1, 5\], "
                                              r"got [0-9.]+\.$"):
            model.recommend_new([100], [4], liked_threshold=bad)
    # without a rating scale every movie given is liked, unless a threshold says otherwise
    free = DislikeProbe().fit(_data(rating_scale=None))
    assert free.fold_in([100, 101], [-3.0, 42.0]).liked.all()
    assert free.fold_in([100, 101], [-3.0, 42.0], liked_threshold=0).liked.tolist() == [False, True]


def test_new_user_liked_defaults_to_all_and_must_match():
    person = NewUser(item_idx=np.array([3, 1]), ratings=None, scores=np.zeros(4, np.float32))
    assert person.liked.dtype == bool and person.liked.tolist() == [True, True]
    with pytest.raises(ValueError, match="liked"):
        NewUser(item_idx=np.array([3, 1]), ratings=None, scores=np.zeros(4, np.float32), liked=np.array([True]))


def test_recommend_new_leaves_out_disliked_movies_and_passes_the_threshold(probe):
    # 106 and 105 score highest; both are given (one liked, one not), so neither is returned
    rec = probe.recommend_new([106, 105], [5, 1], k=3)
    assert rec.items_of(0).tolist() == [104, 103, 102]
    assert probe.calls_[-1][0].tolist() == [6]
    rec = probe.recommend_new([106, 105], [5, 1], k=3, liked_threshold=1)
    assert probe.calls_[-1][0].tolist() == [6, 5] and rec.items_of(0).tolist() == [104, 103, 102]
    np.testing.assert_array_equal(rec.scores[0], np.array([4, 3, 2], dtype=np.float32) + 6)


def test_fold_in_without_a_vector(probe):
    model = Probe(with_vector=False).fit(_data())
    assert model.fold_in([100]).vector is None


def test_fold_in_refuses_bad_input(probe):
    with pytest.raises(ConfigError, match=r"^A new person needs at least one movie\.$"):
        probe.fold_in([])
    with pytest.raises(ConfigError, match="at least one movie"):
        probe.fold_in([[100, 101]])
    with pytest.raises(ConfigError, match=r"^Each movie may be given only once for a new person\.$"):
        probe.fold_in([100, 101, 100])
    with pytest.raises(ConfigError, match=r"^Give one rating per movie: 2 movies, 3 ratings\.$"):
        probe.fold_in([100, 101], [1, 2, 3])
    with pytest.raises(ConfigError, match=r"^Ratings must be finite numbers\.$"):
        probe.fold_in([100, 101], [1, np.nan])
    with pytest.raises(ConfigError, match="finite"):
        probe.fold_in([100], [np.inf])
    with pytest.raises(ConfigError, match=r"^Ratings must lie in \[1, 5\], the model's scale; got 0\.5 for movie 100\.$"):
        probe.fold_in([100, 101], [0.5, 3])
    with pytest.raises(ConfigError, match="must lie in"):
        probe.fold_in([100, 101], [3, 5.5])
    with pytest.raises(UnknownItemError, match="999"):
        probe.fold_in([100, 999])
    assert not probe.calls_  # nothing reached the model
    # the ends of the scale are ratings too
    assert probe.fold_in([100, 101], [1, 5]).ratings.tolist() == [1.0, 5.0]


def test_fold_in_without_a_rating_scale_takes_any_finite_rating():
    model = Probe().fit(_data(rating_scale=None))
    assert model.rating_scale_ is None
    assert model.fold_in([100, 101], [-3.0, 42.0]).ratings.tolist() == [-3.0, 42.0]


def test_capability_and_fitting_are_checked_first():
    with pytest.raises(NotFittedError):
        Probe().fold_in([100])
    with pytest.raises(NotFittedError):
        Probe().recommend_new([100], k=3)
    unable = NoColdStart().fit(_data())
    with pytest.raises(CapabilityError, match=r"^Model 'probe-no-fold-in' cannot fold in a new person without retraining\.$"):
        unable.fold_in([100])
    with pytest.raises(CapabilityError):
        unable.recommend_new([100], k=3)
    with pytest.raises(CapabilityError):  # declared capability, not the fitted state, decides
        NoColdStart().fold_in([100])


def test_recommend_new_ranks_the_folded_in_scores(probe):
    # scores rise with the index: the best movies are the last ones, given ones left out
    rec = probe.recommend_new([106, 103], [4, 4], k=3)
    assert rec.user_ids.tolist() == [-1]
    assert rec.items_of(0).tolist() == [105, 104, 102]
    np.testing.assert_array_equal(rec.scores[0], np.array([5, 4, 2], dtype=np.float32) + 8)
    assert rec.scores.dtype == np.float32
    assert probe.calls_[-1][1].tolist() == [4.0, 4.0]  # the ratings reached the model
    kept = probe.recommend_new([106, 103], k=3, exclude_given=False)
    assert kept.items_of(0).tolist() == [106, 105, 104]
    # candidates restrict the list; k beyond the allowed movies gives all of them, padded
    rec = probe.recommend_new([106], k=5, candidates=[100, 106, 102])
    assert rec.items_of(0).tolist() == [102, 100] and rec.lengths.tolist() == [2]
    assert rec.item_ids[0, 2:].tolist() == [-1, -1, -1] and np.isneginf(rec.scores[0, 2:]).all()
    rec = probe.recommend_new([106], k=50)
    assert rec.items_of(0).tolist() == [105, 104, 103, 102, 101, 100]
    for bad in (0, -2, 1.5, True):
        with pytest.raises(ConfigError, match="k must be"):
            probe.recommend_new([106], k=bad)


def test_recommend_new_lists_ten_movies_by_default():
    model = Probe().fit(_data(items=np.arange(100, 115)))
    assert model.recommend_new([114]).items_of(0).tolist() == list(range(113, 103, -1))


def test_recommend_new_with_string_movie_ids():
    ids = np.array(["m0", "m1", "m2", "m3"], dtype=object)
    model = Probe().fit(_data(items=ids))
    rec = model.recommend_new(["m3"], k=5)
    assert rec.items_of(0).tolist() == ["m2", "m1", "m0"] and rec.item_ids[0, 3] == ""


# -- the liked-movies solve of the factor models -----------------------------------------
def _objective(p, Q, liked, weights, alpha, reg):
    """Σ_i c_i (t_i − p·q_i)² + reg ‖p‖² over every movie (the definition being solved)."""
    t = np.zeros(len(Q))
    c = np.ones(len(Q))
    t[liked] = 1.0
    c[liked] = 1.0 + alpha * np.asarray(weights, dtype=np.float64)
    return float(np.sum(c * (t - Q @ p) ** 2) + reg * p @ p)


def test_implicit_user_vector_minimises_the_weighted_objective():
    rng = np.random.default_rng(0)
    Q = rng.normal(size=(12, 3)).astype(np.float32)
    liked, weights, alpha, reg = np.array([2, 7, 9]), np.array([1.0, 2.0, 0.5]), 4.0, 0.3
    gram = Q.T.astype(np.float64) @ Q.astype(np.float64)
    p = implicit_user_vector(Q, gram, liked, weights, alpha, reg)
    # the normal equations written out over all movies
    c = np.ones(12)
    t = np.zeros(12)
    c[liked], t[liked] = 1.0 + alpha * weights, 1.0
    Q64 = Q.astype(np.float64)
    expected = np.linalg.solve(Q64.T @ (c[:, None] * Q64) + reg * np.eye(3), Q64.T @ (c * t))
    np.testing.assert_allclose(p, expected, rtol=1e-10, atol=1e-12)
    assert p.dtype == np.float64 and p.shape == (3,)
    best = _objective(p, Q64, liked, weights, alpha, reg)
    for step in np.eye(3) * 1e-3:  # any small move is worse
        assert _objective(p + step, Q64, liked, weights, alpha, reg) > best
        assert _objective(p - step, Q64, liked, weights, alpha, reg) > best


def test_liked_fold_in_scales_the_taste_direction():
    rng = np.random.default_rng(1)
    Q = rng.normal(size=(10, 4)).astype(np.float32).astype(np.float64)  # exactly representable in float32
    bias = rng.normal(size=10)
    gram = Q.T @ Q
    liked, weights = np.array([1, 4, 6]), np.array([1.0, 1.0, 3.0])
    scores, vector = liked_fold_in(Q.astype(np.float32), gram, bias, user_norm=2.0, liked=liked, weights=weights,
                                   alpha=5.0, reg_share=0.2, scale=1.5)
    # ridge penalty: reg_share times the mean diagonal of QᵀQ
    direction = implicit_user_vector(Q, gram, liked, weights, 5.0, 0.2 * np.trace(gram) / 4)
    p = vector[:-1]
    assert vector.shape == (5,) and vector[-1] == 1.0
    np.testing.assert_allclose(np.linalg.norm(p), 1.5 * 2.0, rtol=1e-12)
    np.testing.assert_allclose(p, direction * (3.0 / np.linalg.norm(direction)), rtol=1e-6)
    np.testing.assert_allclose(scores, Q @ p + bias, rtol=1e-10)
    assert scores.dtype == np.float64 and vector.dtype == np.float64


def test_liked_fold_in_with_no_taste_direction_is_the_bias():
    """Liked movies whose vectors cancel give p = 0: the scores fall back to the movie bias
    (no division by a zero norm)."""
    Q = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]])
    bias = np.array([0.1, 0.2, 0.3])
    scores, vector = liked_fold_in(Q, Q.T @ Q, bias, user_norm=1.0, liked=np.array([0, 1]),
                                   weights=np.ones(2), alpha=1.0, reg_share=0.1, scale=1.0)
    assert np.isfinite(scores).all() and vector.tolist() == [0.0, 0.0, 1.0]
    np.testing.assert_allclose(scores, bias)
