"""Dataset: interactions as compact arrays, the user and item IdMaps, the movie catalog."""

from __future__ import annotations

import gc
import hashlib
import re
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Callable, ClassVar, Hashable, Iterator, TypeVar

import numpy as np
import pandas as pd
import scipy.sparse as sp

from movierec.data.idmap import IdMap

T = TypeVar("T")

#: articles MovieLens moves to the end of a title ("Godfather, The"), in the languages it uses
_ARTICLES = ("The", "A", "An", "Les", "La", "Le", "L'", "Il", "Das", "Der", "Die", "El", "Los", "Las")
_TRAILING_ARTICLE = re.compile(r"^(?P<title>.+), (?P<article>" + "|".join(re.escape(a) for a in _ARTICLES) + r")$")


def natural_title(title: str) -> str:
    """A MovieLens title with its trailing article moved to the front: "Godfather, The" -> "The Godfather"."""
    m = _TRAILING_ARTICLE.match(title)
    if not m:
        return title
    article = m.group("article")
    return f"{article}{'' if article.endswith(chr(39)) else ' '}{m.group('title')}"


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off while many small containers are made at once.

    Tens of thousands of new lists set off full collections, each a walk over every object
    the process holds (pandas, pyarrow ...): 50-70 ms for an empty catalog of ml-25m's
    59,047 movies instead of 9 ms. The lists hold no cycles; the collector is on again
    (if it was) when the block ends.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@dataclass(eq=False)
class Catalog:
    """Movie metadata aligned with an item IdMap: row i describes item index i.

    Attributes:
        titles: shape (n_items,), titles without the year suffix where one was parsed.
        years: shape (n_items,), release year or -1 when unknown.
        genres: list of genre lists, one per item.
        genre_names: the genre vocabulary, in multi-hot column order.
        genre_matrix: uint8 multi-hot, shape (n_items, n_genres).
        tags: one text per item (its users' tags joined by " ; ", "" when none), or None
            when the source has no tags (only ml-latest-small's `tags.csv` so far).
    """

    titles: np.ndarray
    years: np.ndarray
    genres: list[list[str]]
    genre_names: list[str]
    genre_matrix: np.ndarray
    tags: list[str] | None = None

    @classmethod
    def empty(cls, n_items: int) -> "Catalog":
        with _collector_paused():  # one new list per movie: 59,047 at ml-25m's size
            genres: list[list[str]] = [[] for _ in range(n_items)]
        return cls(
            titles=np.array([""] * n_items, dtype=object),
            years=np.full(n_items, -1, dtype=np.int32),
            genres=genres,
            genre_names=[],
            genre_matrix=np.zeros((n_items, 0), dtype=np.uint8),
        )

    @classmethod
    def from_frame(cls, items: IdMap, frame: pd.DataFrame) -> "Catalog":
        """Align a frame with columns item_id, title, year, genres (list) to `items`.

        Items with no row get an empty title and no genres.
        """
        n = len(items)
        catalog = cls.empty(n)
        if frame is None or frame.empty:
            return catalog
        pos = items.lookup(frame["item_id"].to_numpy(), missing="mask")
        keep = pos >= 0
        frame, pos = frame[keep], pos[keep]
        catalog.titles[pos] = frame["title"].to_numpy(dtype=object)
        catalog.years[pos] = frame["year"].to_numpy(dtype=np.int32)
        genre_lists = frame["genres"].tolist()
        names = sorted({g for gl in genre_lists for g in gl})
        col = {g: j for j, g in enumerate(names)}
        matrix = np.zeros((n, len(names)), dtype=np.uint8)
        genres: list[list[str]] = [[] for _ in range(n)]
        for p, gl in zip(pos.tolist(), genre_lists):
            genres[p] = list(gl)
            for g in gl:
                matrix[p, col[g]] = 1
        catalog.genres, catalog.genre_names, catalog.genre_matrix = genres, names, matrix
        if "tags" in frame.columns:  # optional: only sources with tags have the column
            tags = [""] * n
            for p, text in zip(pos.tolist(), frame["tags"].tolist()):
                tags[p] = text if isinstance(text, str) else ""
            catalog.tags = tags
        return catalog

    def has_titles(self) -> bool:
        """Whether any movie has a title (a catalog read without a movies file has none)."""
        return bool(len(self.titles)) and any(bool(t) for t in self.titles)

    def label(self, index: int) -> str:
        """'Title (year)' as the dataset spells it (MovieLens: "Godfather, The")."""
        title = self.titles[index] or "?"
        year = int(self.years[index])
        return f"{title} ({year})" if year > 0 else str(title)

    def display_label(self, index: int) -> str:
        """'Title (year)' for a sentence: a trailing article moved to the front ("The Godfather")."""
        title = natural_title(str(self.titles[index] or "?"))
        year = int(self.years[index])
        return f"{title} ({year})" if year > 0 else title

    def to_frame(self, items: IdMap) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "item_id": items.raw_ids,
                "title": self.titles,
                "year": self.years,
                "genres": ["|".join(g) for g in self.genres],
            }
        )


