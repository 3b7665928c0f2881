"""Folding a new person into a factor model from the movies they liked (implicit feedback).

Used by `mf` and `mf-rank` for `fold_in(movie_ids)` without ratings. All indices are
model item indices.
"""

from __future__ import annotations

import numpy as np


def implicit_user_vector(Q: np.ndarray, gram: np.ndarray, liked: np.ndarray, weights: np.ndarray,
                         alpha: float, reg: float) -> np.ndarray:
    """A user vector from liked movies, by one implicit-ALS solve (Hu, Koren, Volinsky 2008).

    Minimises Σ_i c_i (t_i − p·q_i)² + reg ‖p‖² with target t_i = 1 and confidence
    c_i = 1 + alpha·w_i on the liked movies, t_i = 0 and c_i = 1 on every other movie:

        p = (QᵀQ + alpha Q_Lᵀ W Q_L + reg I)⁻¹ Q_Lᵀ (1 + alpha w)

    Args:
        Q: movie factors, shape (n_items, d).
        gram: QᵀQ, shape (d, d) (cached by the caller: it is the same for every person).
        liked: item indices of the liked movies, shape (m,).
        weights: per-movie weight w (1 for plain "liked"), shape (m,).
        alpha: confidence of a liked movie over an unobserved one.
        reg: ridge penalty.

    Returns:
        float64 vector p, shape (d,).
    """
    QL = np.asarray(Q[liked], dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    A = gram + alpha * (QL.T * w) @ QL + reg * np.eye(gram.shape[0])
    return np.linalg.solve(A, QL.T @ (1.0 + alpha * w))


def biased_dot_embeddings(users: np.ndarray, items: np.ndarray, item_bias: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Users [p_u, 1] and movies [q_i, b_i]: their dot product p_u·q_i + b_i ranks as a model
    scoring p_u·q_i + b_i (+ per-user constants) does, so an index over them matches `recommend`."""
    return (np.hstack([users, np.ones((len(users), 1), np.float32)]),
            np.hstack([items, np.asarray(item_bias)[:, None]]))


def liked_fold_in(Q: np.ndarray, gram: np.ndarray, item_bias: np.ndarray, user_norm: float, liked: np.ndarray,
                  weights: np.ndarray, alpha: float, reg_share: float, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Scores and vector of a new person from liked movies, for a model ranking by p·q_i + b_i.

    `implicit_user_vector` gives the taste direction (ridge penalty `reg_share` times the
    mean diagonal of QᵀQ, so it means the same at any factor scale); the vector is then
    rescaled to `scale` times `user_norm` (a typical trained user's length), so taste
    weighs against the movie bias b_i as it does for trained users.

    Args:
        Q: movie factors (n_items, d); gram: QᵀQ (d, d); item_bias: b, shape (n_items,).
        user_norm: a typical trained user vector's length.
        liked, weights, alpha: as in `implicit_user_vector`.

    Returns:
        (scores p·q_i + b_i, shape (n_items,), vector [p, 1], shape (d + 1,)), float64.
    """
    Q = np.asarray(Q, dtype=np.float64)
    reg = float(reg_share) * float(np.trace(gram)) / len(gram)
    p = implicit_user_vector(Q, gram, liked, weights, alpha, reg)
    p = p * (float(scale) * float(user_norm) / max(float(np.linalg.norm(p)), 1e-12))
    return Q @ p + np.asarray(item_bias, dtype=np.float64), np.append(p, 1.0)


__all__ = ["biased_dot_embeddings", "implicit_user_vector", "liked_fold_in"]
