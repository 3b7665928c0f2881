"""`VectorIndex`: top-k maximum-inner-product search over item vectors, with FAISS.

Kinds:

* ``exact``: brute force, exact: one BLAS matrix product with the masks applied, as the
  models rank (a FAISS flat index is kept for the GPU, where it answers batches).
* ``ivf``: an inverted file (`IndexIVFFlat`) whose k-means quantizer is trained on the
  item vectors; searched with inner products directly.
* ``hnsw``: a graph (`IndexHNSWFlat`, L2) over a MIPS-to-cosine transform: FAISS' HNSW
  is unreliable on raw inner products (not a metric), so each item vector x becomes the
  unit vector ``[x, sqrt(M^2 - |x|^2)] / M`` and a query q becomes ``[q, 0] / |q|``,
  whose L2 order is exactly the order of ``q . x``. A single M crowds short vectors near
  one pole and the graph degrades, so items are split into strata of similar norm, each
  with its own M and graph (norm-ranging), all searched. Vectors of equal norm need no
  transform (one inner-product graph).
* ``auto``: exact up to `AUTO_EXACT_MAX_ITEMS` movies, IVF above.

Every search over-fetches candidates (more for rows with many excluded movies), drops
excluded and disallowed movies, and re-scores the survivors exactly with the original
vectors (for IVF, whose lists already come ranked by the true dot product, only each
row's best k survivors), so the returned scores are the dot products ``q . x`` and an
approximate index only risks missing a movie, never mis-scoring one. A row left with
fewer movies than it is owed is answered by an exact scan. IVF's `nprobe` and HNSW's `efSearch` are tuned at
build time to the smallest value whose recall@`recall_k` on sample queries reaches
`target_recall`.

A single query runs with one OpenMP thread (and BLAS limited to one thread); batches use
every core. FAISS GPU is used for batches of exact and IVF searches when FAISS sees a GPU.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

import faiss
import numpy as np
import scipy.sparse as sp

from movierec.errors import ConfigError
from movierec.ranking import rank_top_k

#: index kinds `VectorIndex.build` accepts
KINDS = ("auto", "exact", "ivf", "hnsw")
#: `kind="auto"` builds an exact index up to this many movies and IVF above
AUTO_EXACT_MAX_ITEMS = 50_000
#: version of the serialised header (`VectorIndex.header`)
HEADER_FORMAT = 1
#: default candidates fetched per row, as a multiple of k (plus the row's excluded movies)
DEFAULT_OVERFETCH = 2.0
#: nprobe / efSearch values tried at build time, smallest first
_NPROBES = (1, 2, 4, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512)
_EF_SEARCH = (16, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024)
#: elements gathered at once when re-scoring candidates (bounds memory on batches)
_RESCORE_CHUNK = 4_000_000

_BLAS = None


def _blas_controller():
    """A cached threadpoolctl controller (building one scans the loaded libraries)."""
    global _BLAS
    if _BLAS is None:
        from threadpoolctl import ThreadpoolController

        _BLAS = ThreadpoolController()
    return _BLAS


_BLAS_LOCK = threading.Lock()
_BLAS_DEPTH = 0
_BLAS_LIMITER: Any = None


@contextmanager
def single_thread() -> Iterator[None]:
    """Run the block with one OpenMP thread in FAISS and one BLAS thread; restored after.

    For single queries: spinning up a thread team costs more than the query itself, and
    one thread per query lets a server answer as many queries at once as it has cores.
    FAISS' OpenMP setting belongs to the calling thread; the BLAS limit is process-wide,
    so it is taken by the first of concurrent blocks and given back by the last.
    """
    global _BLAS_DEPTH, _BLAS_LIMITER
    previous = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    with _BLAS_LOCK:
        if _BLAS_DEPTH == 0:
            _BLAS_LIMITER = _blas_controller().limit(limits=1, user_api="blas")
        _BLAS_DEPTH += 1
    try:
        yield
    finally:
        with _BLAS_LOCK:
            _BLAS_DEPTH -= 1
            if _BLAS_DEPTH == 0:
                _BLAS_LIMITER.restore_original_limits()
                _BLAS_LIMITER = None
        faiss.omp_set_num_threads(previous)


def vectors_checksum(vectors: np.ndarray) -> str:
    """sha256 of a float32 C-contiguous copy of `vectors` (identifies what an index was built on)."""
    arr = np.ascontiguousarray(vectors, dtype=np.float32)
    h = hashlib.sha256()
    h.update(str(arr.shape).encode())
    h.update(memoryview(arr).cast("B"))
    return h.hexdigest()


@dataclass
class _Part:
    """One FAISS index and the transform its queries need.

    Attributes:
        index: the FAISS index; its labels are item indices.
        augment: queries get an extra 0 column and unit length (the MIPS transform).
    """

    index: Any
    augment: bool = False


@dataclass(eq=False)
class VectorIndex:
    """Top-k inner-product search over item vectors (see the module docstring).

    Build with `VectorIndex.build`; restore a saved one with `VectorIndex.from_bytes`.

    Attributes:
        kind: "exact", "ivf" or "hnsw" (never "auto": that is resolved at build time).
        items: the original item vectors, float32, shape (n_items, dim), item index order;
            candidates are re-scored with them.
        params: the build and search parameters (nlist, nprobe, hnsw_m, ef_search,
            strata, overfetch, ...), JSON values.
        header: what `to_bytes` writes beside the FAISS bytes: kind, params, dim,
            n_items, the item vectors' checksum, build seconds, tuned recall.
    """

    kind: str
    items: np.ndarray
    params: dict[str, Any]
    header: dict[str, Any] = field(default_factory=dict)
    _parts: list[_Part] = field(default_factory=list, repr=False)
    _gpu: list[Any] | None = field(default=None, repr=False)

    @property
    def dim(self) -> int:
        return int(self.items.shape[1])

    @property
    def n_items(self) -> int:
        return int(self.items.shape[0])

    # -- building --------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        item_vectors: np.ndarray,
        kind: str = "auto",
        *,
        nlist: int | None = None,
        nprobe: int | None = None,
        hnsw_m: int = 32,
        ef_search: int | None = None,
        ef_construction: int = 40,
        strata: int | None = None,
        overfetch: float = DEFAULT_OVERFETCH,
        target_recall: float = 0.99,
        recall_k: int = 100,
        tune_queries: np.ndarray | None = None,
        tune_exclude: sp.spmatrix | None = None,
        seed: int = 0,
    ) -> "VectorIndex":
        """Build an index over `item_vectors`.

        Args:
            item_vectors: shape (n_items, dim), item index order (e.g. `Embeddings.items`).
            kind: "auto", "exact", "ivf" or "hnsw".
            nlist: IVF lists (default about sqrt(n_items), at least 39 training vectors each).
            nprobe: IVF lists searched (default: tuned to `target_recall`).
            hnsw_m: HNSW links per node.
            ef_search: HNSW search breadth (default: tuned to `target_recall`).
            ef_construction: HNSW construction breadth.
            strata: HNSW norm strata (default 1 for vectors of equal norm, else 4).
            overfetch: candidates fetched per query, as a multiple of k (plus the row's
                excluded movies); the approximate kinds only.
            target_recall: recall@`recall_k` the tuning aims for.
            recall_k: the list length recall is tuned at (capped at n_items).
            tune_queries: sample queries for tuning, shape (m, dim), e.g. user vectors
                (default: a sample of the item vectors themselves).
            tune_exclude: items excluded for each tuning query (m x n_items CSR, e.g. the
                users' seen movies), so recall is measured on the lists actually served.
            seed: seeds the training sample, k-means and the tuning sample.

        Raises:
            ConfigError: for an unknown kind, empty or non-finite vectors, or parameters
                out of range.
        """
        items = np.ascontiguousarray(item_vectors, dtype=np.float32)
        if items.ndim != 2 or items.shape[0] == 0 or items.shape[1] == 0:
            raise ConfigError(f"An index needs a non-empty 2-D array of item vectors, got shape {items.shape}.")
        if not np.all(np.isfinite(items)):
            raise ConfigError("The item vectors hold NaN or infinite values; an index cannot be built on them.")
        if kind not in KINDS:
            raise ConfigError(f"Unknown index kind {kind!r}; choose one of {', '.join(KINDS)}.")
        if overfetch < 1:
            raise ConfigError(f"overfetch must be at least 1, got {overfetch}.")
        if not 0 < target_recall <= 1:
            raise ConfigError(f"target_recall must be in (0, 1], got {target_recall}.")
        n, d = items.shape
        if kind == "auto":
            kind = "exact" if n <= AUTO_EXACT_MAX_ITEMS else "ivf"
        started = time.perf_counter()
        params: dict[str, Any] = {"overfetch": float(overfetch), "seed": int(seed)}
        if kind == "exact":
            flat = faiss.IndexFlatIP(d)
            flat.add(items)
            parts = [_Part(flat)]
        elif kind == "ivf":
            nlist = int(nlist) if nlist is not None else max(1, min(int(round(math.sqrt(n))), n // 39))
            if not 1 <= nlist <= n:
                raise ConfigError(f"nlist must be between 1 and the number of items ({n}), got {nlist}.")
            rng = np.random.default_rng(seed)
            sample = items if n <= nlist * 64 else items[np.sort(rng.choice(n, nlist * 64, replace=False))]
            ivf = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, nlist, faiss.METRIC_INNER_PRODUCT)
            ivf.cp.seed = int(seed)
            ivf.train(sample)
            ivf.add(items)
            params["nlist"] = nlist
            parts = [_Part(ivf)]
        else:
            if hnsw_m < 2:
                raise ConfigError(f"hnsw_m must be at least 2, got {hnsw_m}.")
            parts, strata = _build_hnsw(items, int(hnsw_m), int(ef_construction), strata)
            params.update(hnsw_m=int(hnsw_m), ef_construction=int(ef_construction), strata=int(strata))
        index = cls(kind=kind, items=items, params=params, _parts=parts)
        tuned_recall = None
        if kind in ("ivf", "hnsw"):
            knob, given = ("nprobe", nprobe) if kind == "ivf" else ("ef_search", ef_search)
            if given is not None:
                if int(given) < 1:
                    raise ConfigError(f"{knob} must be at least 1, got {given}.")
                index._set_knob(int(given))
            else:
                tuned_recall = index._tune(knob, tune_queries, tune_exclude, target_recall, recall_k, seed)
        index.header = {
            "format": HEADER_FORMAT,
            "kind": kind,
            "dim": d,
            "n_items": n,
            "params": dict(index.params),
            "items_sha256": vectors_checksum(items),
            "build_seconds": round(time.perf_counter() - started, 4),
            "tuned": ({"target_recall": float(target_recall), "recall_k": int(min(recall_k, n)),
                       "recall": tuned_recall} if tuned_recall is not None else None),
            "faiss_version": faiss.__version__,
        }
        index._to_gpu()
        return index

    def _set_knob(self, value: int) -> None:
        if self.kind == "ivf":
            self._parts[0].index.nprobe = min(value, self.params["nlist"])
            self.params["nprobe"] = int(self._parts[0].index.nprobe)
        elif self.kind == "hnsw":
            for part in self._parts:
                _hnsw_of(part.index).efSearch = value
            self.params["ef_search"] = int(value)

    def _tune(self, knob: str, queries: np.ndarray | None, exclude: sp.spmatrix | None, target: float,
              recall_k: int, seed: int) -> float:
        """Set the smallest nprobe / efSearch whose recall@recall_k on sample queries
        (with their exclusions) reaches `target` (the largest tried when none does);
        returns the recall reached."""
        rng = np.random.default_rng(seed + 1)
        if queries is None:
            queries, exclude = self.items, None
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if queries.ndim != 2 or queries.shape[1] != self.dim:
            raise ConfigError(f"Tuning queries must have shape (m, {self.dim}), got {queries.shape}.")
        if exclude is not None:
            exclude = sp.csr_matrix(exclude)
            if exclude.shape != (len(queries), self.n_items):
                raise ConfigError(f"tune_exclude must be a {len(queries)} x {self.n_items} matrix, "
                                  f"got {exclude.shape}.")
        if len(queries) > 200:
            rows = np.sort(rng.choice(len(queries), 200, replace=False))
            queries = queries[rows]
            exclude = exclude[rows] if exclude is not None else None
        k = int(min(recall_k, self.n_items))
        truth, _ = rank_top_k(lambda r: queries[r] @ self.items.T, np.arange(len(queries)), self.n_items, k,
                              exclude)
        ex_indptr, ex_indices = _exclusions(exclude, len(queries), self.n_items)
        values = _NPROBES if knob == "nprobe" else _EF_SEARCH
        if knob == "nprobe":
            values = [v for v in values if v < self.params["nlist"]] + [self.params["nlist"]]
        recall = 0.0
        for value in values:
            self._set_knob(value)
            found, _ = self._search(queries, k, ex_indptr, ex_indices, None, None, fallback=False)
            recall = _recall(found, truth)
            if recall >= target:
                break
        return float(recall)

    def _to_gpu(self) -> None:
        """Mirror exact and IVF indexes on the GPUs FAISS sees (used for batches)."""
        self._gpu = None
        if self.kind == "hnsw" or not hasattr(faiss, "index_cpu_to_all_gpus"):
            return
        try:
            if faiss.get_num_gpus() > 0:
                self._gpu = [faiss.index_cpu_to_all_gpus(part.index) for part in self._parts]
        except (RuntimeError, AttributeError):  # a GPU FAISS that cannot start: stay on the CPU
            self._gpu = None

    # -- searching -------------------------------------------------------------------
    def search(
        self,
        queries: np.ndarray,
        k: int,
        exclude: sp.spmatrix | Sequence[np.ndarray] | None = None,
        allowed: np.ndarray | None = None,
        overfetch: float | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k items by inner product for each query, exactly re-scored.

        Args:
            queries: shape (n, dim) (or (dim,) for one query), in the items' vector space.
            k: list length (>= 1).
            exclude: item indices to leave out per query: a CSR matrix with one row per
                query (n x n_items; its non-zeros are excluded) or n arrays of indices.
            allowed: boolean mask over items, shape (n_items,), of items that may be
                returned (None: all).
            overfetch: candidates per query as a multiple of k (default: the index's).

        Returns:
            (indices, scores), each shape (n, min(k, n_items)), best first; scores are
            the exact dot products, float32. A row with fewer allowed items than k is
            padded with index -1 and score -inf.
        """
        q = np.ascontiguousarray(queries, dtype=np.float32)
        if q.ndim == 1:
            q = q[None, :]
        if q.ndim != 2 or q.shape[1] != self.dim:
            raise ConfigError(f"Queries must have {self.dim} columns (the index's dimension), got shape {q.shape}.")
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ConfigError(f"k must be a positive whole number, got {k!r}.")
        n, n_items = len(q), self.n_items
        kk = min(int(k), n_items)
        ex_indptr, ex_indices = _exclusions(exclude, n, n_items)
        if allowed is not None:
            allowed = np.asarray(allowed, dtype=bool)
            if allowed.shape != (n_items,):
                raise ConfigError(f"allowed must be a mask over the {n_items} items, got shape {allowed.shape}.")
        if n == 1:
            with single_thread():
                return self._search(q, kk, ex_indptr, ex_indices, allowed, overfetch)
        return self._search(q, kk, ex_indptr, ex_indices, allowed, overfetch)

    def _search(self, q: np.ndarray, k: int, ex_indptr: np.ndarray, ex_indices: np.ndarray,
                allowed: np.ndarray | None, overfetch: float | None,
                fallback: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """`search` on checked inputs; `fallback=False` (tuning) leaves short rows short."""
        n, n_items = len(q), self.n_items
        out_idx = np.full((n, k), -1, dtype=np.int64)
        out_val = np.full((n, k), -np.inf, dtype=np.float32)
        n_ex = np.diff(ex_indptr)
        # how many items each row is owed: min(k, allowed items not excluded)
        ex_rows = np.repeat(np.arange(n), n_ex)
        ex_allowed = np.ones(len(ex_indices), dtype=bool) if allowed is None else allowed[ex_indices]
        n_allowed = n_items if allowed is None else int(allowed.sum())
        owed = np.minimum(k, n_allowed - np.bincount(ex_rows[ex_allowed], minlength=n))
        n_disallowed = n_items - n_allowed
        if n_disallowed * 2 > n_items or (self.kind == "exact" and self._gpu is None):
            # an exact index on the CPU, or most items disallowed: one BLAS product and
            # masks, as the models rank (FAISS' flat search is slow for large k)
            brute = np.ones(n, dtype=bool)
        else:
            factor = 1.0 if self.kind == "exact" else float(overfetch or self.params.get("overfetch", DEFAULT_OVERFETCH))
            need = np.ceil(k * factor).astype(np.int64) + n_ex + n_disallowed
            fetch = np.minimum(n_items, 1 << np.ceil(np.log2(np.maximum(need, 1))).astype(np.int64))
            brute = np.zeros(n, dtype=bool)
            for c in np.unique(fetch):
                rows = np.flatnonzero(fetch == c)
                cand = self._candidates(q[rows], int(c))
                self._filter_rescore(q, rows, cand, k, ex_indptr, ex_indices, allowed, out_idx, out_val)
            brute = ((out_idx >= 0).sum(axis=1) < owed) & fallback
        if brute.any():
            rows = np.flatnonzero(brute)
            exclude = sp.csr_matrix((np.ones(len(ex_indices), dtype=np.float32), ex_indices, ex_indptr),
                                    shape=(n, n_items))
            idx, val = rank_top_k(lambda r: q[r] @ self.items.T, rows, n_items, k, exclude, allowed)
            out_idx[rows], out_val[rows] = idx, val
        return out_idx, out_val

    def _candidates(self, q: np.ndarray, c: int) -> np.ndarray:
        """Candidate item indices, shape (n, c * parts), -1 where the index found fewer."""
        found = []
        use_gpu = self._gpu is not None and len(q) > 1 and c <= 2048  # FAISS GPU searches return <= 2048
        for j, part in enumerate(self._parts):
            query = _augment_queries(q) if part.augment else q
            target = self._gpu[j] if use_gpu else part.index
            found.append(target.search(query, min(c, part.index.ntotal))[1])
        return found[0] if len(found) == 1 else np.concatenate(found, axis=1)

    def _filter_rescore(self, q: np.ndarray, rows: np.ndarray, cand: np.ndarray, k: int, ex_indptr: np.ndarray,
                        ex_indices: np.ndarray, allowed: np.ndarray | None, out_idx: np.ndarray,
                        out_val: np.ndarray) -> None:
        """Drop excluded/disallowed candidates of `rows`, score the rest exactly, keep the top k."""
        n_items = self.n_items
        valid = cand >= 0
        # the exclusions of THESE rows only: other rows of the batch (other fetch groups)
        # may exclude movies while none of these does, and then there is nothing to drop
        counts = ex_indptr[rows + 1] - ex_indptr[rows]
        n_group_ex = int(counts.sum())
        if n_group_ex:
            # positions in ex_indices of each row's exclusions, rows in order (one gather)
            offsets = np.cumsum(counts) - counts
            sel = np.repeat(ex_indptr[rows] - offsets, counts) + np.arange(n_group_ex, dtype=np.int64)
            ex_keys = np.repeat(np.arange(len(rows), dtype=np.int64), counts) * n_items + ex_indices[sel]
            keys = np.arange(len(rows), dtype=np.int64)[:, None] * n_items + np.where(valid, cand, 0)
            # ex_keys is sorted (rows in order, each row's indices sorted): binary search
            pos = np.minimum(np.searchsorted(ex_keys, keys), len(ex_keys) - 1)
            valid &= ex_keys[pos] != keys
        if allowed is not None:
            valid &= allowed[np.where(valid, cand, 0)]
        if self.kind != "hnsw" and cand.shape[1] > k:
            # flat and IVF lists come best first by the true dot product: only each row's
            # first k surviving candidates can make its list, so only they are re-scored
            first = np.argsort(~valid, axis=1, kind="stable")[:, :k]
            cand, valid = np.take_along_axis(cand, first, axis=1), np.take_along_axis(valid, first, axis=1)
        c = cand.shape[1]
        step = max(1, _RESCORE_CHUNK // max(c * self.dim, 1))
        for start in range(0, len(rows), step):
            stop = min(start + step, len(rows))
            ids = np.where(valid[start:stop], cand[start:stop], 0)
            qq = q[rows[start:stop]]
            scores = np.einsum("nd,ncd->nc", qq, self.items[ids]).astype(np.float32, copy=False)
            scores[~valid[start:stop]] = -np.inf
            kk = min(k, c)
            if kk < c:
                part = np.argpartition(-scores, kk - 1, axis=1)[:, :kk]
            else:
                part = np.broadcast_to(np.arange(c), scores.shape).copy()
            vals = np.take_along_axis(scores, part, axis=1)
            order = np.argsort(-vals, axis=1, kind="stable")
            top = np.take_along_axis(part, order, axis=1)
            vals = np.take_along_axis(vals, order, axis=1)
            idx = np.take_along_axis(ids, top, axis=1)
            finite = np.isfinite(vals)
            block = rows[start:stop]
            out_idx[block, :kk] = np.where(finite, idx, -1)
            out_val[block, :kk] = np.where(finite, vals, -np.inf)

    # -- saving ----------------------------------------------------------------------
    def to_bytes(self) -> tuple[bytes, dict[str, Any]]:
        """(FAISS bytes of every part, header JSON object) for saving; see `from_bytes`."""
        blobs = [faiss.serialize_index(part.index).tobytes() for part in self._parts]
        header = {**self.header, "params": dict(self.params), "parts": [len(b) for b in blobs],
                  "augment": [bool(p.augment) for p in self._parts]}
        return b"".join(blobs), header

    @classmethod
    def from_bytes(cls, data: bytes, header: dict[str, Any], items: np.ndarray) -> "VectorIndex":
        """Restore an index written by `to_bytes` over the same item vectors.

        Args:
            data: the FAISS bytes.
            header: the header written beside them.
            items: the item vectors the index was built on, shape (n_items, dim).

        Raises:
            ConfigError: when the header is malformed, the bytes do not match it, or the
                index was built for other item vectors (other movies, dimension or values).
        """
        items = np.ascontiguousarray(items, dtype=np.float32)
        if not isinstance(header, dict) or header.get("format") != HEADER_FORMAT:
            raise ConfigError("The index header is missing or of an unknown format; rebuild the index.")
        kind, parts, augment = header.get("kind"), header.get("parts"), header.get("augment")
        if kind not in KINDS[1:] or not isinstance(parts, list) or not isinstance(augment, list) \
                or len(parts) != len(augment) or sum(parts) != len(data) or not parts:
            raise ConfigError("The index header does not describe its index bytes; rebuild the index.")
        if header.get("n_items") != items.shape[0] or header.get("dim") != items.shape[1]:
            raise ConfigError(f"The index was built for {header.get('n_items')} movies of dimension "
                              f"{header.get('dim')}, but the model has {items.shape[0]} of dimension "
                              f"{items.shape[1]}; rebuild the index.")
        if header.get("items_sha256") != vectors_checksum(items):
            raise ConfigError("The index was built for other movie vectors than the model's; rebuild the index.")
        restored, offset = [], 0
        raw = np.frombuffer(data, dtype=np.uint8)
        for size, aug in zip(parts, augment):
            try:
                index = faiss.deserialize_index(raw[offset:offset + size].copy())
            except RuntimeError:
                raise ConfigError("The index bytes cannot be read by FAISS; rebuild the index.") from None
            offset += size
            restored.append(_Part(index, bool(aug)))
        if sum(p.index.ntotal for p in restored) != items.shape[0]:
            raise ConfigError("The index does not hold one entry per movie; rebuild the index.")
        params = dict(header.get("params") or {})
        index = cls(kind=kind, items=items, params=params, header=dict(header), _parts=restored)
        if kind == "ivf" and "nprobe" in params:
            index._set_knob(int(params["nprobe"]))
        if kind == "hnsw" and "ef_search" in params:
            index._set_knob(int(params["ef_search"]))
        index._to_gpu()
        return index

    def nbytes(self) -> int:
        """Bytes of the serialised FAISS index (its memory, roughly)."""
        return sum(int(faiss.serialize_index(p.index).nbytes) for p in self._parts)


# -- helpers ----------------------------------------------------------------------------
def _hnsw_of(index: Any) -> Any:
    """The HNSW structure of an HNSW index, possibly wrapped in an IndexIDMap."""
    inner = faiss.downcast_index(index.index) if isinstance(index, faiss.IndexIDMap) else index
    return inner.hnsw


def _build_hnsw(items: np.ndarray, m: int, ef_construction: int, strata: int | None) -> tuple[list[_Part], int]:
    """HNSW parts: one over the raw vectors when their norms are equal, else one per
    norm stratum over the MIPS-to-cosine transform (labels are global item indices)."""
    norms = np.linalg.norm(items, axis=1).astype(np.float64)
    equal = norms.max() <= norms.min() * (1 + 1e-3)
    if strata is None:
        strata = 1 if equal else 4
    if strata < 1:
        raise ConfigError(f"strata must be at least 1, got {strata}.")
    if equal:
        graph = faiss.IndexHNSWFlat(items.shape[1], m, faiss.METRIC_INNER_PRODUCT)
        graph.hnsw.efConstruction = ef_construction
        graph.add(items)
        return [_Part(graph, augment=False)], 1
    order = np.argsort(norms, kind="stable")
    parts = []
    for members in np.array_split(order, min(strata, len(items))):
        if len(members) == 0:
            continue
        top = max(float(norms[members].max()), 1e-12)
        extra = np.sqrt(np.maximum(top * top - norms[members] ** 2, 0.0))
        aug = (np.hstack([items[members].astype(np.float64), extra[:, None]]) / top).astype(np.float32)
        # unit vectors: L2 order = cosine order = the original inner-product order, and the
        # graph is built in a true metric space
        graph = faiss.IndexHNSWFlat(items.shape[1] + 1, m, faiss.METRIC_L2)
        graph.hnsw.efConstruction = ef_construction
        wrapped = faiss.IndexIDMap(graph)
        wrapped.add_with_ids(aug, members.astype(np.int64))
        parts.append(_Part(wrapped, augment=True))
    return parts, len(parts)


def _augment_queries(q: np.ndarray) -> np.ndarray:
    """[q, 0] / |q| per row (a zero query stays zero)."""
    norms = np.linalg.norm(q, axis=1, keepdims=True)
    out = np.zeros((len(q), q.shape[1] + 1), dtype=np.float32)
    out[:, :-1] = q / np.maximum(norms, 1e-30)
    return out


def _exclusions(exclude: Any, n: int, n_items: int) -> tuple[np.ndarray, np.ndarray]:
    """(indptr (n+1,), indices) of the items excluded per query, from a CSR or a list of arrays."""
    if exclude is None:
        return np.zeros(n + 1, dtype=np.int64), np.zeros(0, dtype=np.int64)
    if sp.issparse(exclude):
        csr = exclude.tocsr()
        if csr.shape != (n, n_items):
            raise ConfigError(f"exclude must be a {n} x {n_items} matrix (queries x items), got {csr.shape}.")
        if not csr.has_canonical_format or (csr.data == 0).any():
            csr = csr.copy()
            csr.eliminate_zeros()
            csr.sum_duplicates()
        return csr.indptr.astype(np.int64), csr.indices.astype(np.int64)
    rows = [np.asarray(r, dtype=np.int64).ravel() for r in exclude]
    rows = [r if len(r) < 2 or (r[1:] > r[:-1]).all() else np.unique(r) for r in rows]
    if len(rows) != n:
        raise ConfigError(f"exclude must list excluded items for each of the {n} queries, got {len(rows)}.")
    indices = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
    if len(indices) and (indices.min() < 0 or indices.max() >= n_items):
        raise ConfigError(f"exclude names item indices outside 0..{n_items - 1}.")
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum([len(r) for r in rows], out=indptr[1:])
    return indptr, indices


def _recall(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean share of each row of `truth` present in the same row of `found`."""
    hits = [len(np.intersect1d(f[f >= 0], t[t >= 0])) / max(int((t >= 0).sum()), 1) for f, t in zip(found, truth)]
    return float(np.mean(hits)) if hits else 1.0


def header_json(header: dict[str, Any]) -> bytes:
    """The header as UTF-8 JSON bytes (what a bundle stores)."""
    return json.dumps(header, indent=2, sort_keys=True).encode("utf-8")


__all__ = ["VectorIndex", "KINDS", "AUTO_EXACT_MAX_ITEMS", "DEFAULT_OVERFETCH", "single_thread", "vectors_checksum",
           "header_json"]
