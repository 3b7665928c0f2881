"""Taste groups for a first visit, in the spirit of MovieLens' own onboarding.

A group is a genre signature (one genre, or two genres together) shown by well-known movies
that all have those genres, so its label always says what its movies are. Which signatures
become groups is the model's call as much as the catalog's: among the most-rated movies,
the signatures are chosen greedily, each step taking the one whose movies not yet covered
weigh most, where a movie weighs by its popularity and by how much of its genres the label
names ("Drama" says little about *Star Wars*), the sum scaled by how coherent the
signature is in the model's movie vectors (how much its movies point the same way once the
popularity direction all popular movies share is taken out) and halved each time one of its
genres already names an earlier group. Broad genres that the model sees as one taste stay
(Comedy, Drama), tight tastes earn a group of their own (Children's & Animation, Horror),
and no two groups lead with the same genres. Each group is shown by its movies that are
best known, closest to the group's direction and best described by its label.

Movie vectors: the model's embeddings where it declares them, else co-occurrence vectors
(a truncated SVD of which users watched which movies, from the model's own seen matrix),
else genres. Without genres (or once every signature is used), the remaining groups are
k-means clusters (seeded) of the movies not shown yet, named after their best-known movie.

Picking groups gives a new person a first list: the groups' movies are folded in as movies
they like (`Answerer.picked_groups`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from movierec.data.dataset import Catalog
from movierec.models.base import Recommender

#: the most-rated movies that groups are drawn from
CANDIDATES = 400
#: movies shown per group
PER_GROUP = 6
#: a signature's coherence (0..1) enters its gain to this power: tight tastes rank higher
COHERENCE_POWER = 0.5
#: a signature's gain is multiplied by this once per earlier group's label naming one of its genres
REUSE_DISCOUNT = 0.5
#: how a group's shown movies are chosen: popularity (0..1) + these x direction (cosine)
#: + label fit (share of the movie's genres the label names)
DIRECTION_WEIGHT = 0.25
LABEL_FIT_WEIGHT = 0.25


@dataclass(frozen=True)
class TasteGroup:
    """One taste group.

    Attributes:
        group_id: 0..n_groups-1, in the order the groups were chosen (weightiest first).
        label: "Comedy" or "Children's & Animation": the genres every one of its movies
            has (the more common one first); "Like <title>" for a group of movies that share
            no genre signature.
        genres: the label's genres, then up to three in all that most of its movies also
            have; the first two (its leading genres) are never another group's first two.
        movie_idx: item indices of its shown movies, best first, shape (<= per_group,).
    """

    group_id: int
    label: str
    genres: list[str]
    movie_idx: np.ndarray


def _unit(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def movie_vectors(model: Recommender, catalog: Catalog, *, dim: int = 32, seed: int = 0) -> tuple[np.ndarray, str]:
    """Vectors that place similar movies near each other, shape (n_items, d), and their kind.

    Kinds: "embeddings" (the model's), "co-occurrence" (SVD of the seen matrix), "genres".
    """
    if model.capabilities.embeddings:
        return model.embeddings().items, "embeddings"
    seen = model.seen_.T.tocsr().astype(np.float32)  # items x users
    n_items, n_users = seen.shape
    if seen.nnz and min(n_items, n_users) > 2:
        from sklearn.decomposition import TruncatedSVD

        rows = np.sqrt(np.asarray(seen.sum(axis=1)).ravel())
        seen = seen.multiply(1.0 / np.maximum(rows, 1.0)[:, None]).tocsr()
        svd = TruncatedSVD(n_components=min(dim, min(n_items, n_users) - 1), random_state=seed)
        return svd.fit_transform(seen).astype(np.float32), "co-occurrence"
    return np.asarray(catalog.genre_matrix, dtype=np.float32), "genres"


def _taste_space(vectors: np.ndarray) -> np.ndarray:
    """Unit vectors with the pool's mean direction removed, shape (n, d): what tells the
    movies' tastes apart, not what makes them all popular."""
    x = _unit(vectors)
    if len(x) > 1:
        x = _unit(x - x.mean(axis=0, keepdims=True))
    return x


def _signatures(genre_matrix: np.ndarray, order: np.ndarray,
                per_group: int) -> tuple[list[tuple[int, ...]], np.ndarray]:
    """Every one- and two-genre signature that at least `per_group` pool movies have.

    Args:
        genre_matrix: multi-hot genres of the pool, shape (n_pool, n_genres).
        order: genre columns, most common first (a pair's genres are listed in this order).
        per_group: the fewest movies a signature needs.
    Returns:
        the signatures (genre columns) and their members, bool shape (n_signatures, n_pool).
    """
    has = genre_matrix.astype(bool)
    rank = {int(j): r for r, j in enumerate(order)}
    signatures, members = [], []
    for a in order.tolist():
        if has[:, a].sum() >= per_group:
            signatures.append((a,))
            members.append(has[:, a])
    for i, a in enumerate(order.tolist()):
        for b in order.tolist()[i + 1:]:
            both = has[:, a] & has[:, b]
            if both.sum() >= per_group:
                signatures.append(tuple(sorted((a, b), key=rank.__getitem__)))
                members.append(both)
    return signatures, np.asarray(members, dtype=bool).reshape(len(members), genre_matrix.shape[0])


def _genre_groups(catalog: Catalog, pool: np.ndarray, x: np.ndarray, weight: np.ndarray, popularity: np.ndarray,
                  n_groups: int, per_group: int) -> list[tuple[list[str], list[str], np.ndarray]]:
    """Up to `n_groups` genre-signature groups, in the order chosen: (the label's genres,
    the group's genres, its shown movies as pool positions)."""
    genres = np.asarray(catalog.genre_matrix)[pool].astype(bool)
    if genres.shape[1] == 0:
        return []
    names = [str(g) for g in catalog.genre_names]
    order = np.lexsort((np.arange(genres.shape[1]), -(genres * weight[:, None]).sum(axis=0)))
    signatures, members = _signatures(genres, order, per_group)
    if not signatures:
        return []
    n_genres = np.maximum(genres.sum(axis=1), 1)
    sizes = np.asarray([len(s) for s in signatures], dtype=np.float64)
    label_fit = members * (sizes[:, None] / n_genres[None, :])  # share of each movie's genres the label names
    centres = (members.astype(np.float32) @ x) / members.sum(axis=1, keepdims=True)
    coherence = np.linalg.norm(centres, axis=1).astype(np.float64)
    directions = _unit(centres)
    genres_of = np.zeros((len(signatures), genres.shape[1]), dtype=np.int64)  # signature x genre, 0/1
    for row, signature in enumerate(signatures):
        genres_of[row, list(signature)] = 1
    covered = np.zeros(len(pool), dtype=bool)
    claimed = np.zeros(len(pool), dtype=bool)
    uses = np.zeros(genres.shape[1], dtype=np.int64)
    leading: set[frozenset[int]] = set()
    found: list[tuple[list[str], list[str], np.ndarray]] = []
    while len(found) < n_groups:
        gain = (label_fit @ np.where(covered, 0.0, weight)) * coherence ** COHERENCE_POWER
        gain *= REUSE_DISCOUNT ** (genres_of @ uses)
        free = (members & ~claimed).sum(axis=1)
        usable = (free >= per_group) & np.asarray([frozenset(s) not in leading for s in signatures])
        if not usable.any():
            break
        best = int(np.flatnonzero(usable)[np.argmax(gain[usable])])  # first of equals: deterministic
        signature = signatures[best]
        candidates = np.flatnonzero(members[best] & ~claimed)
        fit = popularity[candidates] + DIRECTION_WEIGHT * (x[candidates] @ directions[best]) \
            + LABEL_FIT_WEIGHT * label_fit[best, candidates]
        shown = candidates[np.argsort(-fit, kind="stable")[:per_group]]
        extra = [j for j in np.argsort(-genres[shown].sum(axis=0), kind="stable").tolist()
                 if j not in signature and 2 * genres[shown, j].sum() > len(shown)]
        if len(signature) == 1:  # its first two genres must not be another group's first two
            extra = [j for j in extra if frozenset((signature[0], j)) not in leading]
        columns = list(signature) + extra[: 3 - len(signature)]
        leading.add(frozenset(columns[:2]))
        leading.add(frozenset(signature))
        uses[list(signature)] += 1
        claimed[shown] = True
        covered |= members[best]
        found.append(([names[j] for j in signature], [names[j] for j in columns], shown))
    return found


def _cluster_groups(x: np.ndarray, popularity: np.ndarray, free: np.ndarray, n_groups: int, per_group: int,
                    seed: int) -> list[np.ndarray]:
    """Up to `n_groups` k-means clusters (seeded) of the pool positions `free`: the shown
    pool positions of each, largest cluster first."""
    from sklearn.cluster import KMeans

    n_groups = min(n_groups, len(free))
    if n_groups < 1:
        return []
    labels = KMeans(n_clusters=n_groups, n_init=4, random_state=seed).fit_predict(x[free]) if n_groups > 1 \
        else np.zeros(len(free), dtype=np.int64)
    found = []
    for g in range(n_groups):
        members = free[labels == g]
        if len(members) == 0:
            continue
        centre = _unit(x[members].mean(axis=0, keepdims=True))[0]
        fit = popularity[members] + DIRECTION_WEIGHT * (x[members] @ centre)
        found.append((-popularity[members].sum(), g, members[np.argsort(-fit, kind="stable")[:per_group]]))
    return [shown for *_, shown in sorted(found, key=lambda f: (f[0], f[1]))]


def taste_groups(model: Recommender, catalog: Catalog, counts: np.ndarray, n_groups: int = 8, *,
                 vectors: np.ndarray | None = None, candidates: int = CANDIDATES, per_group: int = PER_GROUP,
                 seed: int = 0) -> list[TasteGroup]:
    """`n_groups` taste groups drawn from the `candidates` most-rated movies (see the module docstring).

    Args:
        model: the fitted model (its movie vectors, see `movie_vectors`; its raw movie IDs
            name a group's movie when the catalog has no title).
        catalog: titles and genres in item index order.
        counts: ratings per item index, shape (n_items,).
        n_groups: how many groups (at most the number of candidate movies).
        vectors: movie vectors, shape (n_items, d) (default: `movie_vectors`).
        candidates: how many of the most-rated movies groups are drawn from.
        per_group: movies shown per group; no movie is shown in two groups.
        seed: the seed of the vectors' SVD and of the clusters (same model, same seed,
            same groups).
    Returns:
        the groups, weightiest first; the first m of `n_groups` groups are the m groups
        asked for with `n_groups=m` while genre signatures last.
    """
    counts = np.asarray(counts, dtype=np.int64)
    if vectors is None:
        vectors, _ = movie_vectors(model, catalog, seed=seed)
    pool = np.argsort(-counts, kind="stable")[: min(candidates, len(counts))]
    n_groups = max(1, min(int(n_groups), len(pool)))
    per_group = max(1, int(per_group))
    x = _taste_space(np.asarray(vectors)[pool])
    weight = np.log1p(counts[pool].astype(np.float64))
    popularity = weight / max(float(weight.max()), 1e-12)
    found = _genre_groups(catalog, pool, x, weight, popularity, n_groups, per_group)
    groups = [TasteGroup(group_id=gid, label=" & ".join(label), genres=genres, movie_idx=pool[shown].astype(np.int64))
              for gid, (label, genres, shown) in enumerate(found)]
    if len(groups) < n_groups:  # no genres, or every signature used: clusters of the movies not shown yet
        free = np.ones(len(pool), dtype=bool)
        for *_, shown in found:
            free[shown] = False
        raw_ids = np.asarray(model.items_.raw_ids)
        for shown in _cluster_groups(x, popularity, np.flatnonzero(free), n_groups - len(groups), per_group, seed):
            first = int(pool[shown[0]])
            name = catalog.display_label(first) if catalog.titles[first] else f"movie {raw_ids[first]}"
            groups.append(TasteGroup(group_id=len(groups), label=f"Like {name}", genres=[],
                                     movie_idx=pool[shown].astype(np.int64)))
    return groups


__all__ = ["TasteGroup", "taste_groups", "movie_vectors", "CANDIDATES", "PER_GROUP"]
