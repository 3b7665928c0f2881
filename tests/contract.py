"""The contract every movierec model keeps, as one reusable check.

Usage from a model's tests::

    from contract import check_recommender_contract

    def test_contract(ml100k_slice, tmp_path):
        split = ml100k_slice
        check_recommender_contract(lambda: MyModel(seed=0), split.train, split.test, tmp_path)

It checks: fit returns self; unfitted queries raise NotFittedError; k respected and
best-first; exclude_seen respected; an unknown user raises UnknownUserError; save/load
gives identical predictions and scores; the same seed gives the same model; and, when
asked, a quality band (max RMSE for rating models).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from movierec.data.dataset import Dataset
from movierec.errors import NotFittedError, UnknownItemError, UnknownUserError
from movierec.models.base import Recommender


def _some_users(train: Dataset, n: int = 8) -> np.ndarray:
    active = train.active_users()
    return train.users.raw(active[np.linspace(0, len(active) - 1, min(n, len(active))).astype(int)])


def _unknown_id(ids: np.ndarray):
    if ids.dtype.kind in "iu":
        return int(ids.max()) + 10_000
    return "no-such-id-" + "x" * 8


def check_recommender_contract(
    make_model: Callable[[], Recommender],
    train: Dataset,
    test: Dataset | None = None,
    tmp_path: Path | None = None,
    max_rmse: float | None = None,
    deterministic: bool = True,
    atol: float = 0.0,
) -> Recommender:
    """Run the shared contract on a model factory; return the fitted model.

    Args:
        make_model: returns a fresh, unfitted model with a fixed seed.
        train: training Dataset.
        test: test Dataset of the same IdMaps (for predictions and the quality band).
        tmp_path: folder for the save/load round trip (a temporary one if None).
        max_rmse: for rating models, the test RMSE must not exceed this.
        deterministic: check that two fits with the same seed agree.
        atol: tolerance of the determinism and round-trip comparisons (0: identical).
    """
    # unfitted -> NotFittedError
    fresh = make_model()
    users = _some_users(train)
    with pytest.raises(NotFittedError):
        fresh.recommend(users[:1], k=5)
    if fresh.predicts_ratings:
        with pytest.raises(NotFittedError):
            fresh.predict(users[:1], train.items.raw([0]))

    # fit returns self
    model = make_model()
    assert model.fit(train) is model, "fit must return self"
    params = model.get_params()
    assert type(model)(**params).get_params() == params, "get_params must round-trip through __init__"

    # k respected, best first, raw IDs
    for k in (1, 7):
        rec = model.recommend(users, k=k)
        assert rec.item_ids.shape == (len(users), k)
        assert rec.scores.shape == (len(users), k)
        assert np.all(np.diff(rec.scores, axis=1) <= 1e-6), "recommendations must be best first"
        assert np.isin(rec.item_ids, train.items.raw_ids).all()
        assert all(len(set(row)) == k for row in rec.item_ids.tolist()), "no duplicates in a list"

    # exclude_seen respected (and not applied when switched off)
    seen = train.to_csr("ones")
    rec = model.recommend(users, k=20)
    uidx = train.users.lookup(users)
    for row, u in zip(rec.item_ids, uidx):
        rated = set(train.items.raw(seen[u].indices).tolist())
        assert not rated & set(row.tolist()), "exclude_seen must drop rated movies"
    rec_all = model.recommend(users, k=5, exclude_seen=False)
    assert rec_all.item_ids.shape == (len(users), 5)

    # unknown user / movie -> typed errors
    bad_user = _unknown_id(train.users.raw_ids)
    with pytest.raises(UnknownUserError):
        model.recommend([bad_user], k=3)
    if model.predicts_ratings:
        with pytest.raises(UnknownUserError):
            model.predict([bad_user], train.items.raw([0]))
        with pytest.raises(UnknownItemError):
            model.predict(users[:1], [_unknown_id(train.items.raw_ids)])

    # predictions on test pairs, quality band
    if test is not None and model.predicts_ratings and test.n_ratings:
        pred = model.predict(test.users.raw(test.user_idx), test.items.raw(test.item_idx))
        assert pred.shape == (test.n_ratings,)
        assert np.isfinite(pred).all()
        if model.rating_scale_:
            low, high = model.rating_scale_
            assert pred.min() >= low - 1e-6 and pred.max() <= high + 1e-6, "predictions stay in the rating range"
        if max_rmse is not None:
            rmse = float(np.sqrt(np.mean((pred - test.rating) ** 2)))
            assert rmse <= max_rmse, f"test RMSE {rmse:.4f} is above the band {max_rmse}"

    # save/load round trip: identical scores, predictions, recommendations
    ctx = tempfile.TemporaryDirectory() if tmp_path is None else None
    folder = Path(ctx.name if ctx else tmp_path) / f"{model.name}-contract"
    try:
        model.save(folder)
        loaded = Recommender.load(folder)
        assert type(loaded) is type(model)
        assert loaded.get_params() == model.get_params()
        np.testing.assert_allclose(loaded.score(users), model.score(users), atol=atol, rtol=0)
        np.testing.assert_array_equal(loaded.recommend(users, k=10).item_ids, model.recommend(users, k=10).item_ids)
        if model.predicts_ratings and test is not None and test.n_ratings:
            tu, ti = test.users.raw(test.user_idx[:500]), test.items.raw(test.item_idx[:500])
            np.testing.assert_allclose(loaded.predict(tu, ti), model.predict(tu, ti), atol=atol, rtol=0)
        if getattr(model, "item_embeddings_", None) is not None:
            items = train.items.raw(np.flatnonzero(train.item_counts())[:3])
            np.testing.assert_array_equal(loaded.similar_items(items, k=5).item_ids,
                                          model.similar_items(items, k=5).item_ids)
    finally:
        if ctx:
            ctx.cleanup()

    # same seed -> same model
    if deterministic:
        again = make_model().fit(train)
        np.testing.assert_allclose(again.score(users), model.score(users), atol=atol, rtol=0)
    return model
