"""`ModelIndex`: a fitted embedding model answering through a `VectorIndex`, in raw IDs.

Any model that declares `embeddings` works (mf, mf-rank, als, bpr, two-tower ...): its
`embeddings().users @ embeddings().items.T` ranks movies as its `recommend` does, so the
index over the movie vectors answers what `recommend` answers, without scoring every
movie. New people are encoded by the model's own `fold_in(...).vector`.

In a bundle the index is two extra files (`Bundle.extras`), verified like every other
file: `index.faiss` (the FAISS bytes) and `index.json` (kind, parameters, dimension,
number of movies, the movie vectors' checksum, build time, tuned recall).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from movierec.artifacts.bundle import Bundle
from movierec.errors import BundleError, ConfigError
from movierec.models.base import Recommender, check_k
from movierec.ranking import Recommendations, to_recommendations
from movierec.retrieval.index import KINDS, VectorIndex, header_json, single_thread

#: bundle file holding the FAISS bytes
INDEX_FILE = "index.faiss"
#: bundle file holding the index header (JSON)
HEADER_FILE = "index.json"


class ModelIndex:
    """A fitted model that declares embeddings, with an index over its movie vectors.

    Attributes:
        model: the fitted model.
        index: the `VectorIndex` over `model.embeddings().items`.
        user_vectors: the model's user vectors, float32, shape (n_users, dim).
    """

    def __init__(self, model: Recommender, index: VectorIndex):
        """Tie `model` to an index built on its movie vectors.

        Raises:
            CapabilityError: when the model does not declare embeddings.
            NotFittedError: when the model is not fitted.
            ConfigError: when the index was built on other movie vectors.
        """
        emb = model.embeddings()
        if index.items.shape != emb.items.shape:
            raise ConfigError(f"The index covers {index.n_items} movies of dimension {index.dim}; the model has "
                              f"{emb.items.shape[0]} of dimension {emb.items.shape[1]}.")
        if index.items is not emb.items and not np.array_equal(index.items, emb.items):
            raise ConfigError("The index was built on other movie vectors than the model's; rebuild it.")
        self.model = model
        self.index = index
        self.user_vectors = emb.users

    @classmethod
    def build(cls, model: Recommender, kind: str = "auto", **options: Any) -> "ModelIndex":
        """Index `model`'s movie vectors (see `VectorIndex.build` for `kind` and `options`);
        the model's users (their vectors, their seen movies excluded) are the sample
        queries that tune nprobe / efSearch.

        Raises:
            CapabilityError: when the model does not declare embeddings.
        """
        emb = model.embeddings()
        if "tune_queries" not in options:
            options.update(tune_queries=emb.users, tune_exclude=model.seen_)
        index = VectorIndex.build(emb.items, kind, **options)
        return cls(model, index)

    @property
    def kind(self) -> str:
        """"exact", "ivf" or "hnsw"."""
        return self.index.kind

    def _allowed(self, candidates) -> np.ndarray | None:
        """Boolean mask over movies of the raw candidate IDs (None: all), as the model builds it."""
        return self.model.candidate_mask(candidates)

    def recommend(self, user_ids, k: int = 10, exclude_seen: bool = True, candidates=None) -> Recommendations:
        """Top-k movies for known users, as `Recommender.recommend` answers them.

        Args:
            user_ids: raw user IDs, scalar or shape (n,).
            k: how many movies per user (>= 1).
            exclude_seen: leave out movies the user interacted with in training.
            candidates: optional raw movie IDs to choose from.

        Returns:
            Recommendations in raw IDs; scores are the embedding dot products (equal to
            the model's scores where its score is that dot product, as for mf-rank, als
            and bpr; a monotone per-user transform of them otherwise, e.g. mf).

        Raises:
            UnknownUserError: for a user ID the model has never seen.
            UnknownItemError: for a candidate movie ID the model has never seen.
        """
        k = check_k(k)
        user_ids = np.atleast_1d(np.asarray(user_ids))
        uidx = self.model.user_index(user_ids)
        exclude = None
        if exclude_seen:
            seen = self.model.seen_
            # one user: a slice of the CSR (scipy's row indexing costs more than the search)
            exclude = [seen.indices[seen.indptr[uidx[0]]:seen.indptr[uidx[0] + 1]]] if len(uidx) == 1 else seen[uidx]
        idx, val = self.index.search(self.user_vectors[uidx], k, exclude=exclude, allowed=self._allowed(candidates))
        return to_recommendations(user_ids, idx, val, self.model.items_.raw_ids)

    def recommend_new(self, item_ids, ratings=None, k: int = 10, exclude_given: bool = True,
                      candidates=None, liked_threshold=None) -> Recommendations:
        """Top-k movies for a new person, encoded by the model's `fold_in(...).vector`.

        Args:
            item_ids: raw movie IDs the person rated or liked, shape (m,).
            ratings: their ratings, shape (m,), or None for liked movies.
            k: how many movies (>= 1).
            exclude_given: leave out every movie given (liked or not).
            candidates: optional raw movie IDs to choose from.
            liked_threshold: a rating at or above it is liked; None: the model's default
                (see `Recommender.fold_in`).

        Returns:
            Recommendations with one row whose user ID is -1.

        Raises:
            CapabilityError: when the model cannot fold in a new person.
            NoLikedMoviesError, ConfigError, UnknownItemError: the cases of `fold_in`.
        """
        k = check_k(k)
        with single_thread():
            person = self.model.fold_in(item_ids, ratings, liked_threshold=liked_threshold)
        if person.vector is None:
            from movierec.errors import CapabilityError

            raise CapabilityError(f"Model {self.model.name!r} gives no vector for a new person, so an index cannot "
                                  f"serve one.")
        exclude = [person.item_idx] if exclude_given else None
        idx, val = self.index.search(person.vector[None, :], k, exclude=exclude, allowed=self._allowed(candidates))
        return to_recommendations(np.array([-1]), idx, val, self.model.items_.raw_ids)

    def similar(self, movie_ids, k: int = 10) -> Recommendations:
        """The k movies whose vectors have the largest inner product with each movie's vector
        (the movie itself left out); `user_ids` holds the query movie IDs.

        This is the index's own neighbourhood (inner products of `embeddings().items`),
        cosine similarity for models whose movie vectors have unit length; a model's
        `similar_items` may use other vectors.
        """
        k = check_k(k)
        movie_ids = np.atleast_1d(np.asarray(movie_ids))
        qidx = self.model.item_index(movie_ids)
        idx, val = self.index.search(self.index.items[qidx], k, exclude=[np.array([i]) for i in qidx])
        return to_recommendations(movie_ids, idx, val, self.model.items_.raw_ids)


# -- bundles ---------------------------------------------------------------------------
def store_index(bundle: Bundle, index: ModelIndex | VectorIndex) -> None:
    """Put `index` into `bundle.extras` (written by `save_bundle`, checked by `load_bundle`).

    Raises:
        ConfigError: when the index was not built on the bundle's model's movie vectors.
    """
    vindex = index.index if isinstance(index, ModelIndex) else index
    if not isinstance(index, ModelIndex):
        ModelIndex(bundle.model, vindex)  # checks the vectors
    elif index.model is not bundle.model:
        ModelIndex(bundle.model, vindex)
    data, header = vindex.to_bytes()
    bundle.extras[INDEX_FILE] = data
    bundle.extras[HEADER_FILE] = header_json(header)


def stored_index(bundle: Bundle) -> ModelIndex | None:
    """The index saved in `bundle`, tied to its model; None when it holds none.

    Raises:
        BundleError: when the index files are incomplete, unreadable, or were built for
            other movies, dimensions or vectors than the bundle's model.
        CapabilityError: when the model does not declare embeddings.
    """
    where = f"Bundle {bundle.path}" if bundle.path is not None else "The bundle"
    has_data, has_header = INDEX_FILE in bundle.extras, HEADER_FILE in bundle.extras
    if not has_data and not has_header:
        return None
    if has_data != has_header:
        raise BundleError(f"{where} holds only one of {INDEX_FILE} and {HEADER_FILE}; save the index again.")
    try:
        header = json.loads(bundle.extras[HEADER_FILE].decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise BundleError(f"{where} has a corrupt {HEADER_FILE} (not valid JSON).") from None
    items = bundle.model.embeddings().items
    try:
        vindex = VectorIndex.from_bytes(bundle.extras[INDEX_FILE], header, items)
    except ConfigError as exc:
        raise BundleError(f"{where} holds an index that does not fit its model: {exc}") from None
    return ModelIndex(bundle.model, vindex)


def index_for_bundle(bundle: Bundle, kind: str = "auto", **options: Any) -> tuple[ModelIndex, bool]:
    """The bundle's stored index when it is of `kind` (any kind for "auto"), else one built
    in memory (see `ModelIndex.build`).

    Returns:
        (the index, True when it was built here rather than loaded).

    Raises:
        ConfigError: for an unknown kind.
        CapabilityError: when the model does not declare embeddings.
        BundleError: when the stored index does not fit the model.
    """
    if kind not in KINDS:
        raise ConfigError(f"Unknown index kind {kind!r}; choose one of {', '.join(KINDS)}.")
    stored = stored_index(bundle)
    if stored is not None and kind in ("auto", stored.kind):
        return stored, False
    return ModelIndex.build(bundle.model, kind, **options), True


__all__ = ["ModelIndex", "store_index", "stored_index", "index_for_bundle", "INDEX_FILE", "HEADER_FILE"]
