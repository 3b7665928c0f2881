"""Re-ranking for variety: a second pass that reorders a model's longer candidate list.

Two re-rankers, each with a `weight` in [0, 1] that trades the model's relevance for
variety (weight 0 gives back the model's own order exactly):

* `MMR`, maximal marginal relevance (Carbonell & Goldstein, 1998): pick, one at a time, the
  candidate maximising ``(1 - w) * relevance - w * max similarity to the movies already
  picked``; similarity is the cosine of the model's unit movie vectors when it has them,
  else of the movies' genre sets (multi-hot cosine).
* `Calibrated`, calibrated recommendations (Steck, RecSys 2018): pick, one at a time, the
  candidate maximising ``(1 - w) * relevance - w * KL(p || q~)``, where p is the genre
  distribution of the person's history, q the genre distribution of the list picked so far
  plus the candidate, and ``q~ = (1 - alpha) q + alpha p`` with the paper's alpha = 0.01.

Relevance is the model's score min-max normalised over the candidate list (model scores
have arbitrary scales), so the same weight means the same trade-off for every model.
Both greedy passes are prefix-consistent: the first k of a list of K > k are the list of k.

Genre distributions (`genre_distribution`): each movie spreads one unit of mass evenly over
its genres; a set of movies' distribution is the normalised sum (movies without a genre add
nothing). `movierec.evaluation.metrics.calibration_kl` measures lists with the same formula.

Everything works in item indices (the model's ID space) and NumPy; `parse_rerank` turns the
text form ("mmr:0.3", "calibrated:0.5") that the CLI, the API and experiment files take into
a re-ranker, and `str(reranker)` gives that text back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Protocol, Union

import numpy as np

from movierec.errors import ConfigError

#: the longest candidate list a re-ranker takes (the longest list a query may ask for)
MAX_POOL = 1000
#: a re-ranker chooses k movies from the model's top max(POOL_FACTOR * k, MIN_POOL)
POOL_FACTOR = 5
MIN_POOL = 100
#: Steck's smoothing of the list's genre distribution towards the history's
CALIBRATION_ALPHA = 0.01
#: the similarity measures MMR takes
SIMILARITIES = ("auto", "vectors", "genres")
#: the weights `compare`'s trade-off curves sweep by default
CURVE_WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0)


@dataclass(frozen=True)
class RerankInput:
    """What a re-ranker sees: a candidate list, best first, and the person it is for.

    Attributes:
        item_idx: candidate item indices, best first, shape (c,).
        scores: their model scores, shape (c,).
        k: how many the answer keeps.
        history_idx: item indices of the movies the person liked (their training history
            for a known user), shape (h,); empty for similar movies.
        genre_matrix: multi-hot genres of every movie, shape (n_items, n_genres).
        item_vectors: unit-length movie vectors of the model, shape (n_items, d), or None.
    """

    item_idx: np.ndarray
    scores: np.ndarray
    k: int
    history_idx: np.ndarray
    genre_matrix: np.ndarray
    item_vectors: np.ndarray | None


class Reranker(Protocol):
    """A second pass over a longer candidate list (e.g. for variety).

    `pool(k)` says how many candidates it wants to choose `k` from; `rerank` returns
    positions into `RerankInput.item_idx`, at most `k`, in the new order.
    """

    name: str

    def pool(self, k: int) -> int: ...

    def rerank(self, candidates: RerankInput) -> np.ndarray: ...


def _check_weight(name: str, weight: object) -> float:
    if isinstance(weight, bool) or not isinstance(weight, (int, float, np.integer, np.floating)) \
            or not math.isfinite(float(weight)) or not 0.0 <= float(weight) <= 1.0:
        raise ConfigError(f"The {name} re-ranking weight must be a number from 0 to 1, got {weight!r}.")
    return float(weight)


def _weight_text(weight: float) -> str:
    """The shortest text that reads back as exactly `weight` ("0.3", "1", "0")."""
    text = repr(float(weight))
    return text[:-2] if text.endswith(".0") else text


def pool_size(k: int) -> int:
    """Candidates a re-ranker chooses `k` from: max(5k, 100), at most MAX_POOL, at least k."""
    return max(int(k), min(max(POOL_FACTOR * int(k), MIN_POOL), MAX_POOL))


def relevance(scores: np.ndarray) -> np.ndarray:
    """Model scores min-max normalised over one list, shape (c,), in [0, 1] (1 = best);
    all ones when every score is the same; a non-finite score counts as the lowest."""
    s = np.asarray(scores, dtype=np.float64)
    finite = np.isfinite(s)
    if not finite.any():
        return np.ones(len(s))
    low, high = float(s[finite].min()), float(s[finite].max())
    if high <= low:
        return np.where(finite, 1.0, 0.0)
    return np.where(finite, (s - low) / (high - low), 0.0)


def genre_distribution(item_idx: np.ndarray, genre_matrix: np.ndarray) -> np.ndarray | None:
    """The genre distribution of a set of movies, shape (n_genres,), summing to 1: each movie
    spreads one unit over its genres, the sum is normalised. None when none of the movies
    has a genre (or the catalog has none)."""
    genres = np.asarray(genre_matrix, dtype=np.float64)
    idx = np.asarray(item_idx, dtype=np.int64)
    if genres.ndim != 2 or genres.shape[1] == 0 or len(idx) == 0:
        return None
    total = per_movie_genres(genres[idx]).sum(axis=0)
    mass = float(total.sum())
    return total / mass if mass > 0 else None


def per_movie_genres(genre_rows: np.ndarray) -> np.ndarray:
    """Multi-hot genre rows, shape (n, g) -> each row spread evenly over its genres (rows
    without a genre stay zero)."""
    rows = np.asarray(genre_rows, dtype=np.float64)
    counts = rows.sum(axis=1, keepdims=True)
    return np.divide(rows, counts, out=np.zeros_like(rows), where=counts > 0)


def kl_to_history(p: np.ndarray, q: np.ndarray, alpha: float = CALIBRATION_ALPHA) -> np.ndarray:
    """KL(p || q~) with q~ = (1 - alpha) q + alpha p (Steck 2018), over the last axis.

    Args:
        p: the history's genre distribution, shape (g,).
        q: list genre distributions, shape (..., g) (a zero row: a list without genres).

    Returns:
        shape q.shape[:-1]; 0 when q equals p, log(1/alpha) at most.
    """
    support = p > 0
    ps = p[support]
    qs = (1.0 - alpha) * np.asarray(q, dtype=np.float64)[..., support] + alpha * ps
    return (ps * np.log(ps / qs)).sum(axis=-1)


@dataclass(frozen=True)
class MMR:
    """Maximal marginal relevance: each next movie maximises (1 - weight) * relevance -
    weight * (its highest similarity to the movies already picked).

    Args:
        weight: 0 (the model's order) to 1 (only dissimilarity counts).
        similarity: "auto" (the model's unit movie vectors when it has them, else genres),
            "vectors" (refused for a model without vectors) or "genres" (cosine of genre sets).
    """

    weight: float
    similarity: str = "auto"
    name: ClassVar[str] = "mmr"

    def __post_init__(self) -> None:
        object.__setattr__(self, "weight", _check_weight("mmr", self.weight))
        if self.similarity not in SIMILARITIES:
            raise ConfigError(f"Unknown MMR similarity {self.similarity!r}; choose from: {', '.join(SIMILARITIES)}.")

    def __str__(self) -> str:
        tail = "" if self.similarity == "auto" else f":{self.similarity}"
        return f"mmr:{_weight_text(self.weight)}{tail}"

    def pool(self, k: int) -> int:
        """Candidates to choose `k` from (see `pool_size`)."""
        return pool_size(k)

    def vectors(self, candidates: RerankInput) -> np.ndarray:
        """Unit vectors of the candidates that similarity compares, shape (c, d).

        Raises:
            ConfigError: similarity "vectors" for a model without movie vectors.
        """
        idx = np.asarray(candidates.item_idx, dtype=np.int64)
        use_vectors = candidates.item_vectors is not None and self.similarity != "genres"
        if self.similarity == "vectors" and candidates.item_vectors is None:
            raise ConfigError("This model has no movie vectors; re-rank with mmr:W:genres (genre similarity) instead.")
        rows = np.asarray(candidates.item_vectors if use_vectors else candidates.genre_matrix,
                          dtype=np.float64)[idx]
        norms = np.linalg.norm(rows, axis=1, keepdims=True)
        return np.divide(rows, norms, out=np.zeros_like(rows), where=norms > 0)

    def rerank(self, candidates: RerankInput) -> np.ndarray:
        """Positions into `candidates.item_idx`, at most `candidates.k`, in the new order."""
        c = len(candidates.item_idx)
        k = min(int(candidates.k), c)
        if k == 0:
            return np.zeros(0, dtype=np.int64)
        gain = (1.0 - self.weight) * relevance(candidates.scores)
        vectors = self.vectors(candidates)
        closest = np.full(c, -np.inf)  # highest similarity to a picked movie
        taken = np.zeros(c, dtype=bool)
        order = np.empty(k, dtype=np.int64)
        for step in range(k):
            penalty = self.weight * closest if step else 0.0
            objective = np.where(taken, -np.inf, gain - penalty)
            j = int(np.argmax(objective))  # ties: the model's better-ranked candidate
            order[step], taken[j] = j, True
            closest = np.maximum(closest, vectors @ vectors[j])
        return order


@dataclass(frozen=True)
class Calibrated:
    """Calibrated recommendations (Steck, RecSys 2018): each next movie maximises
    (1 - weight) * relevance - weight * KL(p_history || q~_list), over genre distributions
    (see the module docstring); a person without genre history gets the model's order.

    Args:
        weight: 0 (the model's order) to 1 (only calibration counts).
    """

    weight: float
    name: ClassVar[str] = "calibrated"

    def __post_init__(self) -> None:
        object.__setattr__(self, "weight", _check_weight("calibrated", self.weight))

    def __str__(self) -> str:
        return f"calibrated:{_weight_text(self.weight)}"

    def pool(self, k: int) -> int:
        """Candidates to choose `k` from (see `pool_size`)."""
        return pool_size(k)

    def rerank(self, candidates: RerankInput) -> np.ndarray:
        """Positions into `candidates.item_idx`, at most `candidates.k`, in the new order."""
        c = len(candidates.item_idx)
        k = min(int(candidates.k), c)
        p = genre_distribution(candidates.history_idx, candidates.genre_matrix)
        if p is None or k == 0:
            return np.arange(k, dtype=np.int64)
        gain = (1.0 - self.weight) * relevance(candidates.scores)
        spread = per_movie_genres(np.asarray(candidates.genre_matrix)[np.asarray(candidates.item_idx, np.int64)])
        picked = np.zeros(spread.shape[1])
        taken = np.zeros(c, dtype=bool)
        order = np.empty(k, dtype=np.int64)
        for step in range(k):
            total = picked[None, :] + spread  # the list's genre mass with each candidate added
            mass = total.sum(axis=1, keepdims=True)
            q = np.divide(total, mass, out=np.zeros_like(total), where=mass > 0)
            objective = np.where(taken, -np.inf, gain - self.weight * kl_to_history(p, q))
            j = int(np.argmax(objective))  # ties: the model's better-ranked candidate
            order[step], taken[j] = j, True
            picked += spread[j]
        return order


Rerank = Union[MMR, Calibrated]
#: re-ranker name -> class
RERANKERS = {"mmr": MMR, "calibrated": Calibrated}


def parse_rerank(text: str | None) -> Rerank | None:
    """A re-ranker from its text form: "mmr:0.3", "mmr:0.3:genres", "calibrated:0.5"; None
    (or an empty text) for none.

    Raises:
        ConfigError: an unknown re-ranker, a missing weight or one outside [0, 1], in one sentence.
    """
    if text is None or not str(text).strip():
        return None
    parts = [part.strip() for part in str(text).strip().split(":")]
    name = parts[0].lower()
    known = ", ".join(f"{n}:WEIGHT" for n in RERANKERS)
    if name not in RERANKERS:
        raise ConfigError(f"Unknown re-ranker {parts[0][:40]!r}; choose from {known}, with WEIGHT from 0 to 1 "
                          f"(e.g. mmr:0.3).")
    if len(parts) < 2 or not parts[1] or len(parts) > (3 if name == "mmr" else 2):
        raise ConfigError(f"Give the {name} re-ranker as {name}:WEIGHT with WEIGHT from 0 to 1 "
                          f"(e.g. {name}:0.3), got {str(text)[:40]!r}.")
    try:
        weight = float(parts[1])
    except ValueError:
        raise ConfigError(f"The {name} re-ranking weight must be a number from 0 to 1, "
                          f"got {parts[1][:40]!r}.") from None
    if not math.isfinite(weight):
        raise ConfigError(f"The {name} re-ranking weight must be a number from 0 to 1, got {parts[1][:40]!r}.")
    if name == "mmr":
        return MMR(weight, parts[2].lower() if len(parts) == 3 else "auto")
    return Calibrated(weight)


__all__ = ["RerankInput", "Reranker", "MMR", "Calibrated", "Rerank", "RERANKERS", "parse_rerank", "pool_size",
           "relevance", "genre_distribution", "per_movie_genres", "kl_to_history", "MAX_POOL", "CALIBRATION_ALPHA",
           "CURVE_WEIGHTS", "SIMILARITIES"]
