"""`Answerer`: the one place that answers a `Query` from a loaded bundle, for the CLI and the service.

Built once per bundle (and its optional retrieval index), it keeps what every answer needs:
rating counts, movie records, genres, a `Reasoner` and, on demand, the title index and the
taste groups. `answer(query)` goes: candidates (every movie, or the index's) -> the
model's scores -> seen movies and filters masked -> top k (re-ranked when asked) -> rows
with titles, counts and reasons; a new person the model cannot fold in, or who gave
nothing the model can use, gets a popularity/genre fallback flagged as such.

Everything here works in item indices and vectorised NumPy; raw IDs only come in with the
query and go out in the rows.
"""

from __future__ import annotations

import threading
from typing import Any, Iterable, Sequence

import numpy as np

from movierec.answers.answer import Answer, Movie, Row, plain
from movierec.answers.onboarding import TasteGroup, movie_vectors, taste_groups
from movierec.answers.query import Filters, KnownUser, NewPerson, Query, RerankInput, SimilarTo, check_k
from movierec.answers.reasons import POPULAR, Reasoner
from movierec.artifacts import Bundle
from movierec.data.catalog_search import TitleIndex
from movierec.errors import ConfigError, UnknownUserError
from movierec.ranking import SCORE_CHUNK_ELEMENTS

#: taste groups computed ahead of the first visit
DEFAULT_GROUPS = 8


def rating_counts(model) -> np.ndarray:
    """Training ratings per item index, shape (n_items,): the one formula (the model's seen matrix)."""
    return np.bincount(np.asarray(model.seen_.indices, dtype=np.int64), minlength=len(model.items_)).astype(np.int64)


def coerce_id(raw_ids: np.ndarray, value: Any) -> Any:
    """A raw ID as the map holding `raw_ids` spells it: "42" becomes 42 for whole-number IDs
    (the CLI types IDs as text); anything else is returned as given."""
    if raw_ids.dtype.kind in "iu":
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            return int(value)
        if isinstance(value, str):
            text = value.strip()
            if text.lstrip("-").isdigit():
                return int(text)
        return value
    return str(value) if isinstance(value, (int, np.integer)) and not isinstance(value, bool) else value


