"""Rows of a CSR matrix, given as its three arrays, times a dense matrix.

The serving path multiplies one person's history (a hundred movies) by EASE's item-item
weights on every request; building and slicing scipy matrix objects for that costs
more than the product itself. `csr_rows_dot` runs scipy's own compiled CSR x dense
kernel (the one `csr_matrix @ ndarray` runs, so the result is the same to the bit) on
the raw arrays, and falls back to the public `csr_matrix(...) @ dense` should that
kernel ever move.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

try:  # scipy's compiled kernel behind `csr_matrix @ ndarray` (scipy.sparse._compressed._mul_multivector)
    from scipy.sparse._sparsetools import csr_matvecs as _csr_matvecs
except ImportError:  # pragma: no cover - a scipy without it: the public operator below
    _csr_matvecs = None


def csr_rows_dot(indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, dense: np.ndarray,
                 *, kernel: bool = True) -> np.ndarray:
    """``csr_matrix((data, indices, indptr), shape=(n, m)) @ dense`` without building the matrix.

    Args:
        indptr: row pointers, shape (n + 1,), starting at 0.
        indices: column indices into `dense`'s rows, shape (nnz,).
        data: the values, shape (nnz,).
        dense: shape (m, d).
        kernel: use scipy's compiled kernel directly (False: the public operator; the
            tests check both give the same bits).

    Returns:
        shape (n, d), of `data`'s and `dense`'s common dtype.
    """
    n = len(indptr) - 1
    m, d = dense.shape
    out_dtype = data.dtype if data.dtype == dense.dtype else np.result_type(data.dtype, dense.dtype)
    if kernel and _csr_matvecs is not None:
        index_dtype = np.int32 if max(m, len(indices), 1) < 2**31 - 1 else np.int64
        if not (dense.dtype == out_dtype and dense.flags.c_contiguous):
            dense = np.ascontiguousarray(dense, dtype=out_dtype)
        out = np.zeros((n, d), dtype=out_dtype)
        _csr_matvecs(n, m, d, np.asarray(indptr, dtype=index_dtype), np.asarray(indices, dtype=index_dtype),
                     np.asarray(data, dtype=out_dtype), dense.reshape(-1), out.reshape(-1))
        return out
    return np.asarray(sp.csr_matrix((data, indices, indptr), shape=(n, m)) @ dense, dtype=out_dtype)


__all__ = ["csr_rows_dot"]
