"""Metric functions: hand-computed cases and Hypothesis properties."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from movierec.evaluation import metrics as M

# user 0: ranked [3, 1, 4, 0, 2], relevant {1, 2, 9}
# user 1: ranked [0, 1, 2, -1, -1] (only 3 items available), relevant {0}
RANKED = np.array([[3, 1, 4, 0, 2], [0, 1, 2, -1, -1]])
RELEVANT = [{1, 2, 9}, {0}]
LOG2 = np.log2


def test_precision_hand():
    np.testing.assert_allclose(M.precision_at_k(RANKED, RELEVANT, 2), [0.5, 0.5])
    np.testing.assert_allclose(M.precision_at_k(RANKED, RELEVANT, 5), [2 / 5, 1 / 5])  # empty slots are misses


def test_recall_hand_and_capped_variant():
    np.testing.assert_allclose(M.recall_at_k(RANKED, RELEVANT, 2), [1 / 3, 1.0])
    np.testing.assert_allclose(M.recall_at_k(RANKED, RELEVANT, 2, normalize="min"), [1 / 2, 1.0])
    np.testing.assert_allclose(M.recall_at_k(RANKED, RELEVANT, 5), [2 / 3, 1.0])
    with pytest.raises(ValueError):
        M.recall_at_k(RANKED, RELEVANT, 2, normalize="bogus")


def test_hit_rate_and_mrr_hand():
    np.testing.assert_allclose(M.hit_rate_at_k(RANKED, RELEVANT, 1), [0.0, 1.0])
    np.testing.assert_allclose(M.hit_rate_at_k(RANKED, RELEVANT, 2), [1.0, 1.0])
    np.testing.assert_allclose(M.reciprocal_rank(RANKED, RELEVANT), [0.5, 1.0])
    np.testing.assert_allclose(M.reciprocal_rank(RANKED, RELEVANT, k=1), [0.0, 1.0])


def test_ndcg_binary_hand():
    # user 0: hits at ranks 2 and 5; ideal: 3 relevant -> ranks 1..3
    dcg = 1 / LOG2(3) + 1 / LOG2(6)
    idcg = 1 + 1 / LOG2(3) + 1 / LOG2(4)
    np.testing.assert_allclose(M.ndcg_at_k(RANKED, RELEVANT, 5), [dcg / idcg, 1.0])
    # K=2: ideal is capped at min(K, |rel|) = 2 items
    np.testing.assert_allclose(M.ndcg_at_k(RANKED, RELEVANT, 2)[0], (1 / LOG2(3)) / (1 + 1 / LOG2(3)))


def test_ndcg_graded_hand():
    ranked = np.array([[2, 0, 1]])
    rel = [{0: 3.0, 1: 5.0, 2: 1.0}]
    dcg = 1.0 + 3.0 / LOG2(3) + 5.0 / LOG2(4)
    idcg = 5.0 + 3.0 / LOG2(3) + 1.0 / LOG2(4)
    np.testing.assert_allclose(M.ndcg_at_k(ranked, rel, 3, graded=True), [dcg / idcg])
    exp = lambda g: 2.0**g - 1  # noqa: E731
    dcg_e = exp(1) + exp(3) / LOG2(3) + exp(5) / LOG2(4)
    idcg_e = exp(5) + exp(3) / LOG2(3) + exp(1) / LOG2(4)
    np.testing.assert_allclose(M.ndcg_at_k(ranked, rel, 3, graded=True, gain="exp"), [dcg_e / idcg_e])
    # binary NDCG ignores the grades: every item relevant, perfect
    np.testing.assert_allclose(M.ndcg_at_k(ranked, rel, 3), [1.0])


def test_map_hand_both_normalisations():
    # user 0 at K=5: hits at ranks 2 (P=1/2) and 5 (P=2/5)
    num = 1 / 2 + 2 / 5
    np.testing.assert_allclose(M.average_precision_at_k(RANKED, RELEVANT, 5), [num / 3, 1.0])
    np.testing.assert_allclose(M.average_precision_at_k(RANKED, RELEVANT, 2), [(1 / 2) / 2, 1.0])
    np.testing.assert_allclose(M.average_precision_at_k(RANKED, RELEVANT, 2, normalize="relevant"), [(1 / 2) / 3, 1.0])


def test_no_relevant_items_give_nan_or_zero():
    ranked = np.array([[0, 1]])
    rel = [set()]
    assert math.isnan(M.recall_at_k(ranked, rel, 2)[0])
    assert math.isnan(M.ndcg_at_k(ranked, rel, 2)[0])
    assert math.isnan(M.average_precision_at_k(ranked, rel, 2)[0])
    assert M.precision_at_k(ranked, rel, 2)[0] == 0.0
    assert M.hit_rate_at_k(ranked, rel, 2)[0] == 0.0
    assert M.reciprocal_rank(ranked, rel)[0] == 0.0


def test_sparse_and_sequence_inputs_agree():
    rel_sparse = M.relevance_matrix(RELEVANT, n_items=12)
    assert sp.issparse(rel_sparse) and rel_sparse.shape == (2, 12)
    for fn in (M.precision_at_k, M.recall_at_k, M.ndcg_at_k, M.average_precision_at_k, M.hit_rate_at_k):
        np.testing.assert_allclose(fn(RANKED, rel_sparse, 3), fn(RANKED, RELEVANT, 3))
    # ragged python lists are padded with -1
    np.testing.assert_allclose(M.precision_at_k([[3, 1, 4, 0, 2], [0, 1, 2]], RELEVANT, 5), [0.4, 0.2])


def test_ranking_metrics_matches_single_functions():
    out = M.ranking_metrics(RANKED, RELEVANT, ks=(2, 5), metrics=M.ACCURACY_METRICS)
    for k in (2, 5):
        np.testing.assert_allclose(out[f"precision@{k}"], M.precision_at_k(RANKED, RELEVANT, k))
        np.testing.assert_allclose(out[f"recall@{k}"], M.recall_at_k(RANKED, RELEVANT, k))
        np.testing.assert_allclose(out[f"recall_capped@{k}"], M.recall_at_k(RANKED, RELEVANT, k, normalize="min"))
        np.testing.assert_allclose(out[f"ndcg@{k}"], M.ndcg_at_k(RANKED, RELEVANT, k))
        np.testing.assert_allclose(out[f"ndcg_graded@{k}"], M.ndcg_at_k(RANKED, RELEVANT, k, graded=True))
        np.testing.assert_allclose(out[f"hr@{k}"], M.hit_rate_at_k(RANKED, RELEVANT, k))
        np.testing.assert_allclose(out[f"map@{k}"], M.average_precision_at_k(RANKED, RELEVANT, k))
        np.testing.assert_allclose(out[f"mrr@{k}"], M.reciprocal_rank(RANKED, RELEVANT, k))
    with pytest.raises(ValueError):
        M.ranking_metrics(RANKED, RELEVANT, ks=(2,), metrics=("nope",))


def test_coverage_and_gini_hand():
    ranked = np.array([[0, 1], [0, 2]])
    assert M.catalog_coverage(ranked, 4, 2) == pytest.approx(3 / 4)
    assert M.catalog_coverage(ranked, 4, 1) == pytest.approx(1 / 4)
    # counts [2, 1, 1, 0] sorted [0, 1, 1, 2]: G = 2*(0*1+1*2+1*3+2*4)/(4*4) - 5/4 = 26/16 - 20/16
    assert M.gini_index(ranked, 4, 2) == pytest.approx(6 / 16)
    assert M.gini_index(np.array([[0], [1], [2], [3]]), 4, 1) == pytest.approx(0.0)
    assert M.gini_index(np.array([[0], [0]]), 4, 1) == pytest.approx(1 - 1 / 4)
    assert math.isnan(M.gini_index(np.full((2, 2), -1), 4, 2))


def test_diversity_novelty_long_tail_hand():
    feats = np.array([[1, 0], [0, 1], [1, 1], [0, 0]], dtype=float)
    ranked = np.array([[0, 1, -1], [0, 2, 1], [3, -1, -1]])
    div = M.intra_list_diversity(ranked, feats, 3)
    c = 1 / np.sqrt(2)
    assert div[0] == pytest.approx(1.0)  # orthogonal pair
    assert div[1] == pytest.approx(((1 - 0) + (1 - c) + (1 - c)) / 3)
    assert math.isnan(div[2])  # a single item has no pairs
    counts = np.array([8, 4, 2, 0])
    nov = M.novelty(ranked, counts, n_users=8, k=3)
    info = -np.log2(np.array([1.0, 0.5, 0.25, 1 / 8]))
    np.testing.assert_allclose(nov, [(info[0] + info[1]) / 2, info[[0, 2, 1]].mean(), info[3]])
    tail = M.long_tail_mask(counts, head_fraction=0.25)
    np.testing.assert_array_equal(tail, [False, True, True, True])
    np.testing.assert_allclose(M.long_tail_share(ranked, counts, 3, head_fraction=0.25), [0.5, 2 / 3, 1.0])


def test_rating_metrics():
    assert M.rmse([1, 2, 3], [1, 2, 5]) == pytest.approx(math.sqrt(4 / 3))
    assert M.mae([1, 2, 3], [1, 2, 5]) == pytest.approx(2 / 3)
    with pytest.raises(ValueError):
        M.rmse([], [])


# ------------------------------------------------------------------------------------
# properties

N_ITEMS = 30


@st.composite
def ranking_case(draw):
    n_users = draw(st.integers(1, 6))
    width = draw(st.integers(1, 12))
    rows, rels = [], []
    for _ in range(n_users):
        perm = draw(st.permutations(list(range(N_ITEMS))))
        length = draw(st.integers(0, width))
        rows.append(list(perm[:length]) + [-1] * (width - length))
        rels.append(draw(st.sets(st.integers(0, N_ITEMS - 1), min_size=1, max_size=15)))
    k = draw(st.integers(1, width))
    return np.array(rows, dtype=np.int64), rels, k


@settings(max_examples=60, deadline=None)
@given(ranking_case())
def test_property_bounds(case):
    ranked, rels, k = case
    out = M.ranking_metrics(ranked, rels, ks=(k,), metrics=M.ACCURACY_METRICS)
    for name, values in out.items():
        assert np.all((values >= -1e-12) & (values <= 1 + 1e-12)), name
    assert 0 <= M.catalog_coverage(ranked, N_ITEMS, k) <= 1
    g = M.gini_index(ranked, N_ITEMS, k)
    assert math.isnan(g) or 0 <= g <= 1 - 1 / N_ITEMS + 1e-12
    div = M.intra_list_diversity(ranked, np.random.default_rng(0).random((N_ITEMS, 4)), k)
    assert np.all(np.isnan(div) | ((div >= -1e-9) & (div <= 1 + 1e-9)))


@settings(max_examples=60, deadline=None)
@given(ranking_case(), st.randoms(use_true_random=False))
def test_property_user_permutation_invariance(case, rnd):
    ranked, rels, k = case
    perm = list(range(len(rels)))
    rnd.shuffle(perm)
    base = M.ranking_metrics(ranked, rels, ks=(k,))
    shuffled = M.ranking_metrics(ranked[perm], [rels[p] for p in perm], ks=(k,))
    for name in base:
        np.testing.assert_allclose(shuffled[name], base[name][perm])
    # catalog metrics do not depend on user order at all
    assert M.gini_index(ranked[perm], N_ITEMS, k) == pytest.approx(M.gini_index(ranked, N_ITEMS, k), nan_ok=True)


@settings(max_examples=60, deadline=None)
@given(ranking_case(), st.randoms(use_true_random=False))
def test_property_set_metrics_ignore_order_within_top_k(case, rnd):
    """Precision, recall and HR see the top K as a set: shuffling inside it changes nothing."""
    ranked, rels, k = case
    shuffled = ranked.copy()
    for row in shuffled:
        head = list(row[:k])
        rnd.shuffle(head)
        row[:k] = head
    for fn in (M.precision_at_k, M.recall_at_k, M.hit_rate_at_k):
        np.testing.assert_allclose(fn(shuffled, rels, k), fn(ranked, rels, k))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sets(st.integers(0, N_ITEMS - 1), min_size=1, max_size=12), min_size=1, max_size=5),
       st.integers(1, 15), st.randoms(use_true_random=False))
def test_property_perfect_ranking_scores_one(rels, k, rnd):
    rows = []
    for rel in rels:
        good = list(rel)
        rnd.shuffle(good)
        rest = [i for i in range(N_ITEMS) if i not in rel]
        rows.append(good + rest)
    ranked = np.array(rows)
    out = M.ranking_metrics(ranked, rels, ks=(k,))
    for name in ("ndcg", "hr", "map", "mrr", "recall_capped"):
        np.testing.assert_allclose(out[f"{name}@{k}"], 1.0, err_msg=name)
    n_rel = np.array([len(r) for r in rels])
    np.testing.assert_allclose(out[f"precision@{k}"], np.minimum(n_rel, k) / k)
    np.testing.assert_allclose(out[f"recall@{k}"], np.minimum(n_rel, k) / n_rel)


@settings(max_examples=40, deadline=None)
@given(ranking_case())
def test_property_metrics_grow_with_k(case):
    ranked, rels, k = case
    width = ranked.shape[1]
    small = M.ranking_metrics(ranked, rels, ks=(k,), metrics=("recall", "hr"))
    large = M.ranking_metrics(ranked, rels, ks=(width,), metrics=("recall", "hr"))
    assert np.all(large[f"recall@{width}"] >= small[f"recall@{k}"] - 1e-12)
    assert np.all(large[f"hr@{width}"] >= small[f"hr@{k}"])


# ------------------------------------------------------------------------------------
# edge cases found by mutation testing (scripts/mutation.sh)


def test_error_messages_name_the_problem():
    cases = [
        (lambda: M.rmse([1, 2], [1, 2, 3]), "predicted and truth must be non-empty and of the same shape"),
        (lambda: M.mae([1, 2], [1]), "predicted and truth must be non-empty and of the same shape"),
        (lambda: M.mae([], []), "predicted and truth must be non-empty and of the same shape"),
        (lambda: M.as_ranked(np.zeros(3, dtype=np.int64)), r"ranked must be 2-D \(n_users, L\), got shape \(3,\)"),
        (lambda: M.as_ranked(np.zeros((1, 2))), r"ranked must hold integer item indices \(-1 for an empty slot\)"),
        (lambda: M.relevance_matrix([{0, -1}]), "relevant item indices must be >= 0"),
        (lambda: M.hit_gains(RANKED, RELEVANT[:1]), "ranked has 2 rows but relevant has 1"),
        (lambda: M.precision_at_k(RANKED, RELEVANT, 0), "k must be a positive integer, got 0"),
        (lambda: M.recall_at_k(RANKED, RELEVANT, 2, normalize="x"), "normalize must be 'relevant' or 'min'"),
        (lambda: M.average_precision_at_k(RANKED, RELEVANT, 2, normalize="x"), "normalize must be 'min' or 'relevant'"),
        (lambda: M.ndcg_at_k(RANKED, RELEVANT, 2, graded=True, gain="x"), "gain must be 'linear' or 'exp'"),
        (lambda: M.ranking_metrics(RANKED, RELEVANT, ks=(2,), metrics=("nope",)),
         r"unknown ranking metrics \['nope'\]; choose from \('precision', "),
        (lambda: M.recommendation_counts(np.array([[0, 4]]), 4, 2), "ranked holds an item index >= n_items"),
        (lambda: M.catalog_coverage(np.array([[0]]), 0, 1), "n_items must be positive"),
    ]
    for call, message in cases:
        with pytest.raises(ValueError) as info:
            call()
        assert re.fullmatch(message + (".*" if message.endswith(", ") else ""), str(info.value)), str(info.value)
    # the smallest valid inputs are accepted
    assert M.mae([3], [1]) == 2.0 and M.rmse([3], [1]) == 2.0
    assert M.catalog_coverage(np.array([[0]]), 1, 1) == 1.0
    assert M.precision_at_k(RANKED, RELEVANT, 1).tolist() == [0.0, 1.0]


def test_as_ranked_pads_ragged_lists_with_minus_one():
    arr = M.as_ranked([[3, 1], [0], []])
    assert arr.dtype == np.int64 and arr.tolist() == [[3, 1], [0, -1], [-1, -1]]
    assert M.as_ranked([]).shape == (0, 0)


def test_relevance_matrix_shapes_and_inputs():
    assert M.relevance_matrix([{0, 3}]).shape == (1, 4)  # max index + 1 columns
    assert M.relevance_matrix([set()]).shape == (1, 0)
    assert M.relevance_matrix([set()], n_items=5).shape == (1, 5)
    empty = M.relevance_matrix([], n_items=5)
    assert empty.shape == (0, 5) and empty.nnz == 0
    graded = M.relevance_matrix([{2: 4, 0: 0.5}])
    assert graded.dtype == np.float64 and graded.indices.tolist() == [0, 2] and graded.data.tolist() == [0.5, 4.0]
    # a sparse input of integer gains becomes float64, and the caller's matrix is left alone
    given = sp.csr_matrix((np.array([3, 0, 1]), np.array([2, 0, 1]), np.array([0, 2, 3])), shape=(2, 3))
    given_f = given.astype(np.float64)
    before = (given_f.data.tolist(), given_f.indices.tolist(), given_f.indptr.tolist())
    out = M.relevance_matrix(given_f)
    assert out.dtype == np.float64 and M.relevance_matrix(given).dtype == np.float64
    assert out.nnz == 2 and out.indices.tolist() == [2, 1]
    assert (given_f.data.tolist(), given_f.indices.tolist(), given_f.indptr.tolist()) == before  # not changed in place
    assert M.n_relevant(given).dtype == np.int64 and M.n_relevant(given).tolist() == [1, 1]


def test_hit_gains_single_slot_and_items_beyond_the_relevance_width():
    np.testing.assert_array_equal(M.hit_gains([[0], [1]], [{0}, {0}]), [[1.0], [0.0]])
    # user 0 ranks movie 5, beyond the 3 columns of the relevance matrix; user 1 likes movie 1.
    # A hit lookup keyed on a too-narrow row width would confuse the two.
    rel = sp.csr_matrix(np.array([[0, 0, 0], [0, 1, 0]], dtype=float))
    np.testing.assert_array_equal(M.hit_gains(np.array([[5, 4], [1, 2]]), rel), [[0.0, 0.0], [1.0, 0.0]])


def test_graded_ndcg_with_small_gains_and_misses():
    # gains below 1: a perfect list still scores exactly 1 (IDCG < 1 is a real denominator)
    rel = [{0: 0.5, 1: 0.25}]
    np.testing.assert_allclose(M.ndcg_at_k([[0, 1]], rel, 2, graded=True), [1.0])
    np.testing.assert_allclose(M.ndcg_at_k([[1, 0]], rel, 2, graded=True),
                               [(0.25 + 0.5 / LOG2(3)) / (0.5 + 0.25 / LOG2(3))])
    # a miss in the list adds no gain, also with exponential gains
    ranked, rel = [[2, 7, 0]], [{0: 3.0, 1: 5.0, 2: 1.0}]
    exp = lambda g: 2.0**g - 1  # noqa: E731
    dcg = exp(1) + exp(3) / LOG2(4)
    idcg = exp(5) + exp(3) / LOG2(3) + exp(1) / LOG2(4)
    np.testing.assert_allclose(M.ndcg_at_k(ranked, rel, 3, graded=True, gain="exp"), [dcg / idcg])


@settings(max_examples=60, deadline=None)
@given(ranking_case(), st.lists(st.sampled_from([0.5, 1.0, 2.0, 4.0]), min_size=N_ITEMS, max_size=N_ITEMS),
       st.booleans())
def test_property_ranking_metrics_equals_single_functions(case, grades, drop_first):
    """Graded relevance, users without hits and (optionally) a user with nothing relevant."""
    ranked, rels, k = case
    graded = [{i: grades[i] for i in rel} for rel in rels]
    if drop_first:
        graded[0] = {}
    for gain in ("linear", "exp"):
        out = M.ranking_metrics(ranked, graded, ks=(k,), graded_gain=gain)
        single = {
            "precision": M.precision_at_k(ranked, graded, k),
            "recall": M.recall_at_k(ranked, graded, k),
            "recall_capped": M.recall_at_k(ranked, graded, k, normalize="min"),
            "ndcg": M.ndcg_at_k(ranked, graded, k),
            "ndcg_graded": M.ndcg_at_k(ranked, graded, k, graded=True, gain=gain),
            "hr": M.hit_rate_at_k(ranked, graded, k),
            "map": M.average_precision_at_k(ranked, graded, k),
            "mrr": M.reciprocal_rank(ranked, graded, k),
        }
        for name, values in single.items():
            np.testing.assert_allclose(out[f"{name}@{k}"], values, err_msg=name)
    if drop_first:
        assert np.isnan(out[f"ndcg@{k}"][0]) and out[f"hr@{k}"][0] == 0 and out[f"mrr@{k}"][0] == 0


def test_catalog_metrics_edge_cases():
    # one recommendation in total: the most unequal distribution, 1 - 1/n
    assert M.gini_index(np.array([[2]]), 4, 1) == pytest.approx(0.75)
    assert M.recommendation_counts(np.array([[0, 3], [3, -1]]), 4, 2).tolist() == [1, 0, 0, 2]


def test_diversity_normalises_features_and_chunks_users():
    # same direction, different lengths (one shorter than 1): identical movies, distance 0
    feats = np.array([[0.3, 0.4], [0.6, 0.8], [0.0, 0.0], [1.0, 0.0]])
    div = M.intra_list_diversity(np.array([[0, 1], [2, 3], [0, 2]]), feats, 2)
    np.testing.assert_allclose(div, [0.0, 1.0, 1.0], atol=1e-12)  # an all-zero row is at distance 1
    rng = np.random.default_rng(0)
    ranked = np.array([rng.permutation(4)[:3] for _ in range(7)])
    ranked[2, 1:] = -1
    whole = M.intra_list_diversity(ranked, feats, 3)
    for chunk in (1, 2, 3):
        np.testing.assert_array_equal(M.intra_list_diversity(ranked, feats, 3, chunk=chunk), whole)
    # a one-movie catalog with empty slots
    assert np.isnan(M.intra_list_diversity(np.array([[0, -1]]), np.ones((1, 2)), 2)).all()


def test_self_information_bounds_and_one_movie_catalog():
    # p is capped at 1 (counts above n_users) and n_users of 1 is a real denominator
    np.testing.assert_allclose(M.item_self_information(np.array([10, 5, 1]), n_users=5), [0.0, 0.0, LOG2(5)])
    np.testing.assert_allclose(M.item_self_information(np.array([1, 0]), n_users=1), [0.0, 0.0])
    np.testing.assert_allclose(M.novelty(np.array([[0, -1]]), np.array([2]), n_users=4, k=2), [1.0])
    np.testing.assert_allclose(M.long_tail_share(np.array([[0, -1]]), np.array([2]), 2), [1.0])


def test_long_tail_default_head_and_ties():
    counts = np.array([1, 9, 3, 9, 0, 5, 2, 2, 7, 4])
    # default: the 20% most popular (2 of 10) are the head; ties broken by item index
    assert np.flatnonzero(~M.long_tail_mask(counts)).tolist() == [1, 3]
    assert M.long_tail_mask(counts).dtype == bool
    np.testing.assert_allclose(M.long_tail_share(np.array([[1, 0, 3, 2]]), counts, 4), [0.5])
    np.testing.assert_allclose(M.long_tail_share(np.array([[1, 0, 3, 2]]), counts, 4, head_fraction=0.7), [0.25])
    ties = np.array([3, 1, 3, 1, 3, 1] * 10)
    order = sorted(range(len(ties)), key=lambda i: (-ties[i], i))
    mask = M.long_tail_mask(ties, head_fraction=0.25)
    assert np.flatnonzero(~mask).tolist() == sorted(order[:15])
