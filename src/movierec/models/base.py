"""The model contract: every recommender fits on a Dataset and answers in raw IDs.

Subclasses implement `_fit(train, validation)`, `_score(user_idx)` and their state hooks
(`_state`/`_set_state`, optionally `_meta`/`_set_meta`); the base class implements ID
mapping, seen-item exclusion, batched top-k (through `movierec.ranking`), and the
public, declared capabilities:

* `capabilities.predicts_ratings` -> `predict(user_ids, item_ids)`;
* `capabilities.embeddings` -> `embeddings()`: user and movie vectors whose dot product
  ranks movies exactly as `recommend` does (biases folded into extra columns), so any
  vector index over them returns what `recommend` returns;
* `capabilities.similar_items` -> `similar_items(item_ids, k)`;
* `capabilities.fold_in` -> `fold_in(item_ids, ratings=None, liked_threshold=None)` and
  `recommend_new(...)`: a new person from their ratings (or only the movies they liked),
  without retraining. A rating at or above `liked_threshold()` (3.5 stars on a 1-5 scale)
  is liked; `capabilities.dislikes` says whether the model also learns from the movies
  rated below it (models without it never see them);
* `search_space` (non-empty) -> tunable by `movierec.experiments.tune`.

Other layers (evaluation, retrieval, answers, serving, artifacts) work in index space
through public methods only: `check_is_fitted()`, `score_indices(user_idx)`,
`predict_indices(user_idx, item_idx)`, `item_similarities(item_idx)`, `item_vectors()`,
`candidate_mask(movie_ids)` and `rank_indices(...)`. A private `_name` of a model is read
only inside `movierec.models` (a test enforces it).

Asking a model for a capability it does not declare raises `CapabilityError`.
Models never import persistence: `state_dict()` / `load_state_dict()` hand their learned
state to `movierec.artifacts`, which writes and verifies bundles.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from movierec.data.dataset import Dataset
from movierec.data.idmap import IdMap
from movierec.errors import (
    CapabilityError,
    ConfigError,
    NoLikedMoviesError,
    NotFittedError,
    ResourceError,
    UnknownItemError,
    UnknownUserError,
)
from movierec.models.space import SearchSpace
from movierec.training.options import RuntimeOptions
from movierec.training.trainer import History
from movierec.ranking import Recommendations, rank_top_k, to_recommendations, top_k


@dataclass(frozen=True)
class Capabilities:
    """What a model can do, declared on its class (never guessed with hasattr)."""

    #: predicts ratings on the data's scale (RMSE makes sense; `predict` works)
    predicts_ratings: bool = False
    #: `embeddings()` gives user/movie vectors whose dot product reproduces the ranking
    embeddings: bool = False
    #: `similar_items()` works (movie-to-movie similarity)
    similar_items: bool = False
    #: `fold_in()` / `recommend_new()` serve a new person without retraining
    fold_in: bool = False
    #: `fold_in()` uses ratings below the liked threshold as negative feedback (movies
    #: like a disliked one rank lower); models without it drop those ratings
    dislikes: bool = False

    def names(self) -> list[str]:
        """The declared capabilities, as short names (for listings)."""
        return [name for name, on in vars(self).items() if on]


@dataclass
class Embeddings:
    """User and movie vectors of a fitted model, in index order.

    `users @ items.T` ranks every user's movies exactly as the model's `recommend` does
    (biases are folded into extra columns; a per-user constant may differ).

    Attributes:
        users: float32, shape (n_users, d).
        items: float32, shape (n_items, d).
    """

    users: np.ndarray
    items: np.ndarray


@dataclass
class NewUser:
    """A person folded into a fitted model from their ratings or liked movies.

    Attributes:
        item_idx: item indices of every movie given (liked or not), shape (m,).
        ratings: their ratings, shape (m,), or None when only liked movies were given.
        scores: the model's score of every movie for this person, float32, shape (n_items,).
        vector: the person's vector in `Embeddings.users` space, shape (d,), for models
            that declare embeddings (else None); `items @ vector` ranks as `scores`.
        liked: bool, shape (m,), aligned with `item_idx`: which movies given count as
            liked (rating >= the liked threshold); all True when no ratings were given
            (and when the constructor is not given it).
    """

    item_idx: np.ndarray
    ratings: np.ndarray | None
    scores: np.ndarray
    vector: np.ndarray | None = None
    liked: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.liked = (np.ones(len(self.item_idx), dtype=bool) if self.liked is None
                      else np.asarray(self.liked, dtype=bool).reshape(-1))
        if self.liked.shape != np.shape(self.item_idx):
            raise ValueError(f"liked has shape {self.liked.shape}, item_idx {np.shape(self.item_idx)}.")


@dataclass
class ModelState:
    """A fitted model's learned state, as persistence sees it.

    Attributes:
        arrays: named numeric arrays (written to safetensors).
        meta: JSON-serialisable values (written into the manifest).
    """

    arrays: dict[str, np.ndarray]
    meta: dict[str, Any] = field(default_factory=dict)


def _seen_ratings(train: Dataset, seen: sp.csr_matrix) -> np.ndarray | None:
    """Each training interaction's rating, aligned with `seen.indices` (the mean where a
    user rated a movie twice); None for data without a rating scale (implicit feedback)."""
    if train.rating_scale is None:
        return None
    summed = train.to_csr("rating")  # the same (user, movie) pairs as `seen`, in the same order
    return (summed.data / seen.data).astype(np.float32)


def check_k(k: Any) -> int:
    """`k` as an int, or a ConfigError when it is not a positive whole number."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ConfigError(f"k must be a positive whole number, got {k!r}.")
    return int(k)


