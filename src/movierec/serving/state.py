"""The served model: one immutable `ServedModel` behind one reference, swapped atomically.

A `ServedModel` holds a loaded bundle with its name and version and everything derived
from it once (popularity, movie records, the title index, the reasoner, taste groups,
an answer cache), and answers every query from that one version: a request takes
`ModelServer.current` once and uses nothing else, so each answer comes from exactly
one version, however often the model is swapped meanwhile.

`ModelServer` loads the registry's current version of a name (or a single bundle
folder), reloads, promotes and rolls back (a version that fails to load is refused and
the old one keeps serving), and watches the registry's pointer file: every worker
process polls it and swaps in the version it names, so a promote made anywhere (the
CLI, another worker's admin endpoint) is served by every worker within a poll interval.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from movierec.artifacts import Bundle, ModelRegistry, is_bundle_dir, load_bundle
from movierec.data.catalog_search import TitleIndex
from movierec.errors import CapabilityError, ConfigError, MovierecError, RegistryError
from movierec.serving.onboarding import TasteGroup, movie_vectors, taste_groups
from movierec.serving.reasons import POPULAR, Reasoner

#: answers to GET /recommend kept per loaded model (0 disables the cache)
CACHE_SIZE = 20_000
#: longest list whose answer is cached
CACHE_MAX_K = 100
#: taste groups computed ahead of the first visit
DEFAULT_GROUPS = 8
_LIMIT = 1e30


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _finite(values: np.ndarray) -> list[float]:
    """Scores as JSON-safe floats (NaN -> 0, infinities clipped)."""
    return np.nan_to_num(np.asarray(values, dtype=np.float64), nan=0.0, posinf=_LIMIT, neginf=-_LIMIT).tolist()


def _int_ids(raw: np.ndarray, kind: str) -> np.ndarray:
    if raw.dtype.kind in "iu":
        return raw.astype(np.int64)
    try:
        return np.asarray([int(x) for x in raw], dtype=np.int64)
    except (TypeError, ValueError):
        raise ConfigError(f"The service answers in whole-number {kind} IDs, but this model's {kind} IDs are text.") from None


def _stored_index(bundle: Bundle):
    """The bundle's retrieval index (`movierec.retrieval.stored_index`), or None when it
    holds none; FAISS is imported only for a bundle with extra files."""
    if not bundle.extras:
        return None
    from movierec.retrieval import stored_index

    return stored_index(bundle)


@dataclass(frozen=True, eq=False)
class ServedModel:
    """One loaded model version and what is derived from it (never changed once built).

    Attributes:
        bundle: the loaded bundle.
        name: the registry name (or the model's name for a bundle folder).
        version: the registry version, None for a bundle folder outside a registry.
        loaded_at: UTC time it was loaded.
        counts: training interactions per item index, shape (n_items,).
        popular: item indices, most interactions first, shape (n_items,).
        movies: JSON movie records (movie_id, title, year, genres) in item index order.
        reasoner: explains recommendations.
        title_index: the catalog's titles prepared for search (None without titles).
        index: the bundle's stored retrieval index (`movierec.retrieval.ModelIndex`), or
            None: then the model scores every movie.
    """

    bundle: Bundle
    name: str
    version: str | None
    loaded_at: str
    counts: np.ndarray
    popular: np.ndarray
    movies: list[dict[str, Any]]
    reasoner: Reasoner
    title_index: TitleIndex | None
    index: Any = None
    cache_size: int = CACHE_SIZE
    _groups: dict[Any, Any] = field(default_factory=dict, repr=False)
    _cache: dict[tuple, bytes] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def build(cls, bundle: Bundle, name: str, version: str | None, *, cache_size: int = CACHE_SIZE) -> "ServedModel":
        """Derive what the service needs from a loaded bundle (IDs must be whole numbers)."""
        model, catalog = bundle.model, bundle.catalog
        item_ids = _int_ids(np.asarray(model.items_.raw_ids), "movie")
        _int_ids(np.asarray(model.users_.raw_ids), "user")
        counts = np.bincount(model.seen_.indices, minlength=len(item_ids)).astype(np.int64)
        popular = np.lexsort((np.arange(len(counts)), -counts))
        movies = [
            {"movie_id": int(item_ids[i]), "title": str(catalog.titles[i] or ""),
             "year": int(catalog.years[i]) if int(catalog.years[i]) > 0 else None,
             "genres": [str(g) for g in catalog.genres[i]]}
            for i in range(len(item_ids))
        ]
        unit = None
        if model.capabilities.embeddings:
            items = model.embeddings().items
            unit = items / np.maximum(np.linalg.norm(items, axis=1, keepdims=True), 1e-12)
        try:
            title_index: TitleIndex | None = TitleIndex(catalog, counts)
        except ConfigError:  # a catalog without titles: search answers nothing
            title_index = None
        return cls(bundle=bundle, name=name, version=version, loaded_at=_now(), counts=counts, popular=popular,
                   movies=movies, reasoner=Reasoner(model, catalog, counts, unit), title_index=title_index,
                   index=_stored_index(bundle), cache_size=cache_size)

    # -- basics -------------------------------------------------------------------------
    @property
    def model(self):
        return self.bundle.model

    @property
    def ref(self) -> dict[str, Any]:
        """{"name", "version"}: the version every answer names."""
        return {"name": self.name, "version": self.version}

    @property
    def capabilities(self) -> list[str]:
        """The model's declared capabilities, and "retrieval_index" when an index answers."""
        return self.model.capabilities.names() + (["retrieval_index"] if self.index is not None else [])

    def item_index(self, movie_ids: Iterable[int], missing: str = "raise") -> np.ndarray:
        """Raw movie IDs -> item indices (-1 for unknown ones with missing="mask")."""
        return self.model.items_.lookup(np.asarray(list(movie_ids), dtype=np.int64), missing=missing)

    def movie_info(self, idx: int) -> dict[str, Any]:
        """A movie record with its rating count."""
        return {**self.movies[idx], "n_ratings": int(self.counts[idx])}

    def _scored(self, idx: np.ndarray, scores: np.ndarray, reasons: list[str | None]) -> list[dict[str, Any]]:
        return [{**self.movies[i], "score": s, "reason": r} for i, s, r in zip(idx.tolist(), _finite(scores), reasons)]

    # -- known users --------------------------------------------------------------------
    def recommend(self, user_ids: list[int], k: int, exclude_seen: bool = True) -> list[list[dict[str, Any]]]:
        """Scored movies with reasons for each raw user ID, best first.

        Raises:
            UnknownUserError: naming the user IDs the model does not know.
        """
        model = self.model
        uidx = model.users_.lookup(np.asarray(user_ids, dtype=np.int64))
        if self.index is not None:
            recs = self.index.recommend(np.asarray(user_ids, dtype=np.int64), k, exclude_seen)
            idx = np.where(recs.scores > -np.inf, model.items_.lookup(recs.item_ids.ravel(), missing="mask")
                           .reshape(recs.item_ids.shape), -1)
            val = recs.scores
        else:
            idx, val = model.rank_indices(uidx, k, model.seen_ if exclude_seen else None)
        out = []
        for row, u in enumerate(uidx):
            keep = idx[row] >= 0
            rec = idx[row][keep]
            seen = model.seen_.indices[model.seen_.indptr[u]:model.seen_.indptr[u + 1]]
            reasons = self.reasoner.explain(rec, seen, verb="rated")
            out.append(self._scored(rec, val[row][keep], reasons))
        return out

    def _cached(self, key: tuple, k: int, answer) -> bytes:
        """The JSON bytes of `answer()`, kept per `key` (lists up to CACHE_MAX_K long)."""
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        body = json.dumps(answer(), ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        if self.cache_size > 0 and k <= CACHE_MAX_K:
            if len(self._cache) >= self.cache_size:
                self._cache.clear()
            self._cache[key] = body
        return body

    def recommend_json(self, user_id: int, k: int, exclude_seen: bool = True) -> bytes:
        """The GET /recommend answer as JSON bytes, cached per (user, k, exclude_seen)."""
        return self._cached(("recommend", user_id, k, exclude_seen), k, lambda: {
            "model": self.ref, "user_id": int(user_id), "items": self.recommend([user_id], k, exclude_seen)[0]})

    def similar_json(self, movie_id: int, k: int) -> bytes:
        """The GET /similar answer as JSON bytes, cached per (movie, k)."""
        return self._cached(("similar", movie_id, k), k, lambda: self.similar(movie_id, k))

    # -- new people -----------------------------------------------------------------------
    def recommend_new(self, rated: list[tuple[int, float]], liked: list[int], k: int,
                      picked: str | None = None) -> dict[str, Any]:
        """A new person's list from their stars and/or liked movies (the cold-start answer).

        Unknown movie IDs are ignored (and listed); liked movies without stars count as
        rated at the top of the model's scale when stars are given too. With nothing
        usable, or a model that cannot fold in a new person, the answer is a
        popularity/genre fallback flagged as such.

        Args:
            rated: (raw movie ID, stars) pairs; a repeated movie keeps its last stars.
            liked: raw movie IDs the person likes.
            k: list length.
            picked: when set, reasons read "Because you picked movies like X" (onboarding).
        """
        stars = {int(m): float(r) for m, r in rated}
        liked_ids = [int(m) for m in dict.fromkeys(liked) if int(m) not in stars]
        given = list(stars) + liked_ids
        idx = self.item_index(given, missing="mask") if given else np.zeros(0, dtype=np.int64)
        ignored = [m for m, i in zip(given, idx.tolist()) if i < 0]
        known = idx >= 0
        use_idx = idx[known]
        ratings = None
        if stars:
            model_scale = self.model.rating_scale_ or (0.5, 5.0)
            high = float(model_scale[1])
            values = np.asarray([stars.get(m, high) for m in given], dtype=np.float64)[known]
            ratings = np.clip(values, float(model_scale[0]), high)
        base = {"model": self.ref, "ignored": ignored}
        if len(use_idx) == 0:
            return {**base, **self._fallback(use_idx, ratings, k, "No movie the model knows was given.")}
        if not self.model.capabilities.fold_in:
            return {**base, **self._fallback(use_idx, ratings, k,
                                             "This model cannot recommend for a new person without retraining.")}
        given_ids = self.model.items_.raw_ids[use_idx]
        try:
            recs = None
            if self.index is not None:
                try:
                    recs = self.index.recommend_new(given_ids, ratings, k=k)
                except CapabilityError:  # no vector for a new person: the model scores every movie
                    recs = None
            if recs is None:
                recs = self.model.recommend_new(given_ids, ratings, k=k)
        except MovierecError as exc:
            return {**base, **self._fallback(use_idx, ratings, k, str(exc))}
        n = int(recs.lengths[0])
        rec_idx = self.model.items_.lookup(recs.item_ids[0, :n])
        if picked is not None:
            best = self.reasoner.best_anchor(rec_idx, use_idx)
            reasons = [f"Because you picked movies like {self.bundle.catalog.label(int(use_idx[j]))}" if j >= 0
                       else None for j in best]
        else:
            reasons = self.reasoner.explain(rec_idx, use_idx, ratings, verb="liked")
        return {**base, "fallback": False, "fallback_reason": None,
                "items": self._scored(rec_idx, recs.scores[0, :n], reasons)}

    def _fallback(self, given_idx: np.ndarray, ratings: np.ndarray | None, k: int, reason: str) -> dict[str, Any]:
        """Popular movies, leaning to the genres of the movies given (if any)."""
        catalog = self.bundle.catalog
        n = len(self.counts)
        pop = np.log1p(self.counts.astype(np.float64))
        pop /= max(pop.max(), 1e-12)
        genres = np.asarray(catalog.genre_matrix, dtype=np.float64)
        profile = None
        if len(given_idx) and genres.shape[1]:
            weights = np.ones(len(given_idx)) if ratings is None else np.maximum(ratings - 2.5, 0.0)
            if weights.sum() > 0:
                profile = weights @ genres[given_idx]
                profile /= max(profile.sum(), 1e-12)
        scores = pop.copy()
        if profile is not None:
            scores += 2.0 * (genres @ profile)
        allowed = np.ones(n, dtype=bool)
        allowed[given_idx] = False
        order = np.lexsort((np.arange(n), -scores))
        order = order[allowed[order]][:k]
        reasons: list[str | None] = []
        for i in order:
            shared = np.flatnonzero(genres[i] * profile) if profile is not None else []
            if len(shared):
                top = max(shared, key=lambda j: profile[j])
                reasons.append(f"Popular in {catalog.genre_names[top]}")
            else:
                reasons.append(POPULAR)
        return {"fallback": True, "fallback_reason": reason, "items": self._scored(order, scores[order], reasons)}

    # -- movies ---------------------------------------------------------------------------
    def similar(self, movie_id: int, k: int) -> dict[str, Any]:
        """Movies similar to one movie (genre overlap and popularity stand in for models
        that cannot tell).

        Raises:
            UnknownItemError: for a movie the model does not know.
        """
        q = int(self.item_index([movie_id])[0])
        title = self.bundle.catalog.label(q)
        if self.model.capabilities.similar_items:
            recs = self.model.similar_items([self.model.items_.raw_ids[q]], k=k)
            n = int(recs.lengths[0])
            idx = self.model.items_.lookup(recs.item_ids[0, :n])
            items = self._scored(idx, recs.scores[0, :n], [f"Liked by people who liked {title}"] * n)
            return {"model": self.ref, "movie": self.movies[q], "fallback": False, "items": items}
        genres = np.asarray(self.bundle.catalog.genre_matrix, dtype=np.float64)
        overlap = genres @ genres[q] / max(genres[q].sum(), 1.0)
        pop = np.log1p(self.counts.astype(np.float64))
        scores = overlap + 0.1 * pop / max(pop.max(), 1e-12)
        order = [i for i in np.lexsort((np.arange(len(scores)), -scores)).tolist() if i != q][:k]
        names = self.bundle.catalog.genre_names
        reasons = []
        for i in order:
            shared = [names[j] for j in np.flatnonzero(genres[i] * genres[q])]
            reasons.append(f"Also {' and '.join(shared[:2])}" if shared else POPULAR)
        idx = np.asarray(order, dtype=np.int64)
        return {"model": self.ref, "movie": self.movies[q], "fallback": True,
                "items": self._scored(idx, scores[idx], reasons)}

    def search(self, query: str, limit: int) -> list[dict[str, Any]]:
        """Movies whose title matches `query` (see `movierec.data.catalog_search`); the
        most-rated movies for an empty query."""
        if not query.strip():
            return [self.movie_info(int(i)) for i in self.popular[:limit]]
        if self.title_index is None:
            return []
        try:
            hits = self.title_index.search(query, limit)
        except ConfigError:  # nothing to search for (punctuation only)
            return []
        return [self.movie_info(h.index) for h in hits]

    def groups(self, n_groups: int) -> list[TasteGroup]:
        """Taste groups (computed once per model and group count, seeded)."""
        found = self._groups.get(n_groups)
        if found is None:
            with self._lock:
                found = self._groups.get(n_groups)
                if found is None:
                    if "vectors" not in self._groups:  # once per model: the vectors every clustering uses
                        self._groups["vectors"] = movie_vectors(self.model, self.bundle.catalog)[0]
                    found = taste_groups(self.model, self.bundle.catalog, self.counts, n_groups,
                                         vectors=self._groups["vectors"])
                    self._groups[n_groups] = found
        return found


def _limit_threads(n: int) -> None:
    import sys

    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=n)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(n)


def _warm(served: ServedModel) -> None:
    """Compute the default taste groups in the background (a first visit asks for them)."""

    def run() -> None:
        try:
            served.groups(DEFAULT_GROUPS)
        except Exception:  # pragma: no cover - the request asking for them will report it
            pass

    threading.Thread(target=run, name="movierec-warm-groups", daemon=True).start()


class ModelServer:
    """Serves the current version of one registry name (or one bundle folder).

    Args:
        source: a registry folder, or a single bundle folder.
        name: the registry name (default: the registry's first name).
        cache_size: GET /recommend answers cached per loaded model (0: none).

    Raises:
        RegistryError: no such folder, an empty registry, an unknown name, no current version.
        BundleError: the current version fails to load.
    """

    def __init__(self, source: str | Path, name: str | None = None, *, cache_size: int = CACHE_SIZE) -> None:
        self.source = Path(source)
        self.cache_size = cache_size
        self.last_error: str | None = None
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._signature: tuple | None = None
        self._threads: int | None = None
        if not self.source.is_dir():
            raise RegistryError(f"No model registry or bundle folder at {self.source}.")
        if is_bundle_dir(self.source):
            self.registry: ModelRegistry | None = None
            bundle = load_bundle(self.source)
            self.name = name or bundle.name
            self._current = ServedModel.build(bundle, self.name, bundle.version, cache_size=cache_size)
            _warm(self._current)
            return
        self.registry = ModelRegistry(self.source)
        names = self.registry.names()
        if not names:
            raise RegistryError(f"The registry {self.source} holds no models; train one into it first.")
        self.name = name or names[0]
        self._signature = self._pointer_signature()
        self._current = self._load(None)
        _warm(self._current)

    @property
    def current(self) -> ServedModel:
        """The model version serving now (read it once per request)."""
        return self._current

    def _swap(self, new: ServedModel) -> ServedModel:
        """Make `new` current in one reference assignment; returns the previous one."""
        previous, self._current = self._current, new
        if self._threads:  # a new model may have loaded a library with its own thread pool
            _limit_threads(self._threads)
        _warm(new)
        return previous

    def limit_threads(self, n: int | None) -> None:
        """Serve with `n` BLAS/OpenMP (and torch) threads in this process, now and after every
        swap (None: leave them as they are). One request is one small product: several
        threads per request fight over the cores and are many times slower under load."""
        self._threads = n
        if n:
            _limit_threads(n)

    # -- registry -------------------------------------------------------------------------
    def _need_registry(self) -> ModelRegistry:
        if self.registry is None:
            raise RegistryError(f"The service serves the single bundle folder {self.source}, not a registry, "
                                "so it has no versions to move between.")
        return self.registry

    def _load(self, version: str | None) -> ServedModel:
        registry = self._need_registry()
        found = registry.get(self.name, version)
        bundle = load_bundle(found.path)
        return ServedModel.build(bundle, self.name, found.version, cache_size=self.cache_size)

    def _pointer_signature(self) -> tuple | None:
        try:
            st = self._need_registry().pointer_path(self.name).stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def pointer(self) -> dict[str, Any]:
        """The name's pointer file as stored: {"version": str|None, "history": [str]}."""
        path = self._need_registry().pointer_path(self.name)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {"version": None, "history": []}
        if not isinstance(data, dict):
            return {"version": None, "history": []}
        history = data.get("history") if isinstance(data.get("history"), list) else []
        version = data.get("version")
        return {"version": version if isinstance(version, str) else None, "history": [str(v) for v in history]}

    def _change(self, load: Callable[[], ServedModel]) -> tuple[ServedModel, ServedModel]:
        """Run `load` (which may move the registry's pointer) under the lock and swap its
        model in; returns (previous, new). On failure the old model keeps serving and the
        reason is kept in `last_error`."""
        with self._lock:
            try:
                new = load()
            except MovierecError as exc:
                self.last_error = str(exc)
                raise
            if self.registry is not None:
                self._signature = self._pointer_signature()
            self.last_error = None
            return self._swap(new), new

    def reload(self) -> tuple[ServedModel, ServedModel]:
        """Load the version the registry's pointer names (the folder again, for a bundle
        folder) and swap it in; returns (previous, new). On failure the old one keeps serving."""

        def load() -> ServedModel:
            if self.registry is None:
                bundle = load_bundle(self.source)
                return ServedModel.build(bundle, self.name, bundle.version, cache_size=self.cache_size)
            return self._load(None)

        return self._change(load)

    def promote(self, version: str) -> tuple[ServedModel, ServedModel]:
        """Load `version`, make it the registry's current one, and serve it; returns
        (previous, new). A version that fails to load is refused; nothing changes."""
        registry = self._need_registry()

        def load() -> ServedModel:
            new = self._load(version)
            registry.promote(self.name, new.version)
            return new

        return self._change(load)

    def rollback(self) -> tuple[ServedModel, ServedModel]:
        """Serve the previously current version again and move the registry's pointer back;
        returns (previous, new). A version that fails to load is refused; nothing changes."""
        registry = self._need_registry()

        def load() -> ServedModel:
            history = self.pointer()["history"]
            if not history:
                raise RegistryError(f"Model {self.name!r} has no earlier version to roll back to.")
            new = self._load(history[-1])
            moved = registry.rollback(self.name)
            if moved.version != new.version:  # the pointer moved meanwhile: serve what it names
                new = self._load(moved.version)
            return new

        return self._change(load)

    # -- watching -------------------------------------------------------------------------
    def poll(self) -> bool:
        """Swap in the version the pointer names if it changed since the last look;
        returns whether the model was swapped. A version that fails to load is recorded
        in `last_error` and tried again only when the pointer changes again."""
        if self.registry is None:
            return False
        signature = self._pointer_signature()
        if signature == self._signature:
            return False
        with self._lock:
            signature = self._pointer_signature()
            if signature == self._signature:
                return False
            self._signature = signature
            wanted = self.pointer()["version"]
            if wanted is None or wanted == self._current.version:
                return False
            try:
                new = self._load(wanted)
            except MovierecError as exc:
                self.last_error = str(exc)
                return False
            self.last_error = None
            self._swap(new)
            return True

    def start_watching(self, interval: float) -> None:
        """Poll the pointer every `interval` seconds in a daemon thread (no-op for a bundle
        folder or interval <= 0)."""
        if self.registry is None or interval <= 0 or self._thread is not None:
            return
        self._stop.clear()

        def loop() -> None:
            while not self._stop.wait(interval):
                try:
                    self.poll()
                except Exception as exc:  # keep watching whatever happens to one poll
                    self.last_error = f"Watching the registry failed: {exc}."

        self._thread = threading.Thread(target=loop, name="movierec-registry-watch", daemon=True)
        self._thread.start()

    def stop_watching(self) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=5)


__all__ = ["ServedModel", "ModelServer", "CACHE_SIZE"]