class Answerer:
    """Answers queries from one loaded bundle (and its retrieval index, when given).

    Args:
        bundle: a loaded bundle (model, ID maps, catalog).
        index: a `movierec.retrieval.ModelIndex` over the model's embeddings, or None:
            then the model scores every movie. The index answers known users and new
            people when no re-ranker is asked for.
    """

    def __init__(self, bundle: Bundle, index: Any = None) -> None:
        model = bundle.model
        model.check_is_fitted()
        self.bundle = bundle
        self.model = model
        self.catalog = bundle.catalog
        self.index = index
        self.n_items = len(model.items_)
        self.item_ids = np.asarray(model.items_.raw_ids)
        self.user_ids = np.asarray(model.users_.raw_ids)
        self.counts = rating_counts(model)
        self.popular = np.lexsort((np.arange(self.n_items), -self.counts))
        self.genre_matrix = np.asarray(self.catalog.genre_matrix)
        self.genre_names = [str(g) for g in self.catalog.genre_names]
        self._genre_column = {_genre_key(g): j for j, g in enumerate(self.genre_names)}
        ids = self.item_ids.tolist()
        years = np.asarray(self.catalog.years).tolist()
        self.movies = [Movie(movie_id=ids[i], title=str(self.catalog.titles[i] or ""),
                             year=int(years[i]) if int(years[i]) > 0 else None,
                             genres=tuple(str(g) for g in self.catalog.genres[i]), n_ratings=int(c))
                       for i, c in enumerate(self.counts.tolist())]
        unit = None
        if model.capabilities.embeddings:
            items = model.embeddings().items
            unit = items / np.maximum(np.linalg.norm(items, axis=1, keepdims=True), 1e-12)
        self.unit_vectors = unit
        self.reasoner = Reasoner(model, self.catalog, self.counts, unit)
        self.threshold = model.liked_threshold()
        self._lock = threading.Lock()
        self._title_index: TitleIndex | None | bool = False  # False: not built yet
        self._groups: dict[int, list[TasteGroup]] = {}
        self._group_vectors: np.ndarray | None = None
        self._rerank_vectors: np.ndarray | None | bool = False  # False: not computed yet

    # -- the public API -----------------------------------------------------------------
    def answer(self, query: Query) -> Answer:
        """The answer to one query.

        Raises:
            UnknownUserError: a known-user query for a user the model was not trained on.
            UnknownItemError: a similar-movies query for an unknown movie, or an unknown
                movie in the filters' allow list.
            ConfigError: filters that allow no movie at all, an unknown genre, a liked
                threshold outside the model's scale.
        """
        subject = query.subject
        if isinstance(subject, KnownUser):
            return self.answer_users([subject.user_id], query)[0]
        if isinstance(subject, NewPerson):
            return self._new_person(subject, query)
        return self._similar(subject, query)

    def answer_users(self, user_ids: Sequence[Any], query: Query) -> list[Answer]:
        """Answers for many known users at once (scored in batches), with `query`'s k,
        exclusions, filters and re-ranker (its subject is ignored).

        Raises:
            UnknownUserError: naming the user IDs the model does not know.
        """
        uidx = self._user_index(user_ids)
        allowed = self.allowed(query.filters)
        pool = query.rerank.pool(query.k) if query.rerank is not None else query.k
        seen = self.model.seen_
        histories = [seen.indices[seen.indptr[u]:seen.indptr[u + 1]] for u in uidx.tolist()]
        exclude = histories if query.exclude_seen else [None] * len(uidx)
        if self.index is not None and query.rerank is None:
            idx, val = self.index.index.search(self.index.user_vectors[uidx], pool,
                                               exclude=exclude if query.exclude_seen else None, allowed=allowed)
            lists = [(i[i >= 0], v[i >= 0]) for i, v in zip(idx, val)]
        else:
            lists = []
            step = max(1, SCORE_CHUNK_ELEMENTS // max(self.n_items, 1))
            for start in range(0, len(uidx), step):
                scores = self.model.score_indices(uidx[start:start + step])
                lists += [self._top(row, pool, exclude[start + j], allowed, owned=True) for j, row in enumerate(scores)]
        answers = []
        for row, u in enumerate(uidx.tolist()):
            rec, scores = lists[row]
            history = histories[row]
            ratings = self._seen_ratings(u)
            if query.rerank is not None:
                liked = history if ratings is None or self.threshold is None else history[ratings >= self.threshold]
                rec, scores = self._rerank(query, rec, scores, liked)
            if ratings is not None:
                reasons = self.reasoner.explain(rec, history, ratings, liked_threshold=self.threshold)
            else:
                reasons = self.reasoner.explain(rec, history, verb="rated")
            answers.append(Answer(kind="user", user_id=plain(self.user_ids[u]), rows=self._rows(rec, scores, reasons)))
        return answers

    def allowed(self, filters: Filters) -> np.ndarray | None:
        """The filters as a boolean mask over item indices (None: every movie).

        Raises:
            ConfigError: an unknown genre, or filters that leave no movie at all.
            UnknownItemError: an allow list naming a movie the model does not know.
        """
        if not filters.active:
            return None
        mask = np.ones(self.n_items, dtype=bool)
        said = []
        if filters.min_ratings:
            mask &= self.counts >= filters.min_ratings
            said.append(f"{filters.min_ratings}+ ratings")
        if filters.genres:
            columns = []
            for g in filters.genres:
                j = self._genre_column.get(_genre_key(g))
                if j is None:
                    known = ", ".join(self.genre_names) if self.genre_names else "none (the catalog has no genres)"
                    raise ConfigError(f"Unknown genre {g!r}; the genres are: {known}.")
                columns.append(j)
            mask &= self.genre_matrix[:, columns].any(axis=1)
            said.append("genre " + " or ".join(self.genre_names[j] for j in columns))
        if filters.allow is not None:
            allow = np.zeros(self.n_items, dtype=bool)
            allow[self._movie_index(filters.allow)] = True
            mask &= allow
            said.append(f"{len(set(filters.allow))} allowed movies")
        if filters.deny:
            deny = self._movie_index(filters.deny, missing="mask")
            mask[deny[deny >= 0]] = False
            said.append(f"{len(set(filters.deny))} denied movies")
        if not mask.any():
            best = int(self.counts.max()) if len(self.counts) else 0
            hint = f"; the most rated movie has {best}" if filters.min_ratings > best else ""
            raise ConfigError(f"No movie passes the filters ({', '.join(said)}{hint}); loosen them.")
        return mask

    def check_stars(self, rated: Iterable[tuple[Any, float]]) -> None:
        """Refuse stars outside the model's rating scale, naming the first such movie
        (`Recommender.check_ratings`: the same sentence wherever it is checked).

        Raises:
            ConfigError: "Ratings must lie in [1, 5], the model's scale; got 9 for movie 50."
        """
        pairs = list(rated)
        if pairs:
            self.model.check_ratings([plain(m) for m, _ in pairs], [float(v) for _, v in pairs])

    def on_scale(self, rated: Iterable[tuple[Any, float]]) -> list[tuple[Any, float]]:
        """Stars moved onto the model's scale (nearest end): for ratings stored while another
        model version, with another scale, was served."""
        scale = self.model.rating_scale_
        if not scale:
            return list(rated)
        low, high = float(scale[0]), float(scale[1])
        return [(m, min(max(float(v), low), high)) for m, v in rated]

    @property
    def rating_scale(self) -> tuple[float, float] | None:
        """(lowest, highest) stars the model takes, or None for data without a scale."""
        scale = self.model.rating_scale_
        return (float(scale[0]), float(scale[1])) if scale else None

    def movie(self, movie_id: Any) -> Movie:
        """One movie with its rating count.

        Raises:
            UnknownItemError: for a movie the model does not know.
        """
        return self.movies[int(self._movie_index([movie_id])[0])]

    def movie_index(self, movie_ids: Iterable[Any], missing: str = "raise") -> np.ndarray:
        """Raw movie IDs (text or numbers) -> item indices (-1 for unknown ones with missing="mask")."""
        return self._movie_index(list(movie_ids), missing=missing)

    def search(self, text: str, limit: int = 20) -> list[Movie]:
        """Movies whose title matches `text` (see `movierec.data.catalog_search`), best first;
        the most-rated movies for an empty text; nothing for a catalog without titles."""
        limit = check_k(limit)
        if not text.strip():
            return [self.movies[i] for i in self.popular[:limit].tolist()]
        index = self.title_index()
        if index is None:
            return []
        try:
            hits = index.search(text, limit)
        except ConfigError:  # nothing to search for (punctuation only)
            return []
        return [self.movies[h.index] for h in hits]

    def title_index(self) -> TitleIndex | None:
        """The catalog's titles prepared for search (built once), or None without titles."""
        if self._title_index is False:
            with self._lock:
                if self._title_index is False:
                    try:
                        self._title_index = TitleIndex(self.catalog, self.counts)
                    except ConfigError:
                        self._title_index = None
        return self._title_index  # type: ignore[return-value]

    def groups(self, n_groups: int = DEFAULT_GROUPS) -> list[TasteGroup]:
        """Taste groups for a first visit (computed once per group count, seeded)."""
        found = self._groups.get(n_groups)
        if found is None:
            with self._lock:
                found = self._groups.get(n_groups)
                if found is None:
                    if self._group_vectors is None:
                        self._group_vectors = movie_vectors(self.model, self.catalog)[0]
                    found = taste_groups(self.model, self.catalog, self.counts, n_groups, vectors=self._group_vectors)
                    self._groups[n_groups] = found
        return found

    def picked_groups(self, group_ids: Sequence[int], n_groups: int, k: int = 10,
                      filters: Filters | None = None) -> Answer:
        """A first list from the taste groups a person picked: their movies count as liked.

        Raises:
            ConfigError: a group number that does not exist.
        """
        found = self.groups(n_groups)
        unknown = sorted({int(g) for g in group_ids if not 0 <= int(g) < len(found)})
        if unknown:
            raise ConfigError(f"There is no taste group {unknown[0]}; the groups are 0 to {len(found) - 1}.")
        liked = [self.movies[i].movie_id for g in dict.fromkeys(int(g) for g in group_ids)
                 for i in found[g].movie_idx.tolist()]
        return self.answer(Query(NewPerson(liked=tuple(liked), picked=True), k=k, filters=filters or Filters()))

    # -- new people -----------------------------------------------------------------------
    def _new_person(self, person: NewPerson, query: Query) -> Answer:
        model = self.model
        stars: dict[Any, float] = {}
        for movie, value in person.rated:
            stars[coerce_id(self.item_ids, movie)] = float(value)
        liked_only = [m for m in dict.fromkeys(coerce_id(self.item_ids, m) for m in person.liked) if m not in stars]
        given = list(stars) + liked_only
        idx = self._movie_index(given, missing="mask") if given else np.zeros(0, dtype=np.int64)
        known = idx >= 0
        ignored = tuple(plain(m) for m, ok in zip(given, known.tolist()) if not ok)
        use_idx = idx[known]
        ratings = None
        threshold = self._threshold(query)
        if stars:
            self.check_stars(stars.items())
            scale = model.rating_scale_
            top = float(scale[1]) if scale else 1.0
            ratings = np.asarray([stars.get(m, top) for m in given], dtype=np.float64)[known]
        liked_mask = np.ones(len(use_idx), dtype=bool) if ratings is None or threshold is None else ratings >= threshold
        liked_idx, disliked_idx = use_idx[liked_mask], use_idx[~liked_mask]
        base = dict(kind="new", ignored=ignored, liked=tuple(plain(x) for x in self.item_ids[liked_idx]),
                    disliked=tuple(plain(x) for x in self.item_ids[disliked_idx]),
                    liked_threshold=threshold if ratings is not None else None)
        allowed = self.allowed(query.filters)
        exclude = use_idx if query.exclude_seen else None
        if len(use_idx) == 0:
            return self._fallback(base, use_idx, liked_mask, exclude, allowed, query,
                                  "No movie the model knows was given." if given else "No movie was given.")
        if not model.capabilities.fold_in:
            from movierec.models.registry import available, get_class

            able = ", ".join(n for n in available() if get_class(n).capabilities.fold_in)
            return self._fallback(base, use_idx, liked_mask, exclude, allowed, query,
                                  f"Model {model.name!r} cannot recommend for a new person without retraining; "
                                  f"models that can: {able}.")
        pool = query.rerank.pool(query.k) if query.rerank is not None else query.k
        try:
            folded = model.fold_in(self.item_ids[use_idx], ratings, liked_threshold=threshold)
            if self.index is not None and query.rerank is None and folded.vector is not None:
                rec, scores = self.index.index.search(folded.vector[None, :], pool,
                                                      exclude=[exclude] if exclude is not None else None,
                                                      allowed=allowed)
                rec, scores = rec[0], scores[0]
            else:
                rec, scores = self._top(folded.scores, pool, exclude, allowed, owned=True)
        except ConfigError as exc:  # e.g. NoLikedMoviesError: the model refused this person; say why, still answer
            return self._fallback(base, use_idx, liked_mask, exclude, allowed, query, str(exc))
        keep = rec >= 0
        rec, scores = rec[keep], scores[keep]
        if query.rerank is not None:
            rec, scores = self._rerank(query, rec, scores, liked_idx)
        if person.picked:
            reasons = self.reasoner.picked(rec, liked_idx)
        elif ratings is not None:
            reasons = self.reasoner.explain(rec, use_idx, ratings, liked_threshold=threshold)
        else:
            reasons = self.reasoner.explain(rec, use_idx, verb="liked")
        return Answer(rows=self._rows(rec, scores, reasons), **base)

    def _fallback(self, base: dict, given_idx: np.ndarray, liked_mask: np.ndarray, exclude: np.ndarray | None,
                  allowed: np.ndarray | None, query: Query, reason: str) -> Answer:
        """Popular movies leaning to the genres of the movies liked, and away from the genres
        of the movies disliked (any given ones)."""
        pop = np.log1p(self.counts.astype(np.float64))
        pop /= max(float(pop.max()), 1e-12)
        scores = pop.copy()
        genres = self.genre_matrix.astype(np.float64)
        profile = None
        if len(given_idx) and genres.shape[1]:
            liked = genres[given_idx[liked_mask]].sum(axis=0)
            disliked = genres[given_idx[~liked_mask]].sum(axis=0)
            total = liked.sum() + disliked.sum()
            if total > 0:
                profile = (liked - disliked) / total
                scores += 2.0 * (genres @ profile)
        rec, val = self._top(scores, query.k, exclude, allowed, owned=True)
        reasons: list[str | None] = []
        for i in rec.tolist():
            shared = np.flatnonzero((genres[i] > 0) & (profile > 0)) if profile is not None else []
            if len(shared):
                top = max(shared, key=lambda j: profile[j])
                reasons.append(f"Popular in {self.genre_names[top]}")
            else:
                reasons.append(POPULAR)
        return Answer(rows=self._rows(rec, val, reasons), fallback=True, fallback_reason=reason, **base)

    # -- similar movies -------------------------------------------------------------------
    def _similar(self, subject: SimilarTo, query: Query) -> Answer:
        q = int(self._movie_index([subject.movie_id])[0])
        allowed = self.allowed(query.filters)
        pool = query.rerank.pool(query.k) if query.rerank is not None else query.k
        title = self.reasoner.label(q)
        if self.model.capabilities.similar_items:
            sims = np.asarray(self.model.item_similarities(np.array([q]))[0], dtype=np.float32)
            rec, scores = self._top(sims, pool, np.array([q]), allowed)
            if query.rerank is not None:
                rec, scores = self._rerank(query, rec, scores, np.array([q]))
            reasons = [f"Liked by people who liked {title}"] * len(rec)
            return Answer(kind="similar", movie=self.movies[q], rows=self._rows(rec, scores, reasons))
        genres = self.genre_matrix.astype(np.float64)
        overlap = genres @ genres[q] / max(float(genres[q].sum()), 1.0)
        pop = np.log1p(self.counts.astype(np.float64))
        scores = (overlap + 0.1 * pop / max(float(pop.max()), 1e-12)).astype(np.float32)
        rec, val = self._top(scores, query.k, np.array([q]), allowed, owned=True)
        reasons = []
        for i in rec.tolist():
            shared = [self.genre_names[j] for j in np.flatnonzero(genres[i] * genres[q])]
            reasons.append(f"Also {' and '.join(shared[:2])}" if shared else POPULAR)
        return Answer(kind="similar", movie=self.movies[q], rows=self._rows(rec, val, reasons), fallback=True,
                      fallback_reason=f"Model {self.model.name!r} cannot tell which movies are alike; "
                                      "genre overlap and popularity stand in.")

    # -- pieces ---------------------------------------------------------------------------
    def _movie_index(self, movie_ids: Sequence[Any], missing: str = "raise") -> np.ndarray:
        return _lookup(self.model.items_, self.item_ids, movie_ids, missing)

    def _user_index(self, user_ids: Sequence[Any]) -> np.ndarray:
        """Raw user IDs -> user indices, or an UnknownUserError that says what to do instead."""
        if len(user_ids) == 1:  # one user (a request): a dict lookup
            found = self.model.users_.position(coerce_id(self.user_ids, user_ids[0]))
            if found >= 0:
                return np.array([found], dtype=np.int64)
        idx = _lookup(self.model.users_, self.user_ids, user_ids, "mask")
        if (idx < 0).any():
            bad = [plain(coerce_id(self.user_ids, u)) for u, i in zip(user_ids, idx.tolist()) if i < 0]
            shown = ", ".join(repr(b) if isinstance(b, str) else str(b) for b in bad[:5]) + (" ..." if len(bad) > 5 else "")
            hint = ("; for someone new, recommend from the movies they rated or liked"
                    if self.model.capabilities.fold_in else "")
            raise UnknownUserError(f"Unknown user ID{'s' if len(bad) > 1 else ''}: {shown} (not among the "
                                   f"{len(self.user_ids):,} users the model was trained on){hint}.")
        return idx

    def _threshold(self, query: Query) -> float | None:
        return self.model.resolve_liked_threshold(query.liked_threshold)

    def _seen_ratings(self, user: int) -> np.ndarray | None:
        """A known user's training stars aligned with their seen movies, or None when the
        bundle does not keep them."""
        ratings = getattr(self.model, "seen_ratings_", None)
        if ratings is None:
            return None
        seen = self.model.seen_
        return np.asarray(ratings[seen.indptr[user]:seen.indptr[user + 1]], dtype=np.float64)

    @staticmethod
    def _top(scores: np.ndarray, k: int, exclude: np.ndarray | None, allowed: np.ndarray | None,
             owned: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Top-k item indices and scores of one score row, best first, with the excluded
        movies and those outside `allowed` left out (so fewer than k when fewer remain);
        ties go to the lower item index, so a batch and a single query agree and every run
        gives the same list. A NaN score counts as the lowest.

        Args:
            scores: shape (n_items,); written to when `owned` (a row the caller made).
        """
        scores = np.asarray(scores, dtype=np.float32) if owned else np.array(scores, dtype=np.float32)
        if allowed is not None:
            scores[~allowed] = -np.inf
        if exclude is not None and len(exclude):
            scores[exclude] = -np.inf
        n = len(scores)
        kk = min(int(k), n)
        for _ in range(2):
            if kk < n:
                kth = np.partition(scores, n - kk)[n - kk]  # the k-th largest score
                part = np.flatnonzero(scores >= kth)  # the top k and every tie of the k-th
            else:
                part = np.arange(n)
            top = scores[part]
            if not np.isnan(top).any():
                break
            scores = np.where(np.isnan(scores), np.float32(-np.inf), scores)  # NaN sorts as the highest
        order = np.lexsort((part, -top))[:kk]
        idx, vals = part[order].astype(np.int64, copy=False), top[order]
        if len(vals) and not np.isfinite(vals[-1]):
            keep = np.isfinite(vals)
            idx, vals = idx[keep], vals[keep]
        return idx, vals

    def _rerank(self, query: Query, rec: np.ndarray, scores: np.ndarray,
                history: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        assert query.rerank is not None
        chosen = np.asarray(query.rerank.rerank(RerankInput(
            item_idx=rec, scores=scores, k=query.k, history_idx=np.asarray(history, dtype=np.int64),
            genre_matrix=self.genre_matrix, item_vectors=self.rerank_vectors())), dtype=np.int64)
        if chosen.ndim != 1 or len(chosen) > query.k or len(np.unique(chosen)) != len(chosen) \
                or (len(chosen) and (chosen.min() < 0 or chosen.max() >= len(rec))):
            raise ConfigError(f"The re-ranker {getattr(query.rerank, 'name', '?')!r} returned an invalid order.")
        return rec[chosen], scores[chosen]

    def rerank_vectors(self) -> np.ndarray | None:
        """Unit movie vectors a re-ranker compares (MMR), shape (n_items, d), or None: the
        model's own similarity vectors, else its embeddings' movie side (computed once; the
        same vectors `movierec.evaluation.runner` re-ranks with, so offline and served lists agree)."""
        if self._rerank_vectors is False:
            with self._lock:
                if self._rerank_vectors is False:
                    from movierec.evaluation.runner import item_vectors, unit_rows

                    self._rerank_vectors = unit_rows(item_vectors(self.model))
        return self._rerank_vectors  # type: ignore[return-value]

    def _rows(self, rec: np.ndarray, scores: np.ndarray, reasons: Sequence[str | None]) -> tuple[Row, ...]:
        movies = self.movies
        return tuple(Row(movies[i], s, r) for i, s, r in zip(rec.tolist(), scores.tolist(), reasons))


def _genre_key(name: str) -> str:
    """A genre name as typed or spelled ("sci-fi", "SciFi", "Children's") -> one key."""
    return "".join(ch for ch in str(name).casefold() if ch.isalnum())


def _lookup(idmap, raw_ids: np.ndarray, values: Sequence[Any], missing: str) -> np.ndarray:
    """Raw IDs as typed (text or numbers) -> indices of `idmap` (whose raw IDs are `raw_ids`)."""
    coerced = [coerce_id(raw_ids, v) for v in values]
    if not coerced:
        return np.zeros(0, dtype=np.int64)
    dtype = raw_ids.dtype if raw_ids.dtype.kind in "iu" else object
    try:
        array = np.asarray(coerced, dtype=dtype)
    except (TypeError, ValueError, OverflowError):
        array = np.asarray(coerced, dtype=object)
    return idmap.lookup(array, missing=missing)


__all__ = ["Answerer", "rating_counts", "coerce_id", "DEFAULT_GROUPS"]