class Recommender(ABC):
    """Base class of all movierec models.

    Conventions (as in scikit-learn): the constructor stores hyperparameters only;
    `fit` returns self; learned state lives in attributes ending in `_`.

    Fitted attributes every model has: `users_`, `items_` (the ID maps), `seen_` (users x
    movies CSR of the training interactions), `seen_ratings_` (their stars aligned with
    `seen_.indices`, None for data without a rating scale: known users' reasons cite only
    movies they liked) and `rating_scale_`.
    """

    #: short name used by the CLI and the registry
    name: ClassVar[str] = "base"
    #: what the model can do (see `Capabilities`)
    capabilities: ClassVar[Capabilities] = Capabilities()
    #: tunable hyperparameters (see `movierec.models.space`); empty = not tunable
    search_space: ClassVar[SearchSpace] = {}

    #: shorthand for `capabilities.predicts_ratings`, set from it for every subclass
    predicts_ratings: ClassVar[bool] = False

    #: per-epoch training history of the last fit (or of the saved fit, after loading);
    #: None for models that do not train in epochs
    history_: History | None = None
    #: the epoch count the last fit kept (best validation epoch, or all epochs run); None
    #: for models that do not train in epochs
    best_epoch_: int | None = None
    #: the runtime options of the last fit (see `movierec.training.options`)
    runtime_: RuntimeOptions | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "predicts_ratings" in cls.__dict__:
            raise TypeError(f"{cls.__name__}: declare capabilities = Capabilities(predicts_ratings=...) instead.")
        cls.predicts_ratings = cls.capabilities.predicts_ratings

    # -- hyperparameters --------------------------------------------------------------
    @classmethod
    def default_params(cls) -> dict[str, Any]:
        """Constructor arguments and their defaults."""
        sig = inspect.signature(cls.__init__)
        return {p.name: p.default for p in sig.parameters.values()
                if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}

    def get_params(self) -> dict[str, Any]:
        """Constructor arguments, as given (JSON-serialisable values)."""
        return {p: getattr(self, p) for p in self.default_params() if hasattr(self, p)}

    def set_params(self, **params: Any) -> "Recommender":
        valid = self.get_params()
        for key, value in params.items():
            if key not in valid:
                raise ConfigError(
                    f"{type(self).__name__} has no parameter {key!r}; valid: {', '.join(sorted(valid))}."
                )
            setattr(self, key, value)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # -- fitting ----------------------------------------------------------------------
    def fit(self, train: Dataset, validation: Dataset | None = None,
            runtime: RuntimeOptions | None = None) -> "Recommender":
        """Learn from `train`; some models use `validation` for early stopping only.

        Args:
            train: the training data.
            validation: held-out data for early stopping (models that train in epochs).
            runtime: how to train (seed, device, threads, progress, distributed; see
                `movierec.training.options`); None = the defaults. Stored as `runtime_`;
                models that do not train with torch ignore it.
        """
        if train.n_ratings == 0:
            raise ConfigError("Cannot fit on an empty training set.")
        if runtime is not None and not isinstance(runtime, RuntimeOptions):
            raise ConfigError(f"runtime must be a movierec.training.options.RuntimeOptions, got {runtime!r}.")
        self.runtime_ = self._default_runtime() if runtime is None else runtime
        self.check_params()
        self.check_fits(train.n_users, train.n_items, train.n_ratings)
        self.users_: IdMap = train.users
        self.items_: IdMap = train.items
        self.seen_: sp.csr_matrix = train.to_csr("ones")
        self.seen_ratings_: np.ndarray | None = _seen_ratings(train, self.seen_)
        self.rating_scale_ = train.rating_scale
        try:
            self._fit(train, validation)
        except BaseException:
            # a failed fit leaves an unfitted model, never a half-fitted one
            for attr in ("users_", "items_", "seen_", "seen_ratings_", "rating_scale_"):
                self.__dict__.pop(attr, None)
            raise
        return self

    def check_params(self) -> None:
        """Refuse, in one sentence, a hyperparameter out of its range; `build_model` calls it
        before any data is read, and `fit` before anything is allocated.

        Raises:
            ConfigError: the first hyperparameter out of range.
        """
        self._check_params()

    def _check_params(self) -> None:
        """Raise a ConfigError sentence for a hyperparameter out of range (models override)."""

    def _default_runtime(self) -> RuntimeOptions:
        """The runtime options of a fit given none (torch models honour old constructor ones)."""
        return RuntimeOptions()

    @abstractmethod
    def _fit(self, train: Dataset, validation: Dataset | None) -> None:
        """Learn the model's state from `train` (IdMaps, seen items and `runtime_` are set)."""

    @abstractmethod
    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        """Scores of every item for the given user indices, shape (len(user_idx), n_items)."""

    # -- memory -----------------------------------------------------------------------
    def memory_estimate(self, n_users: int, n_items: int, n_ratings: int) -> int | None:
        """Peak bytes `fit` allocates beyond the training data itself, for a training set
        of this size under the current hyperparameters; None where the model gives no
        estimate (its fit needs little beyond the data). Each model overrides it with a
        simple formula (`tests/test_memory_estimates.py` checks it against a measured fit).

        Args:
            n_users: users in the training set's ID map.
            n_items: movies in the training set's ID map.
            n_ratings: training interactions.
        """
        return None

    def _memory_what(self, n_users: int, n_items: int, n_ratings: int) -> str:
        """What the memory is for, in `ResourceError`'s sentence (models with one big
        matrix name it: "for its 59,047 x 59,047 item matrix")."""
        return f"to fit {n_ratings:,} ratings of {n_users:,} users and {n_items:,} movies"

    def _too_big_advice(self) -> str:
        """The end of `ResourceError`'s sentence: the alternative to use instead (of the
        same kind: a rating model for a rating model)."""
        if self.capabilities.predicts_ratings:
            return "use a machine with more free memory or a rating model with smaller state such as mf or bias"
        return "use a machine with more free memory or a model with smaller state such as als or pop"

    def check_fits(self, n_users: int, n_items: int, n_ratings: int, available: int | None = None) -> None:
        """Refuse, before anything is allocated, a fit that would need more memory than is free.

        Args:
            n_users, n_items, n_ratings: the training set's size (see `memory_estimate`).
            available: free bytes; None: `movierec.resources.available_memory()` (the
                cgroup limit or MemAvailable, or `$MOVIEREC_MEMORY_LIMIT`).

        Raises:
            ResourceError: one sentence naming the need, the limit and the alternative.
            ConfigError: when `$MOVIEREC_MEMORY_LIMIT` is not a size.
        """
        need = self.memory_estimate(int(n_users), int(n_items), int(n_ratings))
        if need is None:
            return
        from movierec.resources import available_memory, format_bytes

        free = available_memory() if available is None else int(available)
        if need > free:
            raise ResourceError(f"{self.name} needs {format_bytes(need)} "
                                f"{self._memory_what(int(n_users), int(n_items), int(n_ratings))}, more than the "
                                f"{format_bytes(free)} this machine has free; {self._too_big_advice()}.")

    def check_is_fitted(self) -> None:
        """Raise `NotFittedError` unless the model is fitted (or loaded from a bundle)."""
        if not hasattr(self, "users_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted yet; call fit(train) first.")

    # the name models use inside models/ (other layers call check_is_fitted)
    _check_fitted = check_is_fitted

    def _require(self, capability: str, what: str) -> None:
        if not getattr(self.capabilities, capability):
            raise CapabilityError(f"Model {self.name!r} cannot {what}.")

    @property
    def n_items_(self) -> int:
        self._check_fitted()
        return len(self.items_)

    # -- queries ----------------------------------------------------------------------
    def user_index(self, user_ids) -> np.ndarray:
        self._check_fitted()
        return self.users_.lookup(user_ids)

    def item_index(self, item_ids) -> np.ndarray:
        self._check_fitted()
        return self.items_.lookup(item_ids)

    def score(self, user_ids) -> np.ndarray:
        """Scores of every movie (in item index order) for raw user IDs, shape (n, n_items)."""
        return self.score_indices(self.user_index(np.atleast_1d(np.asarray(user_ids))))

    # -- the index-space API (what evaluation, retrieval, answers and serving call) ---
    def score_indices(self, user_idx: np.ndarray) -> np.ndarray:
        """Scores of every movie for user indices: float32, shape (len(user_idx), n_items),
        higher is better; movies the model cannot rank score lowest (finite or -inf).

        Args:
            user_idx: user indices of `users_`, shape (n,).
        """
        self.check_is_fitted()
        return self._score(np.asarray(user_idx, dtype=np.int64))

    def predict_indices(self, user_idx: np.ndarray, item_idx: np.ndarray) -> np.ndarray:
        """Predicted ratings for index pairs, shape (n,). Rating models only.

        Args:
            user_idx: user indices, shape (n,).
            item_idx: item indices, shape (n,).

        Raises:
            CapabilityError: when the model does not predict ratings.
        """
        self._require("predicts_ratings", "predict ratings (it ranks movies)")
        self.check_is_fitted()
        return self._predict(np.asarray(user_idx, dtype=np.int64), np.asarray(item_idx, dtype=np.int64))

    def item_similarities(self, item_idx: np.ndarray, among: np.ndarray | None = None) -> np.ndarray:
        """How alike each given movie is to every movie, by the model's own measure (the
        scores `similar_items` ranks by); -inf or a very low value where the model cannot tell.

        Args:
            item_idx: item indices of the movies asked about, shape (n,).
            among: item indices of the movies to compare them with, shape (m,); None:
                every movie. (Explaining a list needs only the person's own movies: much
                less work than every movie for a large catalog.)

        Returns:
            shape (n, n_items), or (n, m) with `among`.

        Raises:
            CapabilityError: when the model does not declare similar_items.
        """
        self._require("similar_items", "find similar movies")
        self.check_is_fitted()
        q = np.asarray(item_idx, dtype=np.int64)
        if among is None:
            return self._item_similarities(q)
        return self._item_similarities_among(q, np.asarray(among, dtype=np.int64))

    def item_vectors(self) -> np.ndarray | None:
        """The movie vectors `similar_items` compares by cosine, shape (n_items, d); None
        when the model's similarity is not a cosine of vectors (e.g. EASE's weights) or
        it declares no similar_items."""
        self.check_is_fitted()
        if not self.capabilities.similar_items:
            return None
        try:
            return np.asarray(self._similarity_vectors(), dtype=np.float32)
        except CapabilityError:
            return None

    def candidate_mask(self, candidates) -> np.ndarray | None:
        """Boolean mask over movie indices of raw candidate movie IDs, shape (n_items,);
        None for None (every movie allowed).

        Raises:
            UnknownItemError: for a movie ID the model has never seen.
        """
        if candidates is None:
            return None
        self.check_is_fitted()
        mask = np.zeros(len(self.items_), dtype=bool)
        mask[self.item_index(np.atleast_1d(np.asarray(candidates)))] = True
        return mask

    def rank_indices(
        self,
        user_idx: np.ndarray,
        k: int,
        exclude: sp.csr_matrix | None = None,
        candidates: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k item indices and scores for user indices (see `movierec.ranking.rank_top_k`).

        Args:
            user_idx: user indices, shape (n,).
            k: list length.
            exclude: users x items matrix whose non-zeros are removed from the candidates.
            candidates: boolean mask over items (shape (n_items,)) of allowed items.

        Returns:
            (indices, scores), each shape (n, min(k, n_items)); slots beyond a user's
            number of allowed items hold index -1 and score -inf.
        """
        self._check_fitted()
        user_idx = np.asarray(user_idx, dtype=np.int64)
        return rank_top_k(self._score, user_idx, len(self.items_), k, exclude, candidates)

    def recommend(
        self,
        user_ids,
        k: int = 10,
        exclude_seen: bool = True,
        candidates=None,
    ) -> Recommendations:
        """Top-k movies for each raw user ID, scoring every movie.

        Each user's list holds min(k, movies allowed for that user) entries; a batch
        answers exactly what single calls would.

        Args:
            user_ids: raw user IDs, scalar or shape (n,).
            k: how many movies per user (>= 1).
            exclude_seen: leave out movies the user interacted with in training.
            candidates: optional raw movie IDs to choose from.

        Raises:
            UnknownUserError: for a user ID the model has never seen.
            UnknownItemError: for a candidate movie ID the model has never seen.
        """
        k = check_k(k)
        self._check_fitted()
        user_ids = np.atleast_1d(np.asarray(user_ids))
        uidx = self.user_index(user_ids)
        idx, val = self.rank_indices(uidx, k, self.seen_ if exclude_seen else None, self.candidate_mask(candidates))
        return to_recommendations(user_ids, idx, val, self.items_.raw_ids)

    def predict(self, user_ids, item_ids) -> np.ndarray:
        """Predicted ratings for pairs of raw IDs, shape (n,). Rating models only."""
        self._require("predicts_ratings", "predict ratings (it ranks movies)")
        self._check_fitted()
        u = self.users_.lookup(np.atleast_1d(np.asarray(user_ids)))
        i = self.items_.lookup(np.atleast_1d(np.asarray(item_ids)))
        if len(u) != len(i):
            raise ConfigError("user_ids and item_ids must have the same length.")
        return self.predict_indices(u, i)

    def _predict(self, user_idx: np.ndarray, item_idx: np.ndarray) -> np.ndarray:
        """Ratings for index pairs; models that declare predicts_ratings override it."""
        raise CapabilityError(f"Model {self.name!r} cannot predict ratings (it ranks movies).")

    # -- embeddings and similar movies ------------------------------------------------
    def embeddings(self) -> Embeddings:
        """User and movie vectors whose dot product ranks movies as `recommend` does.

        Raises:
            CapabilityError: when the model does not declare embeddings.
        """
        self._require("embeddings", "give embeddings (its scores are not a dot product)")
        self._check_fitted()
        users, items = self._embeddings()
        return Embeddings(np.ascontiguousarray(users, dtype=np.float32), np.ascontiguousarray(items, dtype=np.float32))

    def _embeddings(self) -> tuple[np.ndarray, np.ndarray]:
        """(user vectors (n_users, d), item vectors (n_items, d)); embedding models override it."""
        raise CapabilityError(f"Model {self.name!r} cannot give embeddings.")

    def similar_items(self, item_ids, k: int = 10) -> Recommendations:
        """The k movies most similar to each raw movie ID (the movie itself left out).

        Returns Recommendations whose `user_ids` hold the query movie IDs.
        """
        k = check_k(k)
        self._require("similar_items", "find similar movies")
        self._check_fitted()
        item_ids = np.atleast_1d(np.asarray(item_ids))
        qidx = self.item_index(item_ids)
        self_mask = sp.csr_matrix((np.ones(len(qidx)), (np.arange(len(qidx)), qidx)), shape=(len(qidx), len(self.items_)))
        idx, val = rank_top_k(lambda rows: self._item_similarities(qidx[rows]), np.arange(len(qidx)),
                              len(self.items_), k, exclude=self_mask)
        return to_recommendations(item_ids, idx, val, self.items_.raw_ids)

    def _item_similarities(self, item_idx: np.ndarray) -> np.ndarray:
        """Similarity of each given movie to every movie, shape (len(item_idx), n_items).

        Default: cosine similarity of `_similarity_vectors()`.
        """
        normed = self._unit_similarity_vectors()
        return normed[item_idx] @ normed.T

    def _item_similarities_among(self, item_idx: np.ndarray, among: np.ndarray) -> np.ndarray:
        """`_item_similarities` at the columns `among` only, shape (len(item_idx), len(among)).
        Default: the cosine of the vectors, or every column then the slice; models override
        it where they can compute fewer columns."""
        if type(self)._item_similarities is Recommender._item_similarities:
            normed = self._unit_similarity_vectors()
            return normed[item_idx] @ normed[among].T
        return self._item_similarities(item_idx)[:, among]

    def _unit_similarity_vectors(self) -> np.ndarray:
        """`_similarity_vectors()` scaled to unit length, float32 (n_items, d); kept while
        the model's vectors are the same array (a refit or a load makes new ones)."""
        vectors = self._similarity_vectors()
        kept = self.__dict__.get("_unit_vectors_cache")
        if kept is None or kept[0] is not vectors:
            array = np.asarray(vectors, dtype=np.float32)
            kept = (vectors, array / np.maximum(np.linalg.norm(array, axis=1, keepdims=True), 1e-12))
            self.__dict__["_unit_vectors_cache"] = kept
        return kept[1]

    def _similarity_vectors(self) -> np.ndarray:
        """Movie vectors compared by cosine in `similar_items`, shape (n_items, d)."""
        raise CapabilityError(f"Model {self.name!r} cannot find similar movies.")

    # -- cold start -------------------------------------------------------------------
    #: where a movie counts as liked on a rating scale, as a share of the way from its
    #: bottom to its top: 3.5 stars on 1-5 (3.3125 on 0.5-5, so 3.5 stars is liked, 3 not)
    LIKED_SHARE: ClassVar[float] = 0.625

    def liked_threshold(self) -> float | None:
        """The default "liked" cut on the model's rating scale (`rating_scale_`): a rating
        at or above it is liked. ``low + 0.625 * (high - low)``: 3.5 on a 1-5 scale,
        3.3125 on 0.5-5; None for data without a rating scale (every movie given is liked).
        """
        self._check_fitted()
        if not self.rating_scale_:
            return None
        low, high = (float(v) for v in self.rating_scale_)
        return low + self.LIKED_SHARE * (high - low)

    def resolve_liked_threshold(self, liked_threshold: Any = None) -> float | None:
        """The liked threshold to use: the model's default (`liked_threshold()`) for None,
        else the given number, checked.

        Raises:
            ConfigError: not a finite number, or off the model's rating scale.
        """
        if liked_threshold is None:
            return self.liked_threshold()
        try:
            value = float(liked_threshold)
        except (TypeError, ValueError):
            value = float("nan")
        if isinstance(liked_threshold, bool) or not np.isfinite(value):
            raise ConfigError(f"The liked threshold must be a finite number of stars, got {liked_threshold!r}.")
        if self.rating_scale_:
            low, high = self.rating_scale_
            if not low <= value <= high:
                raise ConfigError(f"The liked threshold must lie on the model's rating scale [{low:g}, {high:g}], "
                                  f"got {value:g}.")
        return value

    def check_ratings(self, item_ids, ratings) -> None:
        """Refuse ratings off the model's rating scale, naming the first such movie.

        Args:
            item_ids: raw movie IDs, shape (m,) (only named in the sentence).
            ratings: their ratings, shape (m,).

        Raises:
            ConfigError: "Ratings must lie in [1, 5], the model's scale; got 9 for movie 50."
        """
        if not self.rating_scale_:
            return
        low, high = (float(v) for v in self.rating_scale_)
        for movie, value in zip(np.atleast_1d(np.asarray(item_ids, dtype=object)).tolist(),
                                np.atleast_1d(np.asarray(ratings, dtype=np.float64)).tolist()):
            if not low <= value <= high:
                raise ConfigError(f"Ratings must lie in [{low:g}, {high:g}], the model's scale; got {value:g} "
                                  f"for movie {movie}.")

    def fold_in(self, item_ids, ratings=None, liked_threshold=None) -> NewUser:
        """A new person from the movies they rated (or liked), without retraining.

        A movie is liked when no ratings are given or its rating is at least the liked
        threshold. Models that declare `capabilities.dislikes` learn from every movie and
        rank movies like a disliked one lower; the others see only the liked movies, so
        adding a disliked one changes nothing.

        Args:
            item_ids: raw movie IDs, shape (m,), m >= 1, no repeats.
            ratings: their ratings on the data's scale, shape (m,); None when only the
                movies the person liked are known (treated as positive feedback).
            liked_threshold: a rating at or above it is liked; None: the model's default
                (`liked_threshold()`, 3.5 on a 1-5 scale).

        Returns:
            NewUser over every movie given, with `liked` marking the liked ones.

        Raises:
            CapabilityError: when the model cannot fold in a new person.
            UnknownItemError: for a movie ID the model has never seen.
            NoLikedMoviesError: when no movie given is liked and the model does not
                declare dislikes.
            ConfigError: for an empty list, repeated movies, mismatched ratings or a
                liked_threshold that is not a finite number on the rating scale.
        """
        self._require("fold_in", "fold in a new person without retraining")
        self._check_fitted()
        threshold = self.resolve_liked_threshold(liked_threshold)
        item_ids = np.atleast_1d(np.asarray(item_ids))
        if item_ids.ndim != 1 or len(item_ids) == 0:
            raise ConfigError("A new person needs at least one movie.")
        idx = self.item_index(item_ids).astype(np.int64)
        if len(np.unique(idx)) != len(idx):
            raise ConfigError("Each movie may be given only once for a new person.")
        r = None
        if ratings is not None:
            r = np.asarray(ratings, dtype=np.float64).ravel()
            if r.shape != idx.shape:
                raise ConfigError(f"Give one rating per movie: {len(idx)} movies, {len(r)} ratings.")
            if not np.all(np.isfinite(r)):
                raise ConfigError("Ratings must be finite numbers.")
            self.check_ratings(item_ids, r)
        liked = np.ones(len(idx), dtype=bool) if r is None or threshold is None else r >= threshold
        if self.capabilities.dislikes:
            scores, vector = self._fold_in(idx, r, liked)
        else:
            if not liked.any():
                raise NoLikedMoviesError(f"None of the movies given is rated {threshold:g} or more, and "
                                         f"{self._learns_from()}.")
            scores, vector = self._fold_in(idx[liked], None if r is None else r[liked], liked[liked])
        scores = np.asarray(scores, dtype=np.float32).reshape(-1)
        if vector is not None:
            vector = np.asarray(vector, dtype=np.float32).reshape(-1)
        return NewUser(item_idx=idx, ratings=r, scores=scores, vector=vector, liked=liked)

    def _learns_from(self) -> str:
        """The end of `NoLikedMoviesError`'s sentence: what the model folds a person in from."""
        return f"model {self.name!r} learns only from movies a person likes"

    def _fold_in(self, item_idx: np.ndarray, ratings: np.ndarray | None,
                 liked: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(scores of every movie, shape (n_items,), user vector or None) for a new person.

        Args:
            item_idx: item indices of the movies the model sees, in the order given,
                shape (m,): every movie given when the model declares dislikes, else
                only the liked ones.
            ratings: their ratings, float64, shape (m,), or None (liked movies only).
            liked: bool mask aligned with `item_idx`, shape (m,) (all True for models
                without dislikes).
        """
        raise CapabilityError(f"Model {self.name!r} cannot fold in a new person without retraining.")

    def recommend_new(self, item_ids, ratings=None, k: int = 10, exclude_given: bool = True,
                      candidates=None, liked_threshold=None) -> Recommendations:
        """Top-k movies for a new person (see `fold_in`); `user_ids` holds -1.

        `exclude_given` leaves out every movie given, liked or not.
        """
        k = check_k(k)
        person = self.fold_in(item_ids, ratings, liked_threshold=liked_threshold)
        exclude = None
        if exclude_given:
            exclude = sp.csr_matrix((np.ones(len(person.item_idx)), (np.zeros(len(person.item_idx), dtype=np.int64),
                                                                      person.item_idx)), shape=(1, len(self.items_)))
        idx, val = rank_top_k(lambda rows: person.scores[None, :], np.zeros(1, dtype=np.int64), len(self.items_), k,
                              exclude, self.candidate_mask(candidates))
        return to_recommendations(np.array([-1]), idx, val, self.items_.raw_ids)

    # -- state (persistence lives in movierec.artifacts) ------------------------------
    @abstractmethod
    def _state(self) -> dict[str, np.ndarray]:
        """Learned arrays to save (names -> numeric arrays)."""

    @abstractmethod
    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore the arrays written by `_state`."""

    def _meta(self) -> dict[str, Any]:
        """Learned JSON-serialisable values beside the arrays (e.g. a training history)."""
        return {}

    def _set_meta(self, meta: dict[str, Any]) -> None:
        """Restore the values written by `_meta`."""

    def state_dict(self) -> ModelState:
        """The fitted model's learned state (ID maps excluded: see `load_state_dict`)."""
        self._check_fitted()
        seen = self.seen_.tocsr()
        arrays = {f"model.{k}": np.ascontiguousarray(v) for k, v in self._state().items()}
        arrays["seen.indptr"] = np.asarray(seen.indptr, dtype=np.int64)
        arrays["seen.indices"] = np.asarray(seen.indices, dtype=np.int64)
        if getattr(self, "seen_ratings_", None) is not None:
            arrays["seen.ratings"] = np.asarray(self.seen_ratings_, dtype=np.float32)
        meta = {"model": self._meta(), "rating_scale": list(self.rating_scale_) if self.rating_scale_ else None}
        return ModelState(arrays=arrays, meta=meta)

    def load_state_dict(self, state: ModelState, users: IdMap, items: IdMap) -> "Recommender":
        """Restore a fitted model from `state_dict()` output and its ID maps; returns self."""
        n_users, n_items = len(users), len(items)
        indptr, indices = state.arrays["seen.indptr"], state.arrays["seen.indices"]
        if len(indptr) != n_users + 1 or (len(indices) and indices.max() >= n_items):
            raise ConfigError("The saved state does not match its user and movie ID maps.")
        self.users_ = users
        self.items_ = items
        self.seen_ = sp.csr_matrix((np.ones(len(indices), dtype=np.float32), indices, indptr), shape=(n_users, n_items))
        ratings = state.arrays.get("seen.ratings")  # absent in bundles written before it was kept
        if ratings is not None and len(ratings) != len(indices):
            raise ConfigError("The saved state's training ratings do not match its seen movies.")
        self.seen_ratings_ = None if ratings is None else np.asarray(ratings, dtype=np.float32)
        scale = state.meta.get("rating_scale")
        self.rating_scale_ = tuple(scale) if scale else None
        self._set_meta(state.meta.get("model") or {})
        self._set_state({k[len("model."):]: v for k, v in state.arrays.items() if k.startswith("model.")})
        return self


__all__ = [
    "Recommender",
    "Recommendations",
    "Capabilities",
    "Embeddings",
    "NewUser",
    "ModelState",
    "check_k",
    "top_k",
    "NotFittedError",
    "UnknownUserError",
    "UnknownItemError",
    "CapabilityError",
    "NoLikedMoviesError",
]