@dataclass(eq=False)
class Dataset:
    """Ratings (or implicit interactions) with the ID maps and metadata they refer to.

    Interactions are parallel arrays of equal length n:
    `user_idx` int32 and `item_idx` int32 (indices into `users` / `items`),
    `rating` float32, `timestamp` int64 (Unix seconds; zeros when the source has none,
    with `has_timestamps` False).

    Splits produce Datasets that share the parent's IdMaps, catalog and user features,
    so indices mean the same thing in train and test.
    """

    name: str
    users: IdMap
    items: IdMap
    user_idx: np.ndarray
    item_idx: np.ndarray
    rating: np.ndarray
    timestamp: np.ndarray
    catalog: Catalog | None = None
    user_features: pd.DataFrame | None = None
    has_timestamps: bool = True
    rating_scale: tuple[float, float] | None = None
    #: where the whole dataset was read from (`movierec.data.source`); None for a part
    #: (a split) or data built in Python, which cannot be read again
    source: dict | None = None
    _csr: sp.csr_matrix | None = field(default=None, repr=False)

    #: `memo` keeps at most this many derived values per Dataset object (the most recently
    #: used) ...
    MEMO_SIZE: ClassVar[int] = 8
    #: ... and drops the oldest while their arrays take more than this many bytes (the
    #: latest value is always kept): 8 EASE weight matrices of ML-100K (11 MB each), 2 of
    #: ml-latest-small (378 MB each)
    MEMO_BYTES: ClassVar[int] = 768 * 2**20

    def __post_init__(self) -> None:
        n = len(self.user_idx)
        for arr_name in ("item_idx", "rating", "timestamp"):
            if len(getattr(self, arr_name)) != n:
                raise ValueError(f"{arr_name} has a different length than user_idx")
        if self.catalog is None:
            self.catalog = Catalog.empty(len(self.items))
        if self.rating_scale is None and n:
            self.rating_scale = (float(self.rating.min()), float(self.rating.max()))

    # sizes -------------------------------------------------------------------------
    @property
    def n_users(self) -> int:
        """Users in the ID map (shared by every split of this dataset)."""
        return len(self.users)

    @property
    def n_items(self) -> int:
        return len(self.items)

    @property
    def n_ratings(self) -> int:
        return len(self.user_idx)

    def __len__(self) -> int:
        return self.n_ratings

    def __repr__(self) -> str:
        return (
            f"Dataset({self.name!r}, ratings={self.n_ratings:,}, users={self.n_users:,}, "
            f"items={self.n_items:,})"
        )

    # views -------------------------------------------------------------------------
    def subset(self, selector: np.ndarray, name: str | None = None) -> "Dataset":
        """The interactions picked by a boolean mask or index array, same IdMaps and metadata."""
        return replace(
            self,
            name=name or self.name,
            user_idx=self.user_idx[selector],
            item_idx=self.item_idx[selector],
            rating=self.rating[selector],
            timestamp=self.timestamp[selector],
            source=None,  # a part of the data is not what its source reads
            _csr=None,
        )

    def to_csr(self, values: str = "rating") -> sp.csr_matrix:
        """users x items sparse matrix (rows: user index, columns: item index).

        Args:
            values: "rating" for the ratings, "ones" for a binary matrix.
        """
        if values == "rating" and self._csr is not None:
            return self._csr
        data = self.rating if values == "rating" else np.ones(self.n_ratings, dtype=np.float32)
        m = sp.csr_matrix(
            (data.astype(np.float32, copy=False), (self.user_idx, self.item_idx)),
            shape=(self.n_users, self.n_items),
        )
        m.sum_duplicates()
        if values == "rating":
            self._csr = m
        return m

    def to_frame(self, raw_ids: bool = True) -> pd.DataFrame:
        """Interactions as a DataFrame with columns user, item, rating, timestamp."""
        if raw_ids:
            users, items = self.users.raw(self.user_idx), self.items.raw(self.item_idx)
        else:
            users, items = self.user_idx, self.item_idx
        return pd.DataFrame(
            {"user": users, "item": items, "rating": self.rating, "timestamp": self.timestamp}
        )

    def user_counts(self) -> np.ndarray:
        """Interactions per user index, shape (n_users,)."""
        return np.bincount(self.user_idx, minlength=self.n_users)

    def item_counts(self) -> np.ndarray:
        """Interactions per item index, shape (n_items,)."""
        return np.bincount(self.item_idx, minlength=self.n_items)

    def active_users(self) -> np.ndarray:
        """Indices of users with at least one interaction here."""
        return np.flatnonzero(self.user_counts())

    def memo(self, key: Hashable, compute: Callable[[], T]) -> T:
        """A value derived from this Dataset's interactions, computed once per key.

        Fitting again on the same Dataset object (every tuning trial does) reuses it, e.g.
        EASE's item-item weights for one regularization. The memo belongs to this object:
        it keeps the most recently used values (at most `MEMO_SIZE`, and `MEMO_BYTES` by
        their `nbytes`), is freed with the Dataset, is not pickled, and a Dataset made
        from this one (`subset`, `replace`) starts without it. Callers must treat the
        value as read-only and put in `key` everything besides the interactions that it
        depends on.

        Args:
            key: hashable, names the value and its parameters, e.g. ("ease.weights", 250.0).
            compute: makes the value when it is not kept.
        """
        store: OrderedDict[Hashable, Any] = self.__dict__.setdefault("_memo", OrderedDict())
        try:
            store.move_to_end(key)
            return store[key]
        except KeyError:
            pass
        value = compute()
        store[key] = value

        def too_big() -> bool:
            size = sum(int(getattr(v, "nbytes", 0)) for v in list(store.values()))
            return len(store) > self.MEMO_SIZE or (len(store) > 1 and size > self.MEMO_BYTES)

        while too_big():
            try:
                store.popitem(last=False)
            except KeyError:  # emptied by another thread meanwhile
                break
        return value

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_memo", None)  # a cache, not data
        return state

    def fingerprint(self) -> str:
        """sha256 over the interactions and ID maps: equal data, equal fingerprint."""
        h = hashlib.sha256()
        for arr in (self.user_idx, self.item_idx, self.rating, self.timestamp):
            h.update(np.ascontiguousarray(arr).tobytes())
        for idmap in (self.users, self.items):
            h.update(pd.util.hash_array(np.asarray(idmap.raw_ids, dtype=object)).tobytes())
        return h.hexdigest()
