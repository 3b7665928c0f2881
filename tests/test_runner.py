"""evaluate_ranking / evaluate_ratings, protocols, sampled negatives and statistics."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from movierec.data.dataset import Dataset
from movierec.data.idmap import IdMap
from movierec.errors import CapabilityError, ConfigError
from movierec.evaluation import stats
from movierec.evaluation.protocols import (
    SampledEvaluationWarning,
    build_split,
    build_splits,
    default_relevance_threshold,
    sample_negatives,
    split_summary,
)
from movierec.evaluation.runner import compare_models, evaluate_ranking, evaluate_ratings
from movierec.models import create
from movierec.models.base import Capabilities, Recommender


def tiny_dataset(rows) -> Dataset:
    """rows: (user, item, rating, timestamp) with raw IDs."""
    frame = pd.DataFrame(rows, columns=["u", "i", "r", "t"])
    users, uidx = IdMap.from_values(frame["u"].to_numpy())
    items, iidx = IdMap.from_values(frame["i"].to_numpy())
    return Dataset("tiny", users, items, uidx.astype(np.int32), iidx.astype(np.int32),
                   frame["r"].to_numpy(np.float32), frame["t"].to_numpy(np.int64))


class FixedScores(Recommender):
    """Test model: scores from a given users x items matrix (by index)."""

    name = "fixed"
    capabilities = Capabilities(predicts_ratings=True)

    def __init__(self, scores=None):
        self.scores = scores

    def _fit(self, train, validation):
        self.matrix_ = np.asarray(self.scores, dtype=np.float32)

    def _score(self, user_idx):
        return self.matrix_[user_idx]

    def _predict(self, u, i):
        return self.matrix_[u, i]

    def _state(self):
        return {"matrix": self.matrix_}

    def _set_state(self, state):
        self.matrix_ = state["matrix"]


@pytest.fixture(scope="module")
def tiny():
    # users 10, 20; items 1..5; test = last interaction per user
    ds = tiny_dataset([
        (10, 1, 5, 1), (10, 2, 3, 2), (10, 3, 4, 3), (10, 4, 5, 9),
        (20, 1, 2, 1), (20, 5, 4, 2), (20, 3, 1, 8), (20, 2, 5, 9),
    ])
    train = ds.subset(ds.timestamp < 5)
    test = ds.subset(ds.timestamp >= 5)
    return ds, train, test


def test_evaluate_ranking_hand_case(tiny):
    ds, train, test = tiny
    # item index order follows first appearance: 1,2,3,4,5 -> 0..4
    scores = np.array([[9, 8, 7, 6, 5],    # user 10: train {1,2,3} excluded -> ranks 4 then 5
                       [1, 2, 3, 4, 5]])   # user 20: train {1,5} excluded -> 4, 3, 2
    model = FixedScores(scores).fit(train)
    res = evaluate_ranking(model, train, test, ks=(1, 2), relevance_threshold=None)
    assert list(res.per_user.index) == [10, 20]
    # user 10: test {4} at rank 1; user 20: test {3, 2} at ranks 2 and 3
    np.testing.assert_allclose(res.per_user["hr@1"], [1, 0])
    np.testing.assert_allclose(res.per_user["precision@2"], [0.5, 0.5])
    np.testing.assert_allclose(res.per_user["recall@2"], [1, 0.5])
    np.testing.assert_allclose(res.per_user["mrr"], [1, 0.5])
    np.testing.assert_allclose(res.per_user["n_train"], [3, 2])
    assert res.summary["ndcg@2"] == pytest.approx(np.mean([1.0, (1 / np.log2(3)) / (1 + 1 / np.log2(3))]))
    assert res.recommendations.shape == (2, 2)
    # threshold 4: user 20 has only item 2 (rating 5) relevant; user 10 item 4 (5)
    res4 = evaluate_ranking(model, train, test, ks=(2,), relevance_threshold=4)
    np.testing.assert_allclose(res4.per_user["recall@2"], [1, 0])
    # threshold 6: nobody has a relevant test item
    res6 = evaluate_ranking(model, train, test, ks=(2,), relevance_threshold=6)
    assert len(res6.per_user) == 0 and res6.info["n_users_without_relevant"] == 2
    # without training exclusion the train items come first for user 10
    res_incl = evaluate_ranking(model, train, test, ks=(2,), exclude_train=False)
    assert res_incl.per_user.loc[10, "hr@2"] == 0


def test_evaluate_ratings(tiny):
    ds, train, test = tiny
    scores = np.full((2, 5), 4.0)
    res = evaluate_ratings(FixedScores(scores).fit(train), test)
    truth = test.rating.astype(float)
    assert res["n"] == 3
    assert res["rmse"] == pytest.approx(np.sqrt(np.mean((truth - 4) ** 2)))
    assert res["mae"] == pytest.approx(np.mean(np.abs(truth - 4)))
    with pytest.raises(CapabilityError):
        evaluate_ratings(create("pop").fit(train), test)


def test_evaluate_ratings_predicts_in_bounded_chunks(tiny, monkeypatch):
    """Millions of test ratings are predicted a chunk at a time, with the same RMSE."""
    from movierec.evaluation import runner

    ds, train, test = tiny
    scores = np.arange(10, dtype=np.float32).reshape(2, 5) / 2
    model = FixedScores(scores).fit(train)
    whole = evaluate_ratings(model, test)
    truth = test.rating.astype(float)
    expected = scores[test.user_idx, test.item_idx]
    assert whole["rmse"] == pytest.approx(np.sqrt(np.mean((truth - expected) ** 2)))
    calls = []
    predict = model.predict_indices
    monkeypatch.setattr(model, "predict_indices", lambda u, i: calls.append(len(u)) or predict(u, i))
    monkeypatch.setattr(runner, "PREDICT_CHUNK_PAIRS", 2)
    chunked = evaluate_ratings(model, test)
    assert calls == [2, 1]
    assert chunked == pytest.approx(whole)


@pytest.fixture(scope="module")
def temporal(ml100k):
    return build_split(ml100k, "temporal")


def test_temporal_protocol_is_leak_free_and_reports_drops(temporal):
    assert temporal.train.timestamp.max() <= temporal.test.timestamp.min()
    info = split_summary(temporal)
    assert info["protocol"] == "temporal" and info["dropped"]["test_unseen_users"] > 0
    seen = temporal.train.user_counts() > 0
    assert seen[temporal.test.user_idx].all()  # no cold users left in test
    assert info["n_train"] + info["n_validation"] + info["n_test"] + sum(
        v for k, v in info["dropped"].items() if k.endswith("_ratings")) == 100_000


def test_protocol_names(ml100k):
    ll = build_split(ml100k, "leave-last", holdout=1)
    assert np.bincount(ll.test.user_idx).max() == 1
    frac = build_split(ml100k, "leave-last", holdout=0.2)
    assert frac.test.n_ratings > ll.test.n_ratings * 10
    rnd = build_split(ml100k, "random", holdout=0.1, seed=3)
    assert rnd.info["seed"] == 3
    for bad in (("bogus", None), ("temporal", 0.7), ("leave-last", 1.5)):
        with pytest.raises(ConfigError):
            build_split(ml100k, *bad)


def test_one_dispatcher_for_every_protocol(ml100k, tmp_path):
    """Rating evaluation (no validation part, unseen test users kept) and ranking
    comparisons (validation part, unseen dropped) split through the same function."""
    folds = build_splits(ml100k, "ml100k-folds", validation=False, drop_unseen_test=False)
    assert [s.info["fold"] for s in folds] == ["u1", "u2", "u3", "u4", "u5"]
    assert all(s.train.n_ratings == 80_000 and s.test.n_ratings == 20_000 for s in folds)
    rating = build_split(ml100k, "random", holdout=0.2, seed=1, validation=False, drop_unseen_test=False)
    assert rating.validation is None and rating.train.n_ratings + rating.test.n_ratings == 100_000
    ranking = build_split(ml100k, "random", holdout=0.2, seed=1)
    assert ranking.validation.n_ratings > 15_000 and ranking.train.n_ratings < 65_000
    temporal_rating = build_split(ml100k, "temporal", validation=False, drop_unseen_test=False)
    assert temporal_rating.test.n_ratings == 20_000  # default test share 0.2 without validation
    last = build_split(ml100k, "leave-last", validation=False, drop_unseen_test=False)
    assert last.validation is None and last.test.n_ratings == 943
    frame = ml100k.to_frame()
    frame.iloc[:90_000].to_csv(tmp_path / "a.csv", index=False)
    frame.iloc[90_000:].to_csv(tmp_path / "b.csv", index=False)
    files = build_split(None, "files", files=(tmp_path / "a.csv", tmp_path / "b.csv"), drop_unseen_test=False)
    assert files.info["protocol"] == "files" and files.test.n_ratings == 10_000
    from dataclasses import replace

    with pytest.raises(ConfigError, match="needs the ml-100k dataset"):
        build_splits(replace(ml100k, name="other"), "ml100k-folds")
    with pytest.raises(ConfigError):
        build_split(None, "files")


def test_default_relevance_threshold(ml100k, ml_small):
    assert default_relevance_threshold(ml100k) == 4.0
    assert 3.5 < default_relevance_threshold(ml_small) <= 4.0  # 0.5-5 scale: ratings >= 4


def test_full_ranking_on_ml100k(temporal):
    history = temporal.train_full()
    pop = create("pop").fit(temporal.train, temporal.validation)
    rnd = create("random").fit(temporal.train, temporal.validation)
    res = evaluate_ranking(pop, history, temporal.test, ks=(10, 20), relevance_threshold=4)
    for col in ("ndcg@10", "recall@10", "precision@10", "hr@10", "map@10", "mrr", "n_train", "stratum",
                "novelty@20", "diversity_genre@10", "long_tail@10"):
        assert col in res.per_user.columns
    for key in ("coverage@10", "gini@20", "novelty@10", "ndcg@20"):
        assert key in res.summary
    assert res.per_user.index.name == "user"
    # recommendations never contain history items
    seen = history.to_csr("ones")
    rec = res.recommendations
    assert seen[np.repeat(res.user_idx, rec.shape[1]), rec.ravel()].sum() == 0
    res_r = evaluate_ranking(rnd, history, temporal.test, ks=(10,), relevance_threshold=4)
    assert res.summary["ndcg@10"] > 3 * res_r.summary["ndcg@10"]
    assert set(res.by_stratum().index) <= {"cold", "warm", "heavy"}
    with pytest.raises(ConfigError):
        evaluate_ranking(pop, history, temporal.test, metrics=("nope",))


def test_shared_candidate_mask(temporal):
    pop = create("pop").fit(temporal.train)
    mask = np.zeros(temporal.train.n_items, dtype=bool)
    mask[::2] = True
    res = evaluate_ranking(pop, temporal.train_full(), temporal.test, ks=(10,), candidates=mask)
    rec = res.recommendations
    assert np.all(mask[rec[rec >= 0]])


def test_sampled_negatives_warn_cache_and_rank_within(temporal, tmp_path):
    history = temporal.train_full()
    with pytest.warns(SampledEvaluationWarning):
        cand = sample_negatives(history, temporal.test, n_negatives=50, seed=1, cache_dir=tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = sample_negatives(history, temporal.test, n_negatives=50, seed=1, cache_dir=tmp_path)
    assert again is cand and list(tmp_path.glob("negatives-*.npz"))
    users = np.unique(temporal.test.user_idx)
    sizes = np.diff(cand.indptr)[users]
    test_sizes = np.bincount(temporal.test.user_idx, minlength=history.n_users)[users]
    np.testing.assert_array_equal(sizes, test_sizes + 50)
    assert cand.multiply(history.to_csr("ones")).nnz == 0  # negatives are never history items
    pop = create("pop").fit(temporal.train)
    full = evaluate_ranking(pop, history, temporal.test, ks=(10,), relevance_threshold=4)
    sampled = evaluate_ranking(pop, history, temporal.test, ks=(10,), relevance_threshold=4, candidates=cand)
    rec = sampled.recommendations
    for row, u in zip(rec, sampled.user_idx):
        assert set(row[row >= 0]) <= set(cand[u].indices)
    assert sampled.summary["hr@10"] > full.summary["hr@10"]  # sampling inflates


def test_stats_functions():
    rng = np.random.default_rng(0)
    a = rng.random(200)
    b = a - 0.05 + rng.normal(0, 0.05, 200)
    t, p = stats.paired_ttest(a, b)
    ref = sps.ttest_rel(a, b)
    assert (t, p) == pytest.approx((ref.statistic, ref.pvalue))
    w, pw = stats.wilcoxon_test(a, b)
    assert pw == pytest.approx(sps.wilcoxon(a, b).pvalue)
    assert stats.paired_ttest(a, a) == (0.0, 1.0) and stats.wilcoxon_test(a, a)[1] == 1.0
    # Holm: sorted p * (m - rank), monotone, capped at 1
    np.testing.assert_allclose(stats.holm([0.01, 0.04, 0.03, 0.5]), [0.04, 0.09, 0.09, 0.5])
    np.testing.assert_allclose(stats.holm([0.9, 0.8]), [1.0, 1.0])
    adj = stats.holm([0.01, np.nan])
    assert adj[0] == pytest.approx(0.01) and np.isnan(adj[1])
    m, lo, hi = stats.bootstrap_ci(a, seed=5)
    assert lo < m < hi and m == pytest.approx(a.mean())
    assert stats.bootstrap_ci(a, seed=5) == (m, lo, hi)  # seeded
    se = a.std(ddof=1) / np.sqrt(len(a))
    assert hi - lo == pytest.approx(2 * 1.96 * se, rel=0.25)
    assert stats.bootstrap_ci([0.3, 0.3]) == (0.3, 0.3, 0.3)


def test_compare_models_same_users_and_significance(temporal):
    models = {n: create(n).fit(temporal.train, temporal.validation) for n in ("random", "pop")}
    comp = compare_models(models, temporal.train_full(), temporal.test, ks=(10,), relevance_threshold=4,
                          n_resamples=300)
    assert comp.reference == "pop"
    a, b = (comp.results[n].per_user for n in ("random", "pop"))
    assert list(a.index) == list(b.index)
    row = comp.significance.query("model == 'random' and metric == 'ndcg@10'").iloc[0]
    assert row["significant"] and not row["better"]
    doc = comp.to_json()
    assert set(doc["models"]) == {"random", "pop"} and "ndcg@10" in doc["models"]["pop"]
    lo, hi = doc["ci"]["values"]["pop"]["ndcg@10"]
    assert lo <= doc["models"]["pop"]["ndcg@10"] <= hi


def test_diversity_emb_uses_declared_vectors_only(temporal):
    """diversity_emb comes from a model's declared movie vectors; a model without them
    gets NaN and a note, never a guess from its attributes."""
    history = temporal.train_full()
    pop = create("pop").fit(history)
    pop.item_embeddings_ = np.ones((history.n_items, 2), np.float32)  # an undeclared attribute is ignored
    res = evaluate_ranking(pop, history, temporal.test, ks=(10,), metrics=("ndcg", "diversity_emb"))
    assert np.isnan(res.summary["diversity_emb@10"]) and "diversity_emb skipped" in res.info["notes"][0]
    als = create("als", factors=8, iterations=2).fit(history)
    res = evaluate_ranking(als, history, temporal.test, ks=(10,), metrics=("ndcg", "diversity_emb"))
    assert 0 < res.summary["diversity_emb@10"] <= 2 and res.info["notes"] == []
