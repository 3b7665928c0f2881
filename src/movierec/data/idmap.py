"""IdMap: the one place where raw MovieLens IDs become contiguous indices and back."""

from __future__ import annotations

from typing import Callable, Iterable

import numpy as np
import pandas as pd

from movierec.errors import UnknownIdError

#: lookups of at most this many IDs go through a dict (built on first use) instead of pandas
_FEW = 64


class IdMap:
    """A bijection between raw IDs (ints or strings) and indices `0..n-1`.

    Raw IDs are kept sorted, so the index order is stable and reproducible.
    All lookups are vectorised.
    """

    def __init__(self, raw_ids: Iterable, *, kind: str = "id", error: type[UnknownIdError] = UnknownIdError):
        arr = np.asarray(raw_ids if not isinstance(raw_ids, pd.Index) else raw_ids.to_numpy())
        if arr.ndim != 1:
            raise ValueError("raw_ids must be one-dimensional")
        index = pd.Index(arr)
        if not index.is_unique:
            index = index.unique()
        if not index.is_monotonic_increasing:
            index = index.sort_values()
        self._index = index
        self.kind = kind
        self.error = error
        self._positions: dict | None = None

    @classmethod
    def from_values(cls, values: np.ndarray, **kwargs) -> tuple["IdMap", np.ndarray]:
        """Build a map from observed raw values and return it with their int32 indices."""
        values = np.asarray(values)
        dense = _dense_factorize(values)
        codes, uniques = dense if dense is not None else pd.factorize(values, sort=True)
        return cls.from_factorized(codes, uniques, **kwargs)

    @classmethod
    def from_factorized(cls, codes: np.ndarray, uniques: np.ndarray, **kwargs) -> tuple["IdMap", np.ndarray]:
        """A map over `uniques` (sorted, distinct raw IDs) with `codes` as int32 indices into it,
        as `from_values` returns them (`factorize_chunks` gives such a pair)."""
        idmap = cls.__new__(cls)
        idmap._index = pd.Index(uniques)
        idmap.kind = kwargs.get("kind", "id")
        idmap.error = kwargs.get("error", UnknownIdError)
        idmap._positions = None
        return idmap, codes.astype(np.int32, copy=False)

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, raw_id) -> bool:
        return raw_id in self._index

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IdMap) and self._index.equals(other._index)

    def __repr__(self) -> str:
        return f"IdMap({self.kind}, n={len(self)})"

    @property
    def raw_ids(self) -> np.ndarray:
        """All raw IDs, in index order, shape (n,)."""
        return self._index.to_numpy()

    def lookup(self, raw_ids, *, missing: str = "raise") -> np.ndarray:
        """Raw IDs -> int64 indices.

        Args:
            raw_ids: a scalar or array of raw IDs.
            missing: "raise" raises the map's UnknownIdError naming the unknown IDs;
                "mask" returns -1 for them.
        """
        values = np.atleast_1d(np.asarray(raw_ids))
        if len(values) <= _FEW and values.ndim == 1:
            found = self._lookup_few(values)
            if found is not None:
                return found
        original = values  # shown in errors as given (a text ID never becomes "nan")
        if values.dtype.kind in "iu" and self._index.dtype.kind == "O":
            values = values.astype(str)
        elif values.dtype.kind in "OUS" and self._index.dtype.kind in "iu":
            coerced = pd.to_numeric(pd.Series(values), errors="coerce")
            values = coerced.to_numpy()
        idx = self._index.get_indexer(values)
        if missing == "raise" and (idx < 0).any():
            bad = original[idx < 0]
            shown = ", ".join(f"'{v}'" if isinstance(v, str) else str(v) for v in bad[:5])
            shown += " ..." if len(bad) > 5 else ""
            raise self.error(f"Unknown {self.kind} ID{'s' if len(bad) > 1 else ''}: {shown}.")
        return idx.astype(np.int64, copy=False)

    def position(self, raw_id) -> int:
        """One raw ID's index, or -1 when the map does not hold it (no coercion between
        text and numbers: see `lookup` for that)."""
        positions = getattr(self, "_positions", None)
        if positions is None:
            positions = self._positions = {v: i for i, v in enumerate(self._index.tolist())}
        try:
            return positions.get(raw_id, -1)
        except TypeError:  # unhashable
            return -1

    def _lookup_few(self, values: np.ndarray) -> np.ndarray | None:
        """A handful of known IDs through a dict (a service looks up one user or a few
        movies per request; pandas' indexer costs tens of microseconds per call). None
        when an ID is unknown or of another kind than the map's: the general path then
        coerces it or names it in the error."""
        kind = self._index.dtype.kind
        if not ((values.dtype.kind in "iu" and kind in "iu") or (values.dtype.kind in "OU" and kind == "O")):
            return None
        positions = getattr(self, "_positions", None)
        if positions is None:
            positions = self._positions = {v: i for i, v in enumerate(self._index.tolist())}
        try:
            return np.fromiter((positions[v] for v in values.tolist()), dtype=np.int64, count=len(values))
        except (KeyError, TypeError):
            return None

    def index_of(self, raw_id) -> int:
        """One raw ID -> its index."""
        return int(self.lookup([raw_id])[0])

    def raw(self, indices) -> np.ndarray:
        """Indices -> raw IDs."""
        return self._index.to_numpy()[np.asarray(indices)]

    def to_list(self) -> list:
        return self._index.tolist()


