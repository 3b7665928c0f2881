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
        if self.uses_model:
            out = np.empty(len(rec_idx), dtype=np.int64)
            for start in range(0, len(rec_idx), CHUNK):
                rows = rec_idx[start:start + CHUNK]
                # the similarity `similar_items` ranks by, only at the anchors' columns
                sims = np.asarray(self.model.item_similarities(rows), dtype=np.float64)[:, anchor_idx]
                out[start:start + CHUNK] = self._argmax(sims, anchor_idx)
            return out
        vectors = self.unit_vectors if self.unit_vectors is not None else self._genres
        if vectors.shape[1] == 0:
            return np.full(len(rec_idx), -1, dtype=np.int64)
        return self._argmax(vectors[rec_idx] @ vectors[anchor_idx].T, anchor_idx)

    def _argmax(self, sims: np.ndarray, anchor_idx: np.ndarray) -> np.ndarray:
        """Per row of `sims` (n_rec, n_anchor), the best anchor's position; ties (common with
        genres) go to the more-rated anchor; -1 where no similarity is positive."""
        sims = np.where(np.isfinite(sims), sims, -np.inf)
        tie = np.log1p(self.counts[anchor_idx].astype(np.float64)) * 1e-9
        best = np.argmax(sims + tie[None, :], axis=1)
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
        best = self.best_anchor(rec_idx, anchor_idx)
        labels: dict[int, str] = {}
        reasons: list[str | None] = []
        for j in best.tolist():
            if j < 0:
                reasons.append(None)
                continue
            title = labels.get(j)
            if title is None:
                title = labels[j] = self.label(int(anchor_idx[j]))
            if ratings is not None:
                reasons.append(f"Because you rated {title} {_stars(float(ratings[j]))}")
            else:
                reasons.append(f"Because you {verb} {title}")
        return reasons

    def picked(self, rec_idx: np.ndarray, anchor_idx: np.ndarray) -> list[str | None]:
        """Reasons for a list from picked taste groups: "Because you picked movies like X"."""
        best = self.best_anchor(np.asarray(rec_idx, dtype=np.int64), np.asarray(anchor_idx, dtype=np.int64))
        return [f"Because you picked movies like {self.label(int(anchor_idx[j]))}" if j >= 0
                else None for j in best.tolist()]

    def label(self, idx: int) -> str:
        """A movie as a sentence names it: "The Godfather (1972)", or "movie 127" when the
        catalog has no title for it."""
        if str(self.catalog.titles[idx] or "").strip():
            return self.catalog.display_label(idx)
        return f"movie {self.model.items_.raw_ids[idx]}"


__all__ = ["Reasoner", "POPULAR"]
