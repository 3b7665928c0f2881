"""Re-ranking for variety (`movierec.rerank`): MMR and calibrated recommendations, through the
library (re-rankers, metrics, the evaluation runner, compare), the answer layer, the CLI and
a real server on loopback (tests/serving_helpers.py).

Each guard names the bug it was checked against in its docstring.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest
import scipy.sparse as sp
from typer.testing import CliRunner

from movierec.errors import ConfigError
from movierec.evaluation import metrics as M
from movierec.rerank import (MMR, Calibrated, CalibratedDiverse, RerankInput, genre_distribution, kl_to_history,
                             parse_rerank)

from serving_helpers import NAME, LiveServer, error, make_registry

SCRIPT = Path(sys.executable).parent / "movierec"

# a toy catalog: genres Action (0), Comedy (1), Drama (2)
ACTION, COMEDY, DRAMA = (1, 0, 0), (0, 1, 0), (0, 0, 1)


def toy(reranker, scores, genres, history=(), k=4, vectors=None):
    """Re-rank candidates 0..c-1 (item index = position) with the given scores and genres."""
    genre_matrix = np.asarray(genres, dtype=np.float64)
    inp = RerankInput(item_idx=np.arange(len(scores)), scores=np.asarray(scores, dtype=np.float32), k=k,
                      history_idx=np.asarray(history, dtype=np.int64), genre_matrix=genre_matrix,
                      item_vectors=vectors)
    return reranker.rerank(inp)


# -- parsing -------------------------------------------------------------------------------
def test_parse_gives_back_the_text_form_and_hashable_values():
    """Bugs planted: `_weight_text` formatting with "%g" to 3 digits (mmr:0.1234567 read back as
    another weight, so two weights would share a cache key); the combined form split on '+'
    only ("calibrated:0.6 diversity:0.1", what a URL's '+' becomes, refused)."""
    for text, canonical in (("mmr:0.3", "mmr:0.3"), ("MMR:0.30", "mmr:0.3"), ("calibrated:1", "calibrated:1"),
                            ("calibrated:0", "calibrated:0"), ("mmr:0.1234567", "mmr:0.1234567"),
                            ("mmr:0.5:genres", "mmr:0.5:genres"), (" mmr : 0.2 ", "mmr:0.2"),
                            ("calibrated:0.6+diversity:0.1", "calibrated:0.6+diversity:0.1"),
                            ("Diversity:0.10 + calibrated:0.60", "calibrated:0.6+diversity:0.1"),
                            ("calibrated:0.6 diversity:0.1", "calibrated:0.6+diversity:0.1"),  # '+' in a URL
                            ("calibrated:0+diversity:0", "calibrated:0+diversity:0")):
        reranker = parse_rerank(text)
        assert str(reranker) == canonical
        assert parse_rerank(str(reranker)) == reranker and hash(parse_rerank(str(reranker))) == hash(reranker)
    assert parse_rerank(None) is None and parse_rerank("") is None
    assert MMR(0.3).name == "mmr" and Calibrated(0.3).name == "calibrated"
    assert CalibratedDiverse(0.6, 0.1).name == "calibrated+diversity" and CalibratedDiverse(0.6, 0.1).pool(10) == 100
    assert MMR(0.3).pool(10) == 100 and MMR(0.3).pool(50) == 250 and Calibrated(0.3).pool(1000) == 1000


def test_the_pool_limit_is_the_queries_limit():
    from movierec.answers.query import MAX_K
    from movierec.rerank import MAX_POOL

    assert MAX_POOL == MAX_K


@pytest.mark.parametrize("text, fragment", [
    ("mmr:1.5", "must be a number from 0 to 1"), ("calibrated:-0.1", "must be a number from 0 to 1"),
    ("mmr:nan", "must be a number from 0 to 1"), ("mmr:inf", "must be a number from 0 to 1"),
    ("mmr:much", "must be a number from 0 to 1"), ("mmr", "Give the mmr re-ranker as mmr:WEIGHT"),
    ("calibrated:0.3:genres", "Give the calibrated re-ranker as"), ("mmr:0.3:colour", "Unknown MMR similarity"),
    ("fancy:0.3", "Unknown re-ranker 'fancy'; choose from mmr:WEIGHT, calibrated:WEIGHT"),
    ("diversity:0.1", "choose from mmr:WEIGHT, calibrated:WEIGHT or calibrated:W+diversity:V"),
    ("calibrated:0.6+diversity:1.5", "The diversity re-ranking weight must be a number from 0 to 1"),
    ("calibrated:x+diversity:0.1", "The calibrated re-ranking weight must be a number from 0 to 1"),
    ("calibrated:0.6+diversity:nan", "The diversity re-ranking weight must be a number from 0 to 1"),
    ("calibrated:0.6+mmr:0.1", "Combine re-rankers as calibrated:W+diversity:V"),
    ("calibrated:0.6+diversity", "Combine re-rankers as calibrated:W+diversity:V"),
    ("calibrated:0.6+diversity:0.1:genres", "Combine re-rankers as calibrated:W+diversity:V"),
    ("calibrated:0.6+calibrated:0.2+diversity:0.1", "Combine re-rankers as calibrated:W+diversity:V"),
    ("calibrated:0.6+", "Combine re-rankers as calibrated:W+diversity:V"),
])
def test_bad_rerankers_are_refused_with_one_sentence(text, fragment):
    """Bugs planted: the weight check `0.0 <= w <= 1.0` dropped (mmr:1.5 accepted); the
    combined form's check that each term comes once dropped (calibrated:0.6+calibrated:0.2+
    diversity:0.1 read as calibrated:0.2+diversity:0.1)."""
    with pytest.raises(ConfigError) as caught:
        parse_rerank(text)
    message = str(caught.value)
    assert fragment in message and "\n" not in message and message.endswith(".")
    for bad in (True, 1.01, -1, float("nan"), "0.3"):
        with pytest.raises(ConfigError):
            MMR(bad)
        with pytest.raises(ConfigError):
            Calibrated(bad)
        with pytest.raises(ConfigError):
            CalibratedDiverse(0.5, bad)
        with pytest.raises(ConfigError):
            CalibratedDiverse(bad, 0.5)


# -- the re-rankers ------------------------------------------------------------------------
def test_weight_zero_keeps_the_models_order():
    """Every re-ranker at weight 0 gives back the model's list exactly, whatever the movies'
    indices. Bugs planted: relevance normalised as 1 - x (the order reversed); np.argmax
    replaced by the last maximum (ties reordered); MMR's picks put in the order of their
    movie indices instead of their positions in the model's list."""
    rng = np.random.default_rng(0)
    for trial in range(20):
        c, n_items = int(rng.integers(1, 60)), 200
        scores = np.sort(rng.normal(size=c))[::-1]
        if trial % 2:
            scores = np.round(scores, 0)  # many ties
        genres = rng.integers(0, 2, size=(n_items, 5)).astype(float)
        vectors = rng.normal(size=(n_items, 4))
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        item_idx = rng.permutation(n_items)[:c]  # movie indices unrelated to the model's order
        inp = RerankInput(item_idx, scores, 10, rng.integers(0, n_items, size=6), genres, vectors)
        for reranker in (MMR(0.0), MMR(0.0, "genres"), Calibrated(0.0), CalibratedDiverse(0.0, 0.0)):
            got = reranker.rerank(inp)
            assert got.tolist() == list(range(min(10, c))), (reranker, trial)


def test_the_mmr_list_keeps_the_models_order():
    """MMR shows the movies it picks best-ranked first (intra-list diversity depends on the
    set only). Here its second pick is the comedy (rank 5): shown fifth, after the model's
    better-ranked action movies. Bug planted: `MMR.rerank` returned the picking order."""
    scores = [1.0, 0.98, 0.96, 0.94, 0.6, 0.5]
    genres = [ACTION, ACTION, ACTION, (1, 0, 1), COMEDY, DRAMA]
    picked = MMR(0.5).pick(RerankInput(np.arange(6), np.asarray(scores), 5, np.zeros(0, np.int64),
                                      np.asarray(genres, float), None))
    assert picked[:2].tolist() == [0, 4]  # the greedy takes the comedy second
    got = toy(MMR(0.5), scores, genres, k=5)
    assert got.tolist() == sorted(picked.tolist()) and got[0] == 0 and 4 in got.tolist()
    rng = np.random.default_rng(8)
    for _ in range(20):
        c, n_items = int(rng.integers(12, 40)), 300
        inp = RerankInput(rng.permutation(n_items)[:c], np.sort(rng.normal(size=c))[::-1], 6,
                          np.zeros(0, np.int64), (rng.random((n_items, 5)) < 0.3).astype(float),
                          rng.normal(size=(n_items, 3)))
        for reranker in (MMR(float(rng.uniform(0.2, 1.0))), MMR(float(rng.uniform(0.2, 1.0)), "genres")):
            got = reranker.rerank(inp)
            assert np.all(np.diff(got) > 0) and set(got.tolist()) == set(reranker.pick(inp).tolist())


def test_mmr_raises_diversity():
    """Bug planted: MMR's penalty sign flipped (+ weight * similarity: it picks look-alikes)."""
    scores = [1.0, 0.95, 0.9, 0.85, 0.5, 0.45, 0.4]
    genres = [ACTION, ACTION, ACTION, ACTION, COMEDY, DRAMA, COMEDY]
    plain = toy(MMR(0.0), scores, genres)
    varied = toy(MMR(0.5), scores, genres)
    assert plain.tolist() == [0, 1, 2, 3]
    assert varied[0] == 0 and set(varied.tolist()) >= {4, 5}
    ild = M.intra_list_diversity(np.vstack([plain, varied]), np.asarray(genres), 4)
    assert ild[1] > ild[0] + 0.3


def test_mmr_uses_the_models_vectors_when_it_has_them():
    """Bug planted: "auto" similarity always from genres (the vectors ignored)."""
    scores = [1.0, 0.9, 0.8, 0.7]
    genres = [ACTION] * 4  # genres cannot tell these apart
    vectors = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    assert toy(MMR(0.6), scores, genres, k=2, vectors=vectors).tolist() == [0, 2]
    assert toy(MMR(0.6, "genres"), scores, genres, k=2).tolist() == [0, 1]
    inp = RerankInput(np.arange(4), np.asarray(scores), 2, np.zeros(0, np.int64), np.asarray(genres, float), None)
    with pytest.raises(ConfigError, match="no movie vectors"):
        MMR(0.5, "vectors").rerank(inp)


def test_calibrated_lowers_kl():
    """Bug planted: the KL term's weight dropped (calibrated ranks by relevance only)."""
    scores = [1.0, 0.97, 0.94, 0.91, 0.88, 0.5, 0.45, 0.4]
    genres = [ACTION] * 5 + [COMEDY, COMEDY, DRAMA]
    history = [0, 1, 5, 6]  # half action, half comedy
    plain = toy(Calibrated(0.0), scores, genres, history)
    calibrated = toy(Calibrated(0.5), scores, genres, history)
    hist = sp.csr_matrix(np.array([[1, 1, 0, 0, 0, 1, 1, 0]] * 2))
    kl = M.calibration_kl(np.vstack([plain, calibrated]), hist, np.asarray(genres), 4)
    assert kl[1] < kl[0] / 3
    assert 2 <= sum(genres[i] == ACTION for i in calibrated.tolist()) <= 3
    full = toy(Calibrated(1.0), scores, genres, history)
    assert full.tolist() == [0, 1, 5, 6]  # two of each, as the history; ties to the better-ranked


def test_calibrated_brings_in_the_genre_the_models_top_lacks():
    """History half action, half comedy; the model's top ten all action (scores in the
    thousands). Bug planted: `Calibrated` ranks by the raw scores (relevance not normalised:
    the KL term is then too small to matter and the list stays all action)."""
    scores = 5000.0 - 10.0 * np.arange(30)
    genres = [ACTION] * 20 + [COMEDY] * 10
    history = [0, 1, 2, 20, 21, 22]
    plain = toy(Calibrated(0.0), scores, genres, history, k=10)
    calibrated = toy(Calibrated(0.5), scores, genres, history, k=10)
    assert plain.tolist() == list(range(10))
    assert any(genres[i] == COMEDY for i in calibrated.tolist())
    hist = sp.csr_matrix((np.ones(12), np.tile(history, 2), [0, 6, 12]), shape=(2, 30))
    kl = M.calibration_kl(np.vstack([plain, calibrated]), hist, np.asarray(genres), 10)
    assert kl[1] < kl[0] / 2


def test_the_calibrated_list_keeps_the_models_order():
    """The chosen movies are shown best-ranked first, whatever order the greedy chose them
    in. Bug planted: `choose` returned the greedy's order (the best-calibrating movie first:
    here the model's top movie was pushed to third place)."""
    scores = [1.0, 0.99, 0.98, 0.6, 0.5, 0.4]
    genres = [ACTION, ACTION, ACTION, DRAMA, COMEDY, (0, 1, 1)]
    history = [3, 4, 5]  # comedy and drama only
    got = toy(Calibrated(0.6), scores, genres, history, k=4)
    assert 0 in got.tolist() and set(got.tolist()) & {3, 4, 5}
    assert got.tolist() == sorted(got.tolist())
    rng = np.random.default_rng(7)
    for _ in range(20):
        c = int(rng.integers(12, 40))
        got = toy(Calibrated(float(rng.uniform(0.2, 1.0))), np.sort(rng.normal(size=c))[::-1],
                  rng.integers(0, 2, size=(c, 5)), rng.integers(0, c, size=8), k=6)
        assert np.all(np.diff(got) > 0)


def test_the_exchange_pass_repairs_the_greedys_first_pick():
    """History half action, half comedy: to a one-movie list the action-comedy is the
    perfect match, so Steck's greedy takes it first and then has to unbalance the list;
    action + comedy (both better ranked) is calibrated and more relevant. Bug planted: the
    exchange pass skipped (the list stayed {action-comedy, action})."""
    scores = [1.0, 0.9, 0.1]
    genres = [ACTION, COMEDY, (1, 1, 0)]
    history = [0, 1]
    reranker = Calibrated(0.5)
    inp = RerankInput(np.arange(3), np.asarray(scores), 2, np.asarray(history), np.asarray(genres, float), None)
    one = reranker.choose(RerankInput(np.array([0, 1, 2]), np.array([1.0, 1.0, 1.0]), 1, inp.history_idx,
                                      inp.genre_matrix, None))
    assert one.positions.tolist() == [2] and one.kl == pytest.approx(0.0, abs=1e-12)  # the greedy's first pick
    choice = reranker.choose(inp)
    assert choice.positions.tolist() == [0, 1]
    assert choice.kl == pytest.approx(0.0, abs=1e-12)


def test_the_calibrated_list_is_a_local_optimum_of_the_metric_it_reports():
    """On random pools: the KL `choose` reports is the metric's KL of the list it returns,
    its objective is (1 - w) * relevance - w * that KL, and no single exchange of a list
    movie for a pool movie raises the objective. Bugs planted: the exchange pass's q divided
    by the list's length instead of its genre mass (a movie without genres then dilutes q:
    the reported KL is not the metric's); `kl_to_history` smoothing towards q instead of p;
    the exchange pass stopped after its first swap (not a local optimum)."""
    from movierec.rerank import relevance

    rng = np.random.default_rng(11)
    for trial in range(40):
        c, k, g = int(rng.integers(15, 60)), int(rng.integers(2, 11)), 6
        genres = (rng.random((c, g)) < 0.3).astype(float)
        genres[rng.integers(0, c)] = 0  # a movie without a genre
        scores = np.sort(rng.gamma(2.0, size=c))[::-1]
        history = rng.choice(c, size=int(rng.integers(3, 15)), replace=False)
        weight = float(rng.uniform(0.1, 1.0))
        inp = RerankInput(np.arange(c), scores, k, history, genres, None)
        choice = Calibrated(weight).choose(inp)
        kl = M.calibration_kl(choice.positions[None], [history], genres, k)[0]
        if np.isnan(kl):  # a history without genres: the model's order
            assert choice.positions.tolist() == list(range(k)) and np.isnan(choice.kl)
            continue
        assert choice.kl == pytest.approx(kl, abs=1e-9)
        rel = relevance(scores)
        assert choice.objective == pytest.approx((1 - weight) * rel[choice.positions].sum() - weight * kl, abs=1e-9)
        p = genre_distribution(history, genres)
        chosen = choice.positions.tolist()
        for slot in range(k):
            for movie in sorted(set(range(c)) - set(chosen)):
                other = chosen[:slot] + [movie] + chosen[slot + 1:]
                q = genre_distribution(np.asarray(other), genres)
                value = (1 - weight) * rel[other].sum() - weight * float(
                    kl_to_history(p, q if q is not None else np.zeros(g)))
                assert value <= choice.objective + 1e-9, (trial, slot, movie)


def test_the_exchange_pass_gives_the_same_list_in_blocks(monkeypatch):
    """The exchange pass evaluates list slots in blocks (memory bound); block size must not
    change the answer. Bug planted: the swap's slot read as the index within its block
    (`a` instead of `start + a`)."""
    import movierec.rerank as R

    rng = np.random.default_rng(5)
    cases = []
    for _ in range(15):
        c = int(rng.integers(20, 50))
        cases.append(RerankInput(np.arange(c), np.sort(rng.normal(size=c))[::-1], int(rng.integers(4, 12)),
                                 rng.integers(0, c, size=10), (rng.random((c, 7)) < 0.3).astype(float), None))
    whole = [Calibrated(0.8).choose(inp) for inp in cases]
    monkeypatch.setattr(R, "EXCHANGE_BLOCK", 1)  # one list slot at a time
    for inp, one in zip(cases, whole):
        got = Calibrated(0.8).choose(inp)
        assert got.positions.tolist() == one.positions.tolist()
        assert got.kl == pytest.approx(one.kl, abs=1e-12)


def test_calibrated_diverse_spreads_a_calibrated_list_over_distinct_genre_sets():
    """History: half action, half comedy. The model's top ten are near-duplicates (all plain
    action), then plain comedies, then action and comedy movies with a second genre, each
    different. Calibration alone takes five plain action and five plain comedies (the
    history's proportions, two genre sets); calibrated:0.9+diversity:0.2 stays close to the
    history and takes movies with distinct genre sets. Bug planted: the diversity weight
    not passed to the list objective (the calibrated list came back)."""
    g = 7  # action, comedy, thriller, adventure, romance, drama, crime
    def movie(*genres):
        row = np.zeros(g)
        row[list(genres)] = 1
        return row
    genres = np.array([movie(0)] * 10 + [movie(1)] * 6 + [movie(0, 2), movie(0, 3), movie(1, 4), movie(1, 5),
                                                          movie(0, 6), movie(1, 6)] + [movie(5)] * 4)
    scores = np.concatenate([1.0 - 0.01 * np.arange(10), 0.9 - 0.01 * np.arange(6), 0.85 - 0.01 * np.arange(6),
                             0.3 - 0.01 * np.arange(4)])
    c, history = len(scores), np.array([0, 1, 10, 11])  # plain action and plain comedy
    inp = RerankInput(np.arange(c), scores, 10, history, genres, None)
    plain = np.arange(10)
    calibrated = Calibrated(0.9).choose(inp)
    both = CalibratedDiverse(0.9, 0.2).choose(inp)
    lists = np.vstack([plain, calibrated.positions, both.positions])
    hist = sp.csr_matrix((np.ones(12), np.tile(history, 3), [0, 4, 8, 12]), shape=(3, c))
    kl = M.calibration_kl(lists, hist, genres, 10)
    ild = M.intra_list_diversity(lists, genres, 10)
    assert ild[0] == pytest.approx(0.0, abs=1e-12) and kl[0] > 1.0  # near-duplicates, one genre
    assert kl[1] == pytest.approx(0.0, abs=1e-9) and len({tuple(genres[i]) for i in calibrated.positions}) == 2
    assert kl[2] < kl[0] / 4 and ild[2] > ild[1] + 0.1
    assert len({tuple(genres[i]) for i in both.positions}) >= 4
    assert min(sum(genres[i][0] for i in both.positions), sum(genres[i][1] for i in both.positions)) >= 4
    assert both.positions.tolist() == sorted(both.positions.tolist()) and both.positions[0] == 0
    assert both.kl == pytest.approx(kl[2], abs=1e-9) and both.ild == pytest.approx(ild[2], abs=1e-9)


def test_calibrated_diverse_is_calibrated_at_diversity_zero_and_a_local_optimum():
    """On random pools: V = 0 gives `Calibrated(W)`'s list; otherwise the reported KL and
    intra-list diversity are the metrics' for the returned list, its objective is
    (1 - V) * [(1 - W) * relevance - W * KL] + V * k * ILD, and no single exchange of a list
    movie for a pool movie raises it (a history without genres keeps the diversity term
    only). Bugs planted: the exchange's diversity delta without the pair the newcomer and
    the replaced movie would have formed (`- dist[slot, newcomer]`: swaps judged wrongly, the
    list not a local optimum); the diversity weight not passed to the list objective."""
    from movierec.rerank import relevance

    rng = np.random.default_rng(12)
    for trial in range(40):
        c, k, g = int(rng.integers(15, 50)), int(rng.integers(2, 11)), 6
        genres = (rng.random((c, g)) < 0.3).astype(float)
        genres[rng.integers(0, c)] = 0  # a movie without a genre
        scores = np.sort(rng.gamma(2.0, size=c))[::-1]
        history = rng.choice(c, size=int(rng.integers(3, 15)), replace=False)
        w, v = float(rng.uniform(0.0, 1.0)), float(rng.uniform(0.05, 0.6))
        inp = RerankInput(np.arange(c), scores, k, history, genres, None)
        assert CalibratedDiverse(w, 0.0).choose(inp).positions.tolist() == Calibrated(w).choose(inp).positions.tolist()
        choice = CalibratedDiverse(w, v).choose(inp)
        chosen = choice.positions.tolist()
        assert chosen == sorted(chosen) and len(set(chosen)) == k
        p = genre_distribution(history, genres)
        rel = relevance(scores)

        def value(items):
            ild = float(M.intra_list_diversity(np.asarray([items]), genres, k)[0])
            if p is None:
                return (1 - v) * rel[items].sum() + v * k * ild
            q = genre_distribution(np.asarray(items), genres)
            kl = float(kl_to_history(p, q if q is not None else np.zeros(g)))
            return (1 - v) * ((1 - w) * rel[items].sum() - w * kl) + v * k * ild

        ild = M.intra_list_diversity(choice.positions[None], genres, k)[0]
        assert choice.ild == pytest.approx(ild, abs=1e-9)
        if p is None:
            assert np.isnan(choice.kl)
        else:
            metric_kl = M.calibration_kl(choice.positions[None], [history], genres, k)[0]
            assert choice.kl == pytest.approx(metric_kl, abs=1e-9)
        assert choice.objective == pytest.approx(value(chosen), abs=1e-9)
        for slot in range(k):
            for movie in sorted(set(range(c)) - set(chosen)):
                swapped = chosen[:slot] + [movie] + chosen[slot + 1:]
                assert value(swapped) <= choice.objective + 1e-9, (trial, slot, movie)


def test_the_metric_and_the_reranker_measure_kl_the_same_way():
    """Bug planted: calibration_kl smoothing q~ = (1 - alpha) q + alpha * q (not p)."""
    rng = np.random.default_rng(3)
    genres = rng.integers(0, 2, size=(40, 6)).astype(float)
    genres[5] = 0  # a movie without a genre
    history = [[1, 2, 3, 5], [7, 9]]
    lists = np.array([[10, 11, 12, 5, -1], [20, 21, 22, 23, 24]])
    got = M.calibration_kl(lists, history, genres, 5)
    for row, items in enumerate(lists):
        p = genre_distribution(np.asarray(history[row]), genres)
        q = genre_distribution(items[items >= 0], genres)
        assert got[row] == pytest.approx(float(kl_to_history(p, q)), rel=1e-9)
    assert got[0] > 0
    perfect = M.calibration_kl(np.array([[1, 2, 3, 5]]), [[1, 2, 3, 5]], genres, 4)
    assert perfect[0] == pytest.approx(0.0, abs=1e-12)
    assert np.isnan(M.calibration_kl(np.array([[1, 2]]), [[5]], genres, 2))[0]  # a history without genres


def test_relevance_is_normalised_per_list():
    """Bug planted: `relevance` returns the raw scores (a model with scores in the thousands
    then ignores the weight)."""
    scores = np.array([1.0, 0.95, 0.9, 0.85, 0.5, 0.45, 0.4])
    genres = [ACTION, ACTION, ACTION, ACTION, COMEDY, DRAMA, COMEDY]
    base = toy(MMR(0.3), scores, genres)
    assert toy(MMR(0.3), scores * 5000 + 7, genres).tolist() == base.tolist()
    assert toy(MMR(0.3), scores * 1e-4, genres).tolist() == base.tolist()


# -- the evaluation runner and compare -------------------------------------------------------
@pytest.fixture(scope="module")
def leave_last(ml100k):
    from movierec.evaluation.protocols import build_split
    from movierec.models import create

    split = build_split(ml100k, "leave-last", holdout=1, seed=42)
    train = split.train_full()
    return split, train, create("als", seed=0).fit(train)


def test_the_runner_reranks_the_models_longer_list(leave_last):
    """Bugs planted: the runner ranks only max(ks) (no longer pool: re-ranking can only
    reorder the same ten); the history passed to the re-ranker taken from the wrong rows."""
    from movierec.evaluation.runner import evaluate_ranking

    split, train, model = leave_last
    metrics = ("ndcg", "diversity_genre", "calibration_kl", "coverage")
    plain = evaluate_ranking(model, train, split.test, ks=(10,), metrics=metrics)
    same = evaluate_ranking(model, train, split.test, ks=(10,), metrics=metrics, rerank=MMR(0.0))
    assert np.array_equal(plain.recommendations, same.recommendations)
    mmr = evaluate_ranking(model, train, split.test, ks=(10,), metrics=metrics, rerank=MMR(0.5, "genres"))
    cal = evaluate_ranking(model, train, split.test, ks=(10,), metrics=metrics, rerank=Calibrated(0.7))
    outside = [not set(new) <= set(old)
               for new, old in zip(mmr.recommendations.tolist(), plain.recommendations.tolist())]
    assert np.mean(outside) > 0.5  # most lists hold movies from beyond the model's top ten
    assert mmr.summary["diversity_genre@10"] > 1.1 * plain.summary["diversity_genre@10"]
    assert cal.summary["calibration_kl@10"] < 0.6 * plain.summary["calibration_kl@10"]
    assert cal.info["rerank"] == "calibrated:0.7" and plain.info["rerank"] is None


def test_the_runner_calibrates_each_user_to_their_own_history(leave_last):
    """Bug planted: the history handed to the re-ranker read from the list's row instead of
    the user's row (invisible when every user is evaluated: rows and users then coincide)."""
    from movierec.evaluation.runner import evaluate_ranking

    split, train, model = leave_last
    late = split.test.subset(split.test.user_idx >= 400)  # rows no longer equal user indices
    result = evaluate_ranking(model, train, late, ks=(10,), metrics=("ndcg",), rerank=Calibrated(0.8))
    seen = train.to_csr("ones")
    genres = train.catalog.genre_matrix
    for row in range(0, len(result.user_idx), 50):
        u = int(result.user_idx[row])
        idx, scores = model.rank_indices(np.array([u]), 100, seen)
        own = Calibrated(0.8).rerank(RerankInput(idx[0], scores[0], 10, seen.indices[seen.indptr[u]:seen.indptr[u + 1]],
                                                 genres, None))
        assert result.recommendations[row].tolist() == idx[0][own].tolist()


def test_a_lower_calibration_kl_counts_as_better(leave_last):
    """Bug planted: significance's `better` left as diff > 0 for calibration_kl (a better
    calibrated model marked '-' in the table)."""
    from movierec.evaluation.runner import compare_models
    from movierec.models import create

    split, train, model = leave_last
    comp = compare_models({"pop": create("pop").fit(train), "als": model}, train, split.test, ks=(10,),
                          metrics=("ndcg", "calibration_kl"), n_resamples=50)
    sig = comp.significance.set_index("metric")
    assert comp.results["als"].summary["calibration_kl@10"] < comp.results["pop"].summary["calibration_kl@10"]
    assert bool(sig.loc["calibration_kl@10", "better"]) and sig.loc["calibration_kl@10", "diff"] < 0
    assert bool(sig.loc["ndcg@10", "better"]) == bool(sig.loc["ndcg@10", "diff"] > 0)


def test_served_and_offline_mmr_lists_agree(leave_last, ml100k):
    """The answer layer re-ranks a known user's list as the runner does (same pool, same
    vectors; BPR's embeddings carry a bias column its similarity vectors lack). Bug planted:
    the answerer's MMR compared the embeddings' movie side instead of the model's
    similarity vectors."""
    from movierec.answers import Answerer, KnownUser, Query
    from movierec.artifacts import Bundle
    from movierec.evaluation.runner import evaluate_ranking
    from movierec.models import create

    split, train, _ = leave_last
    model = create("bpr", seed=0).fit(train)
    answerer = Answerer(Bundle.from_model(model, train))
    result = evaluate_ranking(model, train, split.test, ks=(10,), metrics=("ndcg",), rerank=MMR(0.4))
    for row in range(0, len(result.user_idx), 97):
        user = train.users.raw(np.array([result.user_idx[row]]))[0]
        served = answerer.answer(Query(KnownUser(user), k=10, rerank=MMR(0.4))).movie_ids
        assert list(served) == train.items.raw(result.recommendations[row]).tolist()


def test_compare_reranks_and_draws_the_trade_off(tmp_path):
    """Bug planted: `compare` dropped `rerank` on the way to `compare_models` (the lists were
    the models' own)."""
    from movierec.experiments import CompareSpec, compare
    from movierec.reporting.report import write_report

    spec = dict(dataset="ml-100k", protocol="leave-last", holdout=1, models=["pop"], config_root=tmp_path)
    plain = compare(CompareSpec(**spec))
    varied = compare(CompareSpec(**spec, rerank="calibrated:0.8", rerank_curves=["mmr", "calibrated"],
                                 curve_weights=[0, 0.5, 1]))
    doc = varied.to_json()
    assert doc["rerank"] == "calibrated:0.8" and plain.to_json()["rerank"] is None
    assert doc["models"]["pop"]["calibration_kl@10"] < 0.7 * plain.to_json()["models"]["pop"]["calibration_kl@10"]
    points = doc["rerank_curves"]["points"]
    assert [(p["rerank"], p["weight"]) for p in points] == [("mmr", 0), ("mmr", 0.5), ("mmr", 1),
                                                            ("calibrated", 0), ("calibrated", 0.5), ("calibrated", 1)]
    zero = [p for p in points if p["weight"] == 0]
    assert zero[0]["ndcg@10"] == zero[1]["ndcg@10"] == pytest.approx(plain.results["pop"].summary["ndcg@10"])
    paths = write_report(varied, tmp_path / "report")
    assert paths["rerank_curves"].stat().st_size > 10_000
    assert "Re-ranking trade-off" in (tmp_path / "report" / "report.md").read_text()
    with pytest.raises(ConfigError, match="Unknown re-ranker 'fancy' for a trade-off curve"):
        compare(CompareSpec(**spec, rerank_curves=["fancy"]))
    with pytest.raises(ConfigError, match="must be a number from 0 to 1"):
        compare(CompareSpec(**spec, rerank_curves=["mmr"], curve_weights=[0, 2]))


def test_compare_cli_rerank_json_and_movies_with_train_test(tmp_path, ml100k):
    """`compare --train/--test --movies` has genre metrics (None without a movies file) and
    `--json` reports calibration_kl@K. Bug planted: the movies file ignored for explicit files."""
    from movierec.cli import app

    frame = ml100k.to_frame()
    cut = np.quantile(frame["timestamp"], 0.9)
    frame[frame.timestamp < cut].to_csv(tmp_path / "train.csv", index=False)
    frame[frame.timestamp >= cut].to_csv(tmp_path / "test.csv", index=False)
    movies = tmp_path / "movies.csv"
    catalog = ml100k.catalog
    rows = ["movieId,title,genres"] + [
        f'{mid},"{str(catalog.titles[i]).replace(chr(34), "")}",{"|".join(catalog.genres[i]) or "(no genres listed)"}'
        for i, mid in enumerate(ml100k.items.raw_ids.tolist())]
    movies.write_text("\n".join(rows) + "\n")
    runner = CliRunner()
    base = ["compare", "--train", str(tmp_path / "train.csv"), "--test", str(tmp_path / "test.csv"), "--models",
            "pop", "--json", "--config-dir", str(tmp_path)]
    without = runner.invoke(app, base)
    assert without.exit_code == 0, without.output
    doc = json.loads(without.stdout.strip().splitlines()[-1])
    assert doc["models"]["pop"]["calibration_kl@10"] is None and doc["models"]["pop"]["diversity_genre@10"] is None
    given = runner.invoke(app, [*base, "--movies", str(movies), "--rerank", "mmr:0.3"])
    assert given.exit_code == 0, given.output
    doc = json.loads(given.stdout.strip().splitlines()[-1])
    assert doc["rerank"] == "mmr:0.3"
    assert doc["models"]["pop"]["calibration_kl@10"] > 0 and doc["models"]["pop"]["diversity_genre@10"] > 0


def test_compare_cli_refuses_bad_rerankers_in_one_line(tmp_path):
    """Bug planted: the CLI building CompareSpec without rerank (an unknown name accepted)."""
    for args in (["--rerank", "mmr:7"], ["--rerank", "fancy:0.2"], ["--rerank-curve", "fancy"],
                 ["--rerank-curve", "mmr", "--curve-weights", "0,3"], ["--curve-weights", "0,0.5"]):
        proc = subprocess.run([str(SCRIPT), "compare", "--dataset", "ml-100k", "--models", "pop", *args],
                              capture_output=True, text=True, timeout=180)
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        assert proc.returncode == 1 and len(lines) == 1 and lines[0].startswith("error: "), (args, proc.stderr)


# -- the CLI and the API answer what the library answers --------------------------------------
@pytest.fixture(scope="module")
def registry(tmp_path_factory, ml100k) -> Path:
    return make_registry(tmp_path_factory.mktemp("rerank") / "registry", ml100k)


@pytest.fixture(scope="module")
def library(registry):
    from movierec.answers import Answerer
    from movierec.artifacts import ModelRegistry

    return Answerer(ModelRegistry(registry).load(NAME))


@pytest.fixture(scope="module")
def server(registry, tmp_path_factory):
    live = LiveServer(registry, tmp_path_factory.mktemp("rerank_server"), cache_size=100)
    yield live
    live.stop()


def items(answer) -> list:
    return answer.items_json()


def test_the_api_answers_what_the_library_answers(server, library):
    """Bugs planted: GET /recommend built its Query without `rerank` (the parameter ignored:
    the plain list answered); `parse_rerank` splitting the combined form on '+' only (a URL
    typed by hand, where '+' reads as a space, refused)."""
    from movierec.answers import KnownUser, NewPerson, Query

    combined = "calibrated:0.6+diversity:0.1"
    for text in ("mmr:0.5", "calibrated:0.6", combined):
        rerank = parse_rerank(text)
        want = items(library.answer(Query(KnownUser(42), k=10, rerank=rerank)))
        assert want != items(library.answer(Query(KnownUser(42), k=10)))
        got = server.get("/recommend", params={"user_id": 42, "k": 10, "rerank": text})
        assert got.status_code == 200 and got.json()["items"] == want
        batch = server.post("/recommend/batch", json={"user_ids": [42, 7], "k": 10, "rerank": text}).json()
        both = library.answer_users([42, 7], Query(KnownUser(42), k=10, rerank=rerank))  # scored together, as the route
        assert [r["items"] for r in batch["results"]] == [items(a) for a in both]
        cold = items(library.answer(Query(NewPerson(liked=(1, 50, 181)), k=8, rerank=rerank)))
        assert server.get("/recommend_cold", params={"liked": "1,50,181", "k": 8, "rerank": text}).json()["items"] \
            == cold
        assert server.post("/recommend_cold", json={"liked": [1, 50, 181], "k": 8, "rerank": text}).json()["items"] \
            == cold
    plain = server.get("/recommend", params={"user_id": 42, "k": 10}).json()["items"]
    assert plain == items(library.answer(Query(KnownUser(42), k=10)))
    typed = httpx.get(f"{server.base}/recommend?user_id=42&k=10&rerank={combined}", timeout=60)  # '+' -> ' '
    assert typed.status_code == 200, typed.text
    assert typed.json()["items"] == items(library.answer(Query(KnownUser(42), k=10, rerank=parse_rerank(combined))))


def test_similar_and_profile_lists_take_rerank_too(server, library):
    """Bugs planted: /similar/{id} and /profile/recommend ignoring `rerank` (FastAPI drops
    unknown parameters silently, so the plain list would come back without a word)."""
    from movierec.answers import NewPerson, Query, SimilarTo

    rerank = parse_rerank("mmr:0.6")
    want = items(library.answer(Query(SimilarTo(50), k=10, rerank=rerank)))
    assert want != items(library.answer(Query(SimilarTo(50), k=10)))
    assert server.get("/similar/50", params={"k": 10, "rerank": "mmr:0.6"}).json()["items"] == want
    profile = "rerank-profile-01"
    rated = ((50, 5.0), (172, 5.0), (1, 4.0))
    assert server.post("/ratings", json={"profile": profile, "ratings": [
        {"movie_id": m, "rating": r} for m, r in rated]}).status_code == 200
    want = items(library.answer(Query(NewPerson(rated=rated), k=10, rerank=rerank)))
    got = server.get("/profile/recommend", params={"profile": profile, "k": 10, "rerank": "mmr:0.6"}).json()
    assert got["items"] == want
    with pytest.raises(ConfigError) as caught:
        parse_rerank("mmr:2")
    assert error(server.get("/similar/50", params={"rerank": "mmr:2"}), 422) == str(caught.value)


@pytest.mark.parametrize("method, path, kwargs", [
    ("GET", "/recommend", {"params": {"user_id": 42, "rerank": "mmr:1.5"}}),
    ("GET", "/recommend", {"params": {"user_id": 42, "rerank": "fancy:0.5"}}),
    ("GET", "/recommend_cold", {"params": {"liked": "1,50", "rerank": "calibrated:-1"}}),
    ("POST", "/recommend_cold", {"json": {"liked": [1, 50], "rerank": "mmr"}}),
    ("POST", "/recommend/batch", {"json": {"user_ids": [1], "rerank": "mmr:x"}}),
])
def test_the_api_refuses_bad_rerankers_with_the_librarys_sentence(server, method, path, kwargs):
    """Bug planted: the route catching ConfigError from parse_rerank and answering the plain list."""
    text = kwargs.get("params", kwargs.get("json"))["rerank"]
    with pytest.raises(ConfigError) as caught:
        parse_rerank(text)
    response = httpx.request(method, server.base + path, timeout=60, **kwargs)
    assert error(response, 422) == str(caught.value)


def test_the_fast_path_leaves_rerank_to_the_route():
    """The middleware's plain-question parsers pass a query with rerank= on to the route."""
    from movierec.serving.middleware import cold_query, recommend_query

    assert recommend_query(b"user_id=42&k=10") is not None
    assert recommend_query(b"user_id=42&k=10&rerank=mmr%3A0.3") is None
    assert cold_query(b"liked=1,50&rerank=calibrated%3A0.5") is None


def test_the_cli_answers_what_the_library_answers_and_refuses_in_one_line(registry, library):
    """Bug planted: `recommend --rerank` parsed but not passed to the Query."""
    from movierec.answers import KnownUser, Query, SimilarTo

    def run(*args):
        return subprocess.run([str(SCRIPT), args[0], "--registry", str(registry), "--name", NAME, *args[1:]],
                              capture_output=True, text=True, env=dict(os.environ), timeout=180)

    proc = run("recommend", "--user", "42", "-k", "10", "--rerank", "mmr:0.5", "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout.strip().splitlines()[-1])
    assert doc["rerank"] == "mmr:0.5"
    assert doc["items"] == items(library.answer(Query(KnownUser(42), k=10, rerank=MMR(0.5))))
    proc = run("similar", "--movie", "50", "-k", "6", "--rerank", "calibrated:0.4", "--json")
    assert proc.returncode == 0, proc.stderr
    similar = library.answer(Query(SimilarTo(50), k=6, rerank=Calibrated(0.4)))
    assert not similar.fallback
    assert json.loads(proc.stdout.strip().splitlines()[-1])["items"] == items(similar)
    for args in (("recommend", "--user", "42", "--rerank", "mmr:2"), ("similar", "--movie", "50", "--rerank", "x:1")):
        proc = run(*args)
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        assert proc.returncode == 1 and len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
        with pytest.raises(ConfigError) as caught:
            parse_rerank(args[-1])
        assert lines[0] == f"error: {caught.value}"