def _dense_factorize(values: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """pd.factorize(values, sort=True) for integers spanning a small range, without hashing.

    MovieLens IDs are dense-ish positive integers; a presence table over [min, max] gives sorted
    uniques and int32 codes in two linear passes (several times faster than a hash table on
    25M values). Returns None when `values` are not integers or span too wide a range.
    """
    if values.dtype.kind not in "iu" or values.ndim != 1 or len(values) == 0:
        return None
    low, high = int(values.min()), int(values.max())
    if high >= 2**63:  # uint64 beyond int64: leave to pandas
        return None
    if 0 <= low and high < max(2 * len(values), 1 << 20):
        low = 0  # index the table by the raw value itself: no shifted copy of `values`
    span = high - low + 1
    if span > max(2 * len(values), 1 << 20) or span > 1 << 28:
        return None
    offsets = values - low if low != 0 else values
    present = np.zeros(span, dtype=bool)
    present[offsets] = True
    lookup = np.cumsum(present, dtype=np.int32) - 1
    uniques = (np.flatnonzero(present) + low).astype(values.dtype, copy=False)
    return lookup[offsets], uniques


#: `factorize_chunks` never makes a presence table over more than this many IDs (256 MiB)
MAX_SPAN = 1 << 28


def factorize_chunks(chunks: list[np.ndarray], empty: Callable[[int, type], np.ndarray] = np.empty
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Integer raw IDs held in pieces -> (int32 codes shape (n,), sorted int64 uniques).

    Exactly `pd.factorize(np.concatenate(chunks), sort=True)` (what `IdMap.from_values`
    gives), without concatenating: a CSV reader hands over its parsed blocks. IDs spanning a
    range of at most twice their count (at least 2**20, at most MAX_SPAN), as MovieLens'
    users and movies do, are marked in a dense presence table (one pass), which gives the
    sorted uniques; each ID's code is then its value minus the lowest ID when no ID in
    between is missing, else a lookup in the table's running count (a second pass), each
    block written straight into its place in the codes. Wider or sparser IDs go through
    `pd.factorize` (a hash table) over the concatenated IDs.

    Args:
        chunks: 1-d arrays of signed integer IDs (any width), in order.
        empty: allocates the codes, `empty(n, np.int32)` (a reader passes one drawing on its
            memory pool).
    """
    n = sum(len(c) for c in chunks)
    chunks = [c for c in chunks if len(c)]
    if not chunks:
        return np.zeros(0, np.int32), np.zeros(0, np.int64)
    if any(c.dtype.kind != "i" for c in chunks):
        raise TypeError(f"factorize_chunks takes signed integer IDs, not {chunks[0].dtype}")
    low, high = min(int(c.min()) for c in chunks), max(int(c.max()) for c in chunks)
    limit = min(max(2 * n, 1 << 20), MAX_SPAN)
    if high - low >= limit:  # too sparse for a table
        values = np.concatenate([c.astype(np.int64, copy=False) for c in chunks])
        codes, uniques = pd.factorize(values, sort=True)
        return codes.astype(np.int32, copy=False), uniques.astype(np.int64, copy=False)
    base = 0 if 0 <= low and high < limit else low  # index the table by the ID itself when it can
    present = np.zeros(high - base + 1, dtype=bool)
    for c in chunks:
        present[c if base == 0 else c - base] = True
    uniques = np.flatnonzero(present)
    first = int(uniques[0])
    lookup = None if int(uniques[-1]) - first + 1 == len(uniques) else np.cumsum(present, dtype=np.int32) - 1
    codes = empty(n, np.int32)
    offset = 0
    for c in chunks:
        out = codes[offset: offset + len(c)]
        if lookup is None:  # IDs first..last, each present: code = ID - first
            np.subtract(c, first + base, out=out, casting="unsafe")
        else:
            np.take(lookup, c if base == 0 else c - base, out=out, mode="clip")  # all in range: no check
        offset += len(c)
    return codes, (uniques + base).astype(np.int64, copy=False)
