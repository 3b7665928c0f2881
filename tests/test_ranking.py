"""movierec.ranking: the one chunked ranker, against a brute-force NumPy ranking.

The ranker scores users in chunks of `SCORE_CHUNK_ELEMENTS`; the tests shrink the chunk so
every example spans several chunks (an off-by-one in the chunk slice would drop or
repeat users), and compare with a plain per-row sort, including ties, excluded and
non-candidate movies (which must come back as padding, never as a movie).
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import movierec.ranking as ranking
from movierec.ranking import Recommendations, rank_top_k, to_recommendations, top_k

PROPS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def brute_force(scores: np.ndarray, k: int, allowed: np.ndarray) -> list[np.ndarray]:
    """Per row, the scores of the top-min(k, allowed) allowed finite items, best first."""
    out = []
    for row in range(scores.shape[0]):
        ok = allowed[row] & np.isfinite(scores[row])
        out.append(np.sort(scores[row][ok])[::-1][: min(k, scores.shape[1])])
    return out


def check_against_brute_force(idx, val, scores, k, allowed) -> None:
    n, m = scores.shape
    kk = min(k, m)
    assert idx.shape == (n, kk) and val.shape == (n, kk)
    assert idx.dtype == np.int64 and val.dtype == np.float32
    for row, expected in enumerate(brute_force(scores, k, allowed)):
        length = len(expected)
        got_idx, got_val = idx[row, :length], val[row, :length]
        # real entries: allowed, distinct, the reported score is the item's score, top values
        assert (got_idx >= 0).all()
        assert allowed[row, got_idx].all()
        assert len(set(got_idx.tolist())) == length
        np.testing.assert_array_equal(got_val, scores[row, got_idx])
        np.testing.assert_array_equal(got_val, expected)
        # padding: index -1, score -inf, never a movie
        assert (idx[row, length:] == -1).all()
        assert np.isneginf(val[row, length:]).all()


@st.composite
def ranking_problems(draw):
    n = draw(st.integers(1, 12))
    m = draw(st.integers(1, 15))
    # few distinct values, so ties are common; some -inf scores from the model itself
    values = draw(st.lists(st.sampled_from([-np.inf, -2.0, -0.5, 0.0, 0.25, 1.0, 3.0, 7.5]), min_size=n * m,
                           max_size=n * m))
    scores = np.array(values, dtype=np.float32).reshape(n, m)
    exclude = np.array(draw(st.lists(st.booleans(), min_size=n * m, max_size=n * m))).reshape(n, m)
    use_candidates = draw(st.booleans())
    candidates = np.array(draw(st.lists(st.booleans(), min_size=m, max_size=m))) if use_candidates else None
    use_exclude = draw(st.booleans())
    k = draw(st.integers(1, m + 3))
    chunk_rows = draw(st.integers(1, n))
    return scores, (exclude if use_exclude else None), candidates, k, chunk_rows


def run_chunked(scores, exclude, candidates, k, chunk_rows, rows=None, exclude_rows=None):
    """rank_top_k with `chunk_rows` rows per chunk; also returns the chunks it scored."""
    n, m = scores.shape
    rows = np.arange(n) if rows is None else rows
    calls: list[np.ndarray] = []

    def score_rows(chunk):
        calls.append(np.asarray(chunk).copy())
        return scores[chunk]

    old = ranking.SCORE_CHUNK_ELEMENTS
    ranking.SCORE_CHUNK_ELEMENTS = chunk_rows * m
    try:
        ex = sp.csr_matrix(exclude.astype(np.float32)) if exclude is not None else None
        idx, val = rank_top_k(score_rows, rows, m, k, ex, candidates, exclude_rows)
    finally:
        ranking.SCORE_CHUNK_ELEMENTS = old
    return idx, val, calls


@PROPS
@given(ranking_problems())
def test_rank_top_k_matches_brute_force(problem):
    scores, exclude, candidates, k, chunk_rows = problem
    n, m = scores.shape
    idx, val, calls = run_chunked(scores, exclude, candidates, k, chunk_rows)
    allowed = np.ones((n, m), dtype=bool)
    if exclude is not None:
        allowed &= ~exclude
    if candidates is not None:
        allowed &= candidates[None, :]
    check_against_brute_force(idx, val, scores, k, allowed)
    # every row scored exactly once, in order, in chunks of at most chunk_rows rows
    assert np.concatenate(calls).tolist() == list(range(n))
    # chunks of exactly SCORE_CHUNK_ELEMENTS // n_items rows (the last one shorter)
    assert [len(c) for c in calls] == [min(chunk_rows, n - start) for start in range(0, n, chunk_rows)]


@PROPS
@given(ranking_problems(), st.randoms(use_true_random=False))
def test_rank_top_k_exclude_rows_and_row_keys(problem, rnd):
    """Row keys (e.g. user indices) differ from output rows; exclude_rows picks the mask rows."""
    scores, exclude, candidates, k, chunk_rows = problem
    n, m = scores.shape
    keys = np.array([rnd.randrange(n) for _ in range(n)])  # repeated users are allowed
    ex_rows = np.array([rnd.randrange(n) for _ in range(n)])
    idx, val, _ = run_chunked(scores, exclude, candidates, k, chunk_rows, rows=keys, exclude_rows=ex_rows)
    allowed = np.ones((n, m), dtype=bool)
    if exclude is not None:
        allowed &= ~exclude[ex_rows]
    if candidates is not None:
        allowed &= candidates[None, :]
    check_against_brute_force(idx, val, scores[keys], k, allowed)


def test_more_users_than_one_chunk(monkeypatch):
    """1,000 users over 7-row chunks: nobody's list is empty or another user's."""
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(1000, 30)).astype(np.float32)
    monkeypatch.setattr(ranking, "SCORE_CHUNK_ELEMENTS", 7 * 30)
    idx, val = rank_top_k(lambda rows: scores[rows], np.arange(1000), 30, 5)
    np.testing.assert_array_equal(idx, np.argsort(-scores, axis=1)[:, :5])
    assert np.isfinite(val).all()


def test_candidates_never_return_non_candidates():
    """Two allowed candidates and k=5: two movies and three padding slots, not five movies."""
    scores = np.array([[5.0, 4.0, 3.0, 2.0, 1.0, 0.0]], dtype=np.float32)
    candidates = np.array([False, False, True, False, True, False])
    idx, val = rank_top_k(lambda rows: scores[rows], np.array([0]), 6, 5, candidates=candidates)
    assert idx.tolist() == [[2, 4, -1, -1, -1]]
    assert val[0, :2].tolist() == [3.0, 1.0] and np.isneginf(val[0, 2:]).all()


def test_rank_top_k_rejects_wrong_score_shape(monkeypatch):
    with pytest.raises(ValueError, match=r"returned shape \(2, 3\), expected \(2, 4\)"):
        rank_top_k(lambda rows: np.zeros((len(rows), 3)), np.arange(2), 4, 2)
    # a later chunk (rows 2..3 of 5, two rows per chunk) that answers with the wrong shape
    monkeypatch.setattr(ranking, "SCORE_CHUNK_ELEMENTS", 2 * 4)
    with pytest.raises(ValueError, match=r"returned shape \(1, 4\), expected \(2, 4\)"):
        rank_top_k(lambda rows: np.zeros((1 if rows[0] == 2 else len(rows), 4)), np.arange(5), 4, 2)


def test_rank_top_k_leaves_the_model_scores_untouched():
    """Masking works on a copy: a score function may hand out its own stored array."""
    stored = np.arange(12, dtype=np.float32).reshape(2, 6)
    before = stored.copy()
    exclude = sp.csr_matrix(np.eye(2, 6, dtype=np.float32))
    candidates = np.array([True, True, False, True, True, True])
    idx, _ = rank_top_k(lambda rows: stored, np.arange(2), 6, 3, exclude, candidates)
    np.testing.assert_array_equal(stored, before)
    assert idx.tolist() == [[5, 4, 3], [5, 4, 3]]


def test_rank_top_k_empty_inputs():
    idx, val = rank_top_k(lambda rows: np.zeros((len(rows), 4)), np.arange(0), 4, 2)
    assert idx.shape == (0, 2) and val.shape == (0, 2)
    idx, val = rank_top_k(lambda rows: np.zeros((len(rows), 0)), np.arange(3), 0, 2)
    assert idx.shape == (3, 0)


@pytest.mark.parametrize("with_torch", [False, True])
def test_top_k_both_paths(with_torch, monkeypatch):
    """NumPy (no torch loaded) and torch paths: best first, the same top values."""
    if with_torch:
        import torch  # noqa: F401
    else:
        monkeypatch.delitem(sys.modules, "torch", raising=False)
    rng = np.random.default_rng(1)
    scores = rng.integers(0, 6, size=(40, 25)).astype(np.float32)  # many ties
    for k in (1, 5, 25, 40):
        idx, val = top_k(scores, k)
        kk = min(k, 25)
        assert idx.shape == (40, kk) and idx.dtype == np.int64
        np.testing.assert_array_equal(val, np.sort(scores, axis=1)[:, ::-1][:, :kk])
        np.testing.assert_array_equal(np.take_along_axis(scores, idx, axis=1), val)
        assert all(len(set(r)) == kk for r in idx.tolist())
    idx, val = top_k(scores, 0)
    assert idx.shape == (40, 0) and val.shape == (40, 0)
    assert idx.dtype == np.int64 and val.dtype == np.float32
    # distinct scores: the exact order of a full sort, for every k
    distinct = rng.permutation(40 * 25).reshape(40, 25).astype(np.float32)
    order = np.argsort(-distinct, axis=1)
    for k in range(1, 27):
        idx, val = top_k(distinct, k)
        np.testing.assert_array_equal(idx, order[:, :k])
        np.testing.assert_array_equal(val, np.take_along_axis(distinct, order[:, :k], axis=1))
    # wide rows (partial selection really partitions only there)
    wide = rng.permutation(8 * 600).reshape(8, 600).astype(np.float32)
    order = np.argsort(-wide, axis=1)
    for k in (1, 2, 3, 50, 299, 599):
        np.testing.assert_array_equal(top_k(wide, k)[0], order[:, :k])


@pytest.mark.parametrize("raw", [np.array([10, 20, 30, 40]), np.array([10, 20, 30, 40], dtype=np.int32),
                                 np.array(["tt01", "tt0002", "c", "tt00000004"], dtype=object),
                                 np.array(["tt01", "tt0002", "c", "tt00000004"])])
def test_to_recommendations_pads_and_iteration_skips_padding(raw):
    idx = np.array([[3, 0, -1], [1, -1, -1], [2, 1, 0]])
    val = np.array([[0.9, 0.5, -np.inf], [0.7, -np.inf, -np.inf], [0.3, 0.2, 0.1]], dtype=np.float32)
    rec = to_recommendations(np.array([7, 8, 9]), idx, val, raw)
    fill = -1 if raw.dtype.kind in "iu" else ""
    assert rec.lengths.tolist() == [2, 1, 3] and rec.lengths.dtype == np.int64
    assert rec.item_ids.dtype == (raw.dtype if raw.dtype.kind != "O" else object)  # IDs never truncated
    assert rec.item_ids[0].tolist() == [raw[3], raw[0], fill]
    assert rec.item_ids[1].tolist() == [raw[1], fill, fill]
    assert np.isneginf(rec.scores[1, 1:]).all() and rec.scores.dtype == np.float32
    rows = list(rec)
    assert [u for u, _, _ in rows] == [7, 8, 9]
    assert [items.tolist() for _, items, _ in rows] == [[raw[3], raw[0]], [raw[1]], [raw[2], raw[1], raw[0]]]
    assert [s.tolist() for _, _, s in rows][1] == [pytest.approx(0.7)]
    assert rec.items_of(1).tolist() == [raw[1]]
    frame = rec.to_frame()
    assert list(frame.columns) == ["user", "rank", "item", "score"]
    assert frame.index.tolist() == list(range(6))
    assert frame["user"].tolist() == [7, 7, 8, 9, 9, 9]
    assert frame["rank"].tolist() == [1, 2, 1, 1, 2, 3]
    assert frame["item"].tolist() == [raw[3], raw[0], raw[1], raw[2], raw[1], raw[0]]
    assert np.isfinite(frame["score"]).all()
    assert len(rec) == 3


def test_recommendations_default_lengths_from_scores():
    rec = Recommendations(user_ids=np.array([1, 2]), item_ids=np.array([[5, -1], [6, 7]]),
                          scores=np.array([[1.0, -np.inf], [2.0, 1.0]], dtype=np.float32))
    assert rec.lengths.tolist() == [1, 2] and rec.lengths.dtype == np.int64
    assert rec.to_frame()["item"].tolist() == [5, 6, 7]
    empty = Recommendations(user_ids=np.array([]), item_ids=np.zeros((0,)), scores=np.zeros((0,)))
    assert empty.lengths.tolist() == [] and empty.lengths.dtype == np.int64 and len(empty) == 0


def test_string_user_ids_survive():
    rec = to_recommendations(np.array(["u1", "u2"], dtype=object), np.array([[0], [1]]),
                             np.array([[1.0], [0.5]], dtype=np.float32), np.array([100, 200]))
    assert rec.to_frame()["user"].tolist() == ["u1", "u2"]
    assert rec.item_ids.tolist() == [[100], [200]]


def test_chunk_rows_follow_the_element_budget(monkeypatch):
    """Chunks hold SCORE_CHUNK_ELEMENTS // n_items rows, also for a one-movie catalog."""
    for n_items, budget, expected in ((1, 3, [3, 3, 1]), (4, 8, [2, 2, 2, 1]), (4, 3, [1] * 7)):
        monkeypatch.setattr(ranking, "SCORE_CHUNK_ELEMENTS", budget)
        sizes: list[int] = []

        def score_rows(rows, n_items=n_items, sizes=sizes):
            sizes.append(len(rows))
            return np.zeros((len(rows), n_items), dtype=np.float32)

        rank_top_k(score_rows, np.arange(7), n_items, 1)
        assert sizes == expected, (n_items, budget, sizes)
