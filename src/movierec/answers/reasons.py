"""A short reason per recommended movie: the movie the person gave that is most like it.

"Because you rated *Fargo* 5 stars", "Because you liked *Fargo*", or, for a list that is
not personal, "Popular with everyone". Only movies the person liked are cited: a movie rated
below the model's liked threshold never explains a recommendation. Likeness comes from the model itself where it
can say (the scores its `similar_items` ranks by, read only at the person's movies),
else from its movie embeddings (cosine), else from genre overlap; ties go to the
more-rated movie.
"""

from __future__ import annotations

import numpy as np

from movierec.data.dataset import Catalog
from movierec.models.base import Recommender

#: recommended movies whose similarities are computed at once (bounds memory for large catalogs)
CHUNK = 256
POPULAR = "Popular with everyone"


def _stars(rating: float) -> str:
    """"5 stars", "4.5 stars", "1 star"."""
    value = f"{rating:g}"
    return f"{value} star" if value == "1" else f"{value} stars"


class Reasoner:
    """Finds, for each recommended movie, the most similar of a person's movies.

    Args:
        model: the served model (its `similar_items`, when declared, measures likeness).
        catalog: titles and genres in item index order.
        counts: ratings per item index, shape (n_items,) (breaks ties).
        unit_vectors: L2-normalised movie vectors, shape (n_items, d), or None.
    """

    def __init__(self, model: Recommender, catalog: Catalog, counts: np.ndarray, unit_vectors: np.ndarray | None):
        self.model = model
        self.catalog = catalog
        self.counts = counts
        self.unit_vectors = unit_vectors
        self.uses_model = bool(model.capabilities.similar_items)
        genres = np.asarray(catalog.genre_matrix, dtype=np.float32)
        norms = np.linalg.norm(genres, axis=1, keepdims=True)
        self._genres = genres / np.maximum(norms, 1e-12)
        # each movie's place by rating count, most rated first (ties: lower index): breaks ties
        self._rank = np.empty(len(counts), dtype=np.int64)
        self._rank[np.lexsort((np.arange(len(counts)), -np.asarray(counts)))] = np.arange(len(counts))
        self._labels: list[str | None] = [None] * len(counts)  # each movie's sentence label, made once
        self._star_words: dict[float, str] = {}  # "5 stars" per rating value (a scale has a handful)

    def best_anchor(self, rec_idx: np.ndarray, anchor_idx: np.ndarray) -> np.ndarray:
        """For each recommended item index, the position in `anchor_idx` of the most similar
        anchor (or -1 when no anchor is similar at all), shape (len(rec_idx),).

        Similarity is the model's own (the scores its `similar_items` ranks by) when it
        declares similar_items, else the cosine of its movie embeddings, else genre overlap.
        """
        rec_idx = np.asarray(rec_idx, dtype=np.int64)
        anchor_idx = np.asarray(anchor_idx, dtype=np.int64)
        if len(rec_idx) == 0 or len(anchor_idx) == 0:
            return np.full(len(rec_idx), -1, dtype=np.int64)
        # anchors most rated first: argmax takes the first of equal similarities (common
        # with genres), so a tie goes to the better-known movie
        order = np.argsort(self._rank[anchor_idx], kind="stable")
        anchors = anchor_idx[order]
        if self.uses_model:
            out = np.empty(len(rec_idx), dtype=np.int64)
            for start in range(0, len(rec_idx), CHUNK):
                rows = rec_idx[start:start + CHUNK]
                # the similarity `similar_items` ranks by, only at the anchors' columns
                out[start:start + CHUNK] = self._argmax(self.model.item_similarities(rows, among=anchors))
        else:
            vectors = self.unit_vectors if self.unit_vectors is not None else self._genres
            if vectors.shape[1] == 0:
                return np.full(len(rec_idx), -1, dtype=np.int64)
            out = self._argmax(vectors[rec_idx] @ vectors[anchors].T)
        return np.where(out >= 0, order[np.maximum(out, 0)], -1)

    @staticmethod
    def _argmax(sims: np.ndarray) -> np.ndarray:
        """Per row of `sims` (n_rec, n_anchor), the first best anchor's position; -1 where
        no similarity is positive (NaN counts as not similar)."""
        best = np.argmax(sims, axis=1)
        best[~(sims[np.arange(len(sims)), best] > 0)] = -1
        return best.astype(np.int64)

    def explain(self, rec_idx: np.ndarray, anchor_idx: np.ndarray, ratings: np.ndarray | None = None,
                verb: str = "liked", liked_threshold: float | None = None) -> list[str | None]:
        """One reason per recommended item index, citing only movies the person liked.

        Args:
            rec_idx: recommended item indices, shape (n,).
            anchor_idx: the person's item indices, shape (m,).
            ratings: their stars, shape (m,), or None (every anchor is a liked movie).
                With stars, only the movies rated at least `liked_threshold` explain a
                recommendation; when none is, no reason is given (a movie the person
                disliked is never cited).
            verb: "liked" ("Because you liked X") or "watched" for anchors without stars.
            liked_threshold: the model's liked threshold on its scale (None: every rated
                movie counts as liked, as for data without a rating scale).
        """
        rec_idx = np.asarray(rec_idx, dtype=np.int64)
        anchor_idx = np.asarray(anchor_idx, dtype=np.int64)
        if ratings is not None:
            ratings = np.asarray(ratings, dtype=np.float64)
            if liked_threshold is not None:
                keep = ratings >= float(liked_threshold)
                anchor_idx, ratings = anchor_idx[keep], ratings[keep]
        if len(anchor_idx) == 0:
            return [None] * len(rec_idx)
        best = self.best_anchor(rec_idx, anchor_idx).tolist()
        cited = anchor_idx.tolist()
        stars = ratings.tolist() if ratings is not None else None
        reasons: list[str | None] = []
        for j in best:
            if j < 0:
                reasons.append(None)
            elif stars is not None:
                reasons.append(f"Because you rated {self.label(cited[j])} {self._stars(stars[j])}")
            else:
                reasons.append(f"Because you {verb} {self.label(cited[j])}")
        return reasons

    def picked(self, rec_idx: np.ndarray, anchor_idx: np.ndarray) -> list[str | None]:
        """Reasons for a list from picked taste groups: "Because you picked movies like X"."""
        best = self.best_anchor(np.asarray(rec_idx, dtype=np.int64), np.asarray(anchor_idx, dtype=np.int64))
        return [f"Because you picked movies like {self.label(int(anchor_idx[j]))}" if j >= 0
                else None for j in best.tolist()]

    def _stars(self, rating: float) -> str:
        found = self._star_words.get(rating)
        if found is None:
            found = _stars(rating)
            if len(self._star_words) < 64:  # bounded: values off the scale's steps are formatted each time
                self._star_words[rating] = found
        return found

    def label(self, idx: int) -> str:
        """A movie as a sentence names it: "The Godfather (1972)", or "movie 127" when the
        catalog has no title for it (made once per movie)."""
        found = self._labels[idx]
        if found is None:
            if str(self.catalog.titles[idx] or "").strip():
                found = self.catalog.display_label(idx)
            else:
                found = f"movie {self.model.items_.raw_ids[idx]}"
            self._labels[idx] = found
        return found


__all__ = ["Reasoner", "POPULAR"]
