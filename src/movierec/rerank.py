"""Re-ranking for variety: a second pass that reorders a model's longer candidate list.

Two re-rankers, each with a `weight` in [0, 1] that trades the model's relevance for
variety (weight 0 gives back the model's own order exactly), and their combination:

* `MMR`, maximal marginal relevance (Carbonell & Goldstein, 1998): pick, one at a time, the
  candidate maximising ``(1 - w) * relevance - w * max similarity to the movies already
  picked``; similarity is the cosine of the model's unit movie vectors when it has them,
  else of the movies' genre sets (multi-hot cosine). The picked movies are shown in the
  model's order: what MMR buys, intra-list diversity (mean pairwise dissimilarity), depends
  on the set only, and the model's order keeps its best movies at the top (on ML-100K
  leave-last it costs 0.4-2.9 points less NDCG@10 than the picking order at weights 0.3-0.6,
  about the same below; see BENCHMARKS.md). An exchange pass on the set version of MMR's objective (each movie's
  highest similarity to the others) was measured and left out: it bought diversity at a
  higher NDCG cost than a larger weight does.
* `Calibrated`, calibrated recommendations (Steck, RecSys 2018): choose the k movies I
  maximising Steck's list objective ``(1 - w) * sum of relevance over I - w * KL(p || q~(I))``,
  where p is the genre distribution of the person's history, q(I) that of the list and
  ``q~ = (1 - alpha) q + alpha p`` with the paper's alpha = 0.01 -- the quantity
  `movierec.evaluation.metrics.calibration_kl` measures. Steck's greedy (each next movie
  maximises the objective of the list so far plus it) gives a first list; an exchange pass
  then swaps a list movie for a pool movie while that raises the objective (the greedy's
  early picks are judged against a half-built list -- the first pick is the one movie whose
  genres best match the whole history -- and later picks cannot undo them); the chosen movies
  are shown in the model's order. The objective depends on the set only, so the order is
  free: the model's own order keeps its best movies at the top, where Steck's greedy order put
  the best-calibrating movies first and pushed them down (on ML-100K leave-last, halving the
  KL cost 9.5-18% NDCG@10 with Steck's greedy alone and under 2% with the exchange pass and
  the model's order; see BENCHMARKS.md, "Re-ranking for variety").
* `CalibratedDiverse`, written ``calibrated:W+diversity:V``: Steck's objective at weight W
  with an intra-list diversity term of weight V, ``(1 - V) * calibrated objective +
  V * k * ILD(I)`` (ILD by genres, as `movierec.evaluation.metrics.intra_list_diversity`),
  found and shown as `Calibrated`'s list. Calibration alone keeps the history's genre shares
  but may fill a share with look-alikes; the diversity term spreads it over distinct genre
  sets (on ML-100K leave-last, calibrated:W+diversity:0.1 halves the KL and raises diversity
  10% within 2% NDCG@10 for three of four models at some W; neither re-ranker alone reaches
  both at any weight).

Relevance is the model's score min-max normalised over the candidate list (model scores
have arbitrary scales), so the same weight means the same trade-off for every model.
Every list is shown in the model's order, so none is prefix-consistent: the first k of a
list of K > k are not the list of k (MMR's picks are, its display order is not).

Genre distributions (`genre_distribution`): each movie spreads one unit of mass evenly over
its genres; a set of movies' distribution is the normalised sum (movies without a genre add
nothing). `movierec.evaluation.metrics.calibration_kl` measures lists with the same formula.

Everything works in item indices (the model's ID space) and NumPy; `parse_rerank` turns the
text form ("mmr:0.3", "calibrated:0.5", "calibrated:0.6+diversity:0.1") that the CLI, the
API and experiment files take into a re-ranker, and `str(reranker)` gives that text back.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import ClassVar, NamedTuple, Protocol, Union

import numpy as np

from movierec.errors import ConfigError

#: the longest candidate list a re-ranker takes (the longest list a query may ask for)
MAX_POOL = 1000
#: a re-ranker chooses k movies from the model's top max(POOL_FACTOR * k, MIN_POOL)
POOL_FACTOR = 5
MIN_POOL = 100
#: Steck's smoothing of the list's genre distribution towards the history's
CALIBRATION_ALPHA = 0.01
#: the exchange pass (calibrated lists) takes a swap only when it raises the objective by more
#: than this (relative to the KL): rounding never makes it swap back and forth
EXCHANGE_TOLERANCE = 1e-12
#: the exchange pass makes at most this many swaps per list slot (it stops earlier,
#: at a list no single swap improves: on MovieLens after a handful)
EXCHANGE_ROUNDS = 10
#: list slots x unchosen movies x genres the exchange pass evaluates at once (memory bound)
EXCHANGE_BLOCK = 1 << 20
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
    weight * (its highest similarity to the movies already picked); the picked movies are
    shown in the model's order.

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
        """Positions into `candidates.item_idx`, at most `candidates.k`, in the model's order
        (the movies MMR's greedy picks; see `pick`)."""
        return np.sort(self.pick(candidates))

    def pick(self, candidates: RerankInput) -> np.ndarray:
        """MMR's greedy: positions into `candidates.item_idx`, at most `candidates.k`, in the
        order picked (the model's top movie first)."""
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


class CalibratedList(NamedTuple):
    """A calibrated choice (`Calibrated.choose`, `CalibratedDiverse.choose`).

    Attributes:
        positions: positions into the candidate list, at most k, in the model's order.
        kl: KL(p || q~) of the chosen list against the history (what
            `movierec.evaluation.metrics.calibration_kl` gives for it); NaN when the person
            has no genre history (`Calibrated` then keeps the model's order).
        objective: the list objective the re-ranker maximises, for the chosen list (NaN when
            it was not computed: the model's order kept).
        ild: the chosen list's intra-list genre diversity (what
            `movierec.evaluation.metrics.intra_list_diversity` gives for it); NaN where the
            re-ranker has no diversity term, or for a list shorter than two.
    """

    positions: np.ndarray
    kl: float
    objective: float
    ild: float = math.nan


def genre_distances(genre_rows: np.ndarray) -> np.ndarray:
    """Pairwise genre distances 1 - cosine of multi-hot rows, shape (c, g) -> (c, c), 0 on the
    diagonal; a movie without a genre is at distance 1 from every other (as
    `movierec.evaluation.metrics.intra_list_diversity` counts it)."""
    rows = np.asarray(genre_rows, dtype=np.float64)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    unit = np.divide(rows, norms, out=np.zeros_like(rows), where=norms > 0)
    dist = 1.0 - unit @ unit.T
    np.fill_diagonal(dist, 0.0)
    return dist


@dataclass(frozen=True)
class _ListObjective:
    """A list objective over k of c candidates that depends on the set only (not its order):
    ``relevance * sum of rel - calibration * KL(p || q~) + diversity * 2/(k-1) * sum over
    pairs of distance`` (the last term is k * the list's intra-list diversity: per movie, its
    mean distance to the others, on the scale of one movie's relevance).

    Attributes:
        rel: relevance of the candidates, shape (c,), in [0, 1].
        spread: each candidate's genres spread over one unit, shape (c, g).
        p: the history's genre distribution, shape (g,), or None (no calibration term).
        dist: pairwise distances, shape (c, c), 0 on the diagonal, or None (no diversity term).
        k: the list's length.
        relevance, calibration, diversity: the terms' weights.
    """

    rel: np.ndarray
    spread: np.ndarray
    p: np.ndarray | None
    dist: np.ndarray | None
    k: int
    relevance: float
    calibration: float
    diversity: float

    @property
    def pair_scale(self) -> float:
        """2 / (k - 1): summed pairwise distances times this are k * ILD (0 without distances)."""
        return 2.0 / (self.k - 1) if self.k > 1 and self.dist is not None else 0.0

    def kl_of(self, total: np.ndarray) -> np.ndarray:
        """KL(p || q~) of lists with genre mass `total`, shape (..., g) -> (...); zeros
        without a calibration term."""
        if self.p is None:
            return np.zeros(total.shape[:-1])
        mass = total.sum(axis=-1, keepdims=True)
        return kl_to_history(self.p, np.divide(total, mass, out=np.zeros_like(total), where=mass > 0))

    def ild_of(self, chosen: np.ndarray) -> float:
        """Intra-list diversity of the chosen positions (NaN without distances or under two)."""
        if self.dist is None or len(chosen) < 2:
            return math.nan
        return float(self.dist[np.ix_(chosen, chosen)].sum() / (len(chosen) * (len(chosen) - 1)))

    def value(self, chosen: np.ndarray, kl: float) -> float:
        """The objective of the list `chosen` (positions) whose KL is `kl`."""
        pair_sum = self.dist[np.ix_(chosen, chosen)].sum() / 2 if self.dist is not None else 0.0
        return (self.relevance * float(self.rel[chosen].sum()) - self.calibration * kl
                + self.diversity * self.pair_scale * float(pair_sum))

    def greedy(self) -> np.ndarray:
        """Steck's greedy: k positions, each maximising the objective of the list so far plus
        it (the diversity term counted at the final list's scale)."""
        c, k = len(self.rel), self.k
        gain = self.relevance * self.rel
        picked = np.zeros(self.spread.shape[1])
        to_chosen = np.zeros(c)  # each candidate's summed distance to the movies picked
        taken = np.zeros(c, dtype=bool)
        order = np.empty(k, dtype=np.int64)
        for step in range(k):
            objective = gain.copy()
            if self.calibration:
                objective -= self.calibration * self.kl_of(picked[None, :] + self.spread)
            if self.diversity and self.dist is not None:
                objective += self.diversity * self.pair_scale * to_chosen
            objective = np.where(taken, -np.inf, objective)
            j = int(np.argmax(objective))  # ties: the model's better-ranked candidate
            order[step], taken[j] = j, True
            picked += self.spread[j]
            if self.dist is not None:
                to_chosen += self.dist[:, j]
        return order

    def exchange(self, chosen: np.ndarray) -> tuple[np.ndarray, float]:
        """Best-improvement exchanges: while swapping a chosen movie for an unchosen one raises
        the objective (by more than rounding), make the best such swap; at most
        EXCHANGE_ROUNDS * k swaps.

        Returns:
            the chosen positions (same length, any order) and their list's KL (0 without a
            calibration term).
        """
        chosen = chosen.copy()
        k, c = len(chosen), len(self.rel)
        rel, spread, dist = self.rel, self.spread, self.dist
        w_cal, w_div = self.calibration, self.diversity * self.pair_scale
        rows = max(1, EXCHANGE_BLOCK // max(1, (c - k) * spread.shape[1]))  # list slots per block
        total = spread[chosen].sum(axis=0)
        current = float(self.kl_of(total))
        for _ in range(EXCHANGE_ROUNDS * k if c > k else 0):
            taken = np.zeros(c, dtype=bool)
            taken[chosen] = True
            out = np.flatnonzero(~taken)
            to_chosen = dist[:, chosen].sum(axis=1) if w_div else None
            best, swap = 0.0, None
            for start in range(0, k, rows):
                slots = chosen[start:start + rows]
                delta = self.relevance * (rel[out][None, :] - rel[slots][:, None])
                if w_cal:
                    # the list's genre mass with a slot's movie replaced by each unchosen movie: (slots, out, g)
                    swapped = (total[None, :] - spread[slots])[:, None, :] + spread[out][None, :, :]
                    delta = delta - w_cal * (self.kl_of(swapped) - current)
                if to_chosen is not None:
                    # pairs gained by the newcomer minus pairs lost with the slot's movie: (slots, out)
                    delta = delta + w_div * (to_chosen[out][None, :] - dist[np.ix_(slots, out)]
                                             - to_chosen[slots][:, None])
                a, j = np.unravel_index(int(np.argmax(delta)), delta.shape)
                if delta[a, j] > best:
                    best, swap = float(delta[a, j]), (start + int(a), int(out[j]))
            if swap is None or best <= EXCHANGE_TOLERANCE * (1.0 + abs(current)):
                break
            chosen[swap[0]] = swap[1]
            total = spread[chosen].sum(axis=0)  # summed afresh: no rounding drift over many swaps
            current = float(self.kl_of(total))
        return chosen, current


def _spread_of(candidates: RerankInput) -> np.ndarray:
    """The candidates' genres, each spread over one unit, shape (c, g)."""
    return per_movie_genres(np.asarray(candidates.genre_matrix)[np.asarray(candidates.item_idx, np.int64)])


class _SetChooser:
    """A re-ranker that chooses a set of k from the pool (`choose`) and shows it in the
    model's order: the shared `pool` and `rerank` of `Calibrated` and `CalibratedDiverse`."""

    def pool(self, k: int) -> int:
        """Candidates to choose `k` from (see `pool_size`)."""
        return pool_size(k)

    def rerank(self, candidates: RerankInput) -> np.ndarray:
        """Positions into `candidates.item_idx`, at most `candidates.k`, in the model's order."""
        return self.choose(candidates).positions  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Calibrated(_SetChooser):
    """Calibrated recommendations (Steck, RecSys 2018): the k candidates maximising
    (1 - weight) * summed relevance - weight * KL(p_history || q~_list), found by Steck's
    greedy and an exchange pass, shown in the model's order (see the module docstring); a
    person without genre history gets the model's order.

    Args:
        weight: 0 (the model's order) to 1 (only calibration counts).
    """

    weight: float
    name: ClassVar[str] = "calibrated"

    def __post_init__(self) -> None:
        object.__setattr__(self, "weight", _check_weight("calibrated", self.weight))

    def __str__(self) -> str:
        return f"calibrated:{_weight_text(self.weight)}"

    def choose(self, candidates: RerankInput) -> CalibratedList:
        """The calibrated list of `candidates` with its KL and objective (see `CalibratedList`)."""
        c = len(candidates.item_idx)
        k = min(int(candidates.k), c)
        p = genre_distribution(candidates.history_idx, candidates.genre_matrix)
        if p is None or k == 0:
            return CalibratedList(np.arange(k, dtype=np.int64), math.nan, math.nan)
        objective = _ListObjective(relevance(candidates.scores), _spread_of(candidates), p, None, k,
                                   1.0 - self.weight, self.weight, 0.0)
        chosen, kl = objective.exchange(objective.greedy())
        return CalibratedList(np.sort(chosen), kl, objective.value(chosen, kl))


@dataclass(frozen=True)
class CalibratedDiverse(_SetChooser):
    """Calibrated and diverse at once (``calibrated:W+diversity:V``): the k candidates
    maximising ``(1 - V) * [(1 - W) * summed relevance - W * KL(p_history || q~_list)] +
    V * k * ILD(list)``, ILD the list's intra-list genre diversity (mean pairwise 1 - cosine of
    genre sets, as `movierec.evaluation.metrics.intra_list_diversity`; times k it is, per movie,
    its mean distance to the others: the scale of one movie's relevance), found as
    `Calibrated` finds its list (greedy, exchanges) and shown in the model's order.

    Calibration alone leaves the list's genres in the history's proportions but may fill them
    with look-alikes; the diversity term spreads each share over distinct genre sets. V = 0 is
    `Calibrated(W)` exactly; W = 0 trades relevance for diversity alone; W = V = 0 is the
    model's order. A person without genre history keeps the diversity term only.

    Args:
        calibrated: W, 0 to 1 (the calibrated re-ranker's weight).
        diversity: V, 0 to 1 (the weight of diversity against the calibrated objective).
    """

    calibrated: float
    diversity: float
    name: ClassVar[str] = "calibrated+diversity"

    def __post_init__(self) -> None:
        object.__setattr__(self, "calibrated", _check_weight("calibrated", self.calibrated))
        object.__setattr__(self, "diversity", _check_weight("diversity", self.diversity))

    def __str__(self) -> str:
        return f"calibrated:{_weight_text(self.calibrated)}+diversity:{_weight_text(self.diversity)}"

    def choose(self, candidates: RerankInput) -> CalibratedList:
        """The chosen list with its KL, objective and intra-list diversity (see `CalibratedList`)."""
        c = len(candidates.item_idx)
        k = min(int(candidates.k), c)
        if k == 0:
            return CalibratedList(np.zeros(0, dtype=np.int64), math.nan, math.nan)
        p = genre_distribution(candidates.history_idx, candidates.genre_matrix)
        w, v = self.calibrated, self.diversity
        dist = genre_distances(np.asarray(candidates.genre_matrix)[np.asarray(candidates.item_idx, np.int64)])
        objective = _ListObjective(relevance(candidates.scores), _spread_of(candidates), p, dist, k,
                                   (1.0 - v) * (1.0 - w), (1.0 - v) * w if p is not None else 0.0, v)
        chosen, kl = objective.exchange(objective.greedy())
        kl = kl if p is not None else math.nan
        return CalibratedList(np.sort(chosen), kl, objective.value(chosen, 0.0 if p is None else kl),
                              objective.ild_of(chosen))


Rerank = Union[MMR, Calibrated, CalibratedDiverse]
#: re-ranker name -> class: the one-weight re-rankers (`compare`'s trade-off curves take these);
#: `CalibratedDiverse` is written with two weights, "calibrated:W+diversity:V"
RERANKERS = {"mmr": MMR, "calibrated": Calibrated}
#: how the combined re-ranker is written
COMBINED = "calibrated:W+diversity:V"


def _one_weight(name: str, text: str) -> float:
    """The weight text of re-ranker `name` as a finite float (the re-ranker checks its range), or
    ConfigError in one sentence."""
    try:
        weight = float(text)
    except ValueError:
        raise ConfigError(f"The {name} re-ranking weight must be a number from 0 to 1, got {text[:40]!r}.") from None
    if not math.isfinite(weight):
        raise ConfigError(f"The {name} re-ranking weight must be a number from 0 to 1, got {text[:40]!r}.")
    return weight


def _parse_combined(text: str, terms: list[str]) -> CalibratedDiverse:
    """`calibrated:W+diversity:V` (either order) from its '+'-separated terms."""
    usage = (f"Combine re-rankers as {COMBINED} with W and V from 0 to 1 (e.g. calibrated:0.6+diversity:0.1), "
             f"got {text[:60]!r}.")
    weights: dict[str, float] = {}
    for term in terms:
        parts = [part.strip() for part in term.split(":")]
        name = parts[0].lower()
        if name not in ("calibrated", "diversity") or name in weights or len(parts) != 2 or not parts[1]:
            raise ConfigError(usage)
        weights[name] = _one_weight(name, parts[1])
    if len(weights) != 2:
        raise ConfigError(usage)
    return CalibratedDiverse(weights["calibrated"], weights["diversity"])


def parse_rerank(text: str | None) -> Rerank | None:
    """A re-ranker from its text form: "mmr:0.3", "mmr:0.3:genres", "calibrated:0.5",
    "calibrated:0.6+diversity:0.1"; None (or an empty text) for none. In a URL's query string
    '+' reads as a space, so "calibrated:0.6 diversity:0.1" is read as the combined one too.

    Raises:
        ConfigError: an unknown re-ranker, a missing weight or one outside [0, 1], a bad
            combination, in one sentence.
    """
    if text is None or not str(text).strip():
        return None
    whole = str(text).strip()
    terms = [term.strip() for term in re.split(r"\+|(?<=[0-9.])\s+(?=[A-Za-z])", whole)]
    if len(terms) > 1:
        return _parse_combined(whole, terms)
    parts = [part.strip() for part in whole.split(":")]
    name = parts[0].lower()
    known = ", ".join(f"{n}:WEIGHT" for n in RERANKERS)
    if name not in RERANKERS:
        raise ConfigError(f"Unknown re-ranker {parts[0][:40]!r}; choose from {known} or {COMBINED}, with each "
                          f"weight from 0 to 1 (e.g. mmr:0.3).")
    if len(parts) < 2 or not parts[1] or len(parts) > (3 if name == "mmr" else 2):
        raise ConfigError(f"Give the {name} re-ranker as {name}:WEIGHT with WEIGHT from 0 to 1 "
                          f"(e.g. {name}:0.3), got {str(text)[:40]!r}.")
    weight = _one_weight(name, parts[1])
    if name == "mmr":
        return MMR(weight, parts[2].lower() if len(parts) == 3 else "auto")
    return Calibrated(weight)


__all__ = ["RerankInput", "Reranker", "MMR", "Calibrated", "CalibratedDiverse", "CalibratedList", "Rerank",
           "RERANKERS", "COMBINED", "parse_rerank", "pool_size", "relevance", "genre_distribution", "per_movie_genres",
           "genre_distances", "kl_to_history", "MAX_POOL", "CALIBRATION_ALPHA", "CURVE_WEIGHTS", "SIMILARITIES"]
