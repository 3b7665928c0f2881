"""Negative sampling of the PyTorch ranking models (neumf, mf-rank with loss="bpr"), drawn
chunk by chunk as the epoch goes (`movierec.models._ranking_common`): bounded memory, the
same rows as one epoch-wide draw (every positive once, `n_neg` fresh negatives each, none
a seen movie), and the same draws for the same seed.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from movierec.models import _ranking_common, create
from movierec.models._ranking_common import (
    NegativeSampler,
    chunked_batches,
    implicit_interactions,
    pairwise_chunks,
    pointwise_chunks,
)
from movierec.training.options import RuntimeOptions


@pytest.fixture(scope="module")
def positives():
    """Dense enough interactions (60 users x 40 movies, about a third seen) that a negative
    drawn without the seen-pairs check would often be a positive."""
    rng = np.random.default_rng(7)
    seen = rng.random((60, 40)) < 0.35
    seen[:, 0] = True  # every user has a positive
    users, items = np.nonzero(seen)
    return users.astype(np.int64), items.astype(np.int64), 40


def _pairs(users: np.ndarray, items: np.ndarray) -> list[tuple[int, int]]:
    return sorted(zip(users.tolist(), items.tolist()))


def test_pointwise_chunks_pair_each_positive_with_fresh_unseen_negatives(positives):
    users, items, n_items = positives
    sampler, n_neg, chunk_rows = NegativeSampler(users, items, n_items), 3, 64
    rng = np.random.default_rng(0)
    epochs = [list(pointwise_chunks(users, items, sampler, n_neg, rng, chunk_rows)) for _ in range(2)]
    for chunks in epochs:
        assert len(chunks) > 1 and all(len(u) <= chunk_rows for u, _, _ in chunks)
        u, i, y = (np.concatenate(parts) for parts in zip(*chunks))
        assert y.dtype == np.float32 and set(np.unique(y).tolist()) == {0.0, 1.0}
        pos, neg = y == 1, y == 0
        assert _pairs(u[pos], i[pos]) == _pairs(users, items)  # every positive exactly once
        assert not sampler.contains(u[neg], i[neg]).any()  # no negative is a seen movie
        # n_neg negatives for each positive, so for each user n_neg per interaction
        np.testing.assert_array_equal(np.bincount(u[neg], minlength=60), n_neg * np.bincount(users, minlength=60))
        # positives and negatives are mixed within a chunk, not laid out positives first
        assert 0 < chunks[0][2][: len(chunks[0][2]) // 2].mean() < 1
    # fresh each epoch: another order and other negatives
    assert not np.array_equal(epochs[0][0][1], epochs[1][0][1])
    # the same seed draws the same epoch
    again = list(pointwise_chunks(users, items, sampler, n_neg, np.random.default_rng(0), chunk_rows))
    for a, b in zip(epochs[0], again, strict=True):
        for x, z in zip(a, b):
            np.testing.assert_array_equal(x, z)


def test_pairwise_chunks_hold_whole_batches_of_unseen_negatives(positives):
    users, items, n_items = positives
    sampler, n_neg, batch = NegativeSampler(users, items, n_items), 4, 16
    chunks = list(pairwise_chunks(users, items, sampler, n_neg, np.random.default_rng(1), batch, chunk_rows=200))
    assert len(chunks) > 1
    # 200 negatives a chunk at most, in whole batches of 16 positives: 3 batches, 48 positives
    assert all(len(u) == 48 for u, _, _ in chunks[:-1]) and all(j.shape == (len(u), n_neg) for u, _, j in chunks)
    u, i, j = (np.concatenate(parts) for parts in zip(*chunks))
    assert _pairs(u, i) == _pairs(users, items)
    assert not sampler.contains(np.repeat(u, n_neg), j.ravel()).any()
    # a batch bigger than the chunk bound: one batch a chunk
    one = list(pairwise_chunks(users, items, sampler, n_neg, np.random.default_rng(1), batch, chunk_rows=10))
    assert {len(c[0]) for c in one[:-1]} == {batch}


@pytest.mark.parametrize("sizes, batch", [([10, 10, 3], 4), ([2, 1, 5, 2, 7], 4), ([8, 8], 4), ([3], 8), ([], 4)])
def test_chunked_batches_slice_the_rows_as_one_array_would(sizes, batch):
    start = np.cumsum([0, *sizes])
    chunks = [(np.arange(a, b), np.arange(a, b) * 10.0) for a, b in zip(start[:-1], start[1:])]
    batches = list(chunked_batches(iter(chunks), batch, torch.device("cpu")))
    total = int(start[-1])
    assert [len(b[0]) for b in batches] == [min(batch, total - s) for s in range(0, total, batch)]
    if batches:
        np.testing.assert_array_equal(torch.cat([b[0] for b in batches]).numpy(), np.arange(total))
        np.testing.assert_array_equal(torch.cat([b[1] for b in batches]).numpy(), np.arange(total) * 10.0)


#: the models that draw negatives, small settings: (name, params, negatives per positive)
DRAWING = [
    ("neumf", {"dim": 8, "mlp_layers": 1, "epochs": 2, "patience": 0, "n_neg": 4, "batch_size": 512}, 4),
    ("mf-rank", {"dim": 8, "epochs": 2, "patience": 0, "loss": "bpr", "n_neg": 4, "batch_size": 256}, 4),
]


@pytest.mark.parametrize("name, params, n_neg", DRAWING, ids=[d[0] for d in DRAWING])
def test_fit_draws_negatives_a_bounded_chunk_at_a_time(name, params, n_neg, ml100k, monkeypatch):
    """With the chunk bound lowered to 3,000 rows, no draw of the sampler exceeds it (a fit
    that drew a whole epoch's negatives at once would draw ~100,000), each epoch draws
    `n_neg` for every interaction, and the same seed draws the same negatives and trains
    the same model."""
    train = ml100k.subset(ml100k.user_idx < 200)
    users, _, _ = implicit_interactions(train)
    monkeypatch.setattr(_ranking_common, "NEGATIVE_CHUNK_ROWS", 3000)
    draws: list[tuple[np.ndarray, np.ndarray]] = []
    sample = NegativeSampler.sample

    def recording(self, rng, users, n_neg):
        neg = sample(self, rng, users, n_neg)
        draws.append((np.array(users), neg))
        return neg

    monkeypatch.setattr(NegativeSampler, "sample", recording)
    fits = []
    for _ in range(2):
        draws.clear()
        model = create(name, **params).fit(train, runtime=RuntimeOptions(seed=5, device="cpu", num_threads=1))
        fits.append((model.score(train.users.raw(np.arange(20))), list(draws)))
    (scores_a, draws_a), (scores_b, draws_b) = fits
    assert max(neg.size for _, neg in draws_a) <= 3000
    drawn_users = np.sort(np.concatenate([u for u, _ in draws_a]))
    np.testing.assert_array_equal(drawn_users, np.sort(np.tile(users, params["epochs"])))  # each epoch, each positive
    assert sum(neg.size for _, neg in draws_a) == params["epochs"] * len(users) * n_neg
    # fresh each epoch: the second starts with another order and other negatives
    second = len(draws_a) // params["epochs"]
    assert not np.array_equal(draws_a[0][1], draws_a[second][1])
    # same seed: the same draws, the same model
    assert len(draws_a) == len(draws_b)
    for (ua, na), (ub, nb) in zip(draws_a, draws_b):
        np.testing.assert_array_equal(ua, ub)
        np.testing.assert_array_equal(na, nb)
    np.testing.assert_allclose(scores_a, scores_b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name, params, n_neg", DRAWING, ids=[d[0] for d in DRAWING])
def test_estimate_of_the_negatives_does_not_grow_with_the_epoch(name, params, n_neg):
    """The estimate's sampling term is one chunk's: what each further interaction costs is
    the same for 4 or 64 negatives per positive (with an epoch-wide draw, each interaction
    would bring its n_neg negatives' bytes)."""
    def per_interaction(n_neg: int) -> float:
        model = create(name, **{**params, "n_neg": n_neg})
        big, small = (model.memory_estimate(6_500, 12_000, n) for n in (25_000_000, 1_000_000))
        return (big - small) / 24e6

    assert per_interaction(64) == pytest.approx(per_interaction(4))
    assert per_interaction(4) < 200


@pytest.mark.slow
@pytest.mark.parametrize("name, params", [("neumf", ["-p", "dim=8"]), ("mf-rank", ["-p", "dim=8", "-p", "n_neg=32"]),
                                          ("mf-rank", ["-p", "dim=8", "-p", "loss=bpr", "-p", "n_neg=4"])],
                         ids=["neumf", "mf-rank-softmax", "mf-rank-bpr"])
def test_torchrun_trains_on_each_ranks_shard(name, params, ml100k, tmp_path):
    """Under `torchrun --nproc-per-node 2` (gloo), each rank draws its shard's negatives
    chunk by chunk and the model is written once (mf-rank's losses call the network's
    other methods, so its gradients are averaged explicitly rather than through DDP)."""
    import os
    import subprocess
    import sys

    import pandas as pd

    ds = ml100k.subset(ml100k.user_idx < 200)
    data = tmp_path / "ratings.csv"
    pd.DataFrame({"userId": ds.users.raw(ds.user_idx), "movieId": ds.items.raw(ds.item_idx), "rating": ds.rating,
                  "timestamp": ds.timestamp}).to_csv(data, index=False)
    env = {**os.environ, "MOVIEREC_DIST_TIMEOUT": "120", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", "-m", "movierec",
           "train", "-m", name, "-p", "epochs=1", "-p", "patience=0", *params, "--data", str(data),
           "--out", str(tmp_path / "model"), "--quiet"]
    run = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert (tmp_path / "model" / "manifest.json").exists()
