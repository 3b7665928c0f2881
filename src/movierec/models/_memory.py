"""Byte counts for the models' `memory_estimate` formulas (see `Recommender.check_fits`).

Each helper is one term of a peak-memory sum: simple, a little generous, and checked
against measured fits in `tests/test_memory_estimates.py`.
"""

from __future__ import annotations


def csr_bytes(n_rows: int, nnz: int, value_bytes: int = 4, index_bytes: int = 4) -> int:
    """A CSR matrix: values and column indices per entry, plus one row pointer per row."""
    return int(nnz) * (value_bytes + index_bytes) + (int(n_rows) + 1) * 8


def base_fit_bytes(n_users: int, n_ratings: int) -> int:
    """What `Recommender.fit` keeps for every model: the seen-movies CSR (float32 values,
    int32 indices), the training stars beside it, and the COO arrays scipy builds it from."""
    return csr_bytes(n_users, n_ratings) + 4 * n_ratings + 24 * n_ratings


def adam_param_bytes(n_params: int) -> int:
    """Float32 parameters trained with Adam: the weights, their gradients, Adam's two
    moments, and the best epoch's copy kept for early stopping (5 floats a parameter)."""
    return 5 * 4 * int(n_params)


def ranking_validation_bytes(n_users: int, n_items: int, chunk_pairs: int = 2_000_000) -> int:
    """The ranking models' early-stopping validation: float32 scores of every movie for a
    chunk of at most 2,000 users (at most `chunk_pairs` cells), and their sorted copy."""
    return 8 * min(int(chunk_pairs), min(int(n_users), 2000) * int(n_items))


__all__ = ["adam_param_bytes", "base_fit_bytes", "csr_bytes", "ranking_validation_bytes"]


def parts_text(models: list, n_users: int, n_items: int, n_ratings: int) -> str:
    """The estimates of a composite model's parts, largest first, for `ResourceError`'s
    sentence: "autorec 219.5 GiB, bpmf 11.0 GiB" (a part without an estimate: "?")."""
    from movierec.resources import format_bytes

    sizes = [(m.name, m.memory_estimate(n_users, n_items, n_ratings)) for m in models]
    sizes.sort(key=lambda pair: -1 if pair[1] is None else pair[1], reverse=True)
    return ", ".join(f"{name} {'?' if need is None else format_bytes(need)}" for name, need in sizes)
