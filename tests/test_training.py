"""The training layer: runtime options, the early-stop-then-refit policy, the losses."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from movierec.errors import ConfigError
from movierec.models import create
from movierec.training.early_stopping import early_stop_then_refit, random_holdout
from movierec.training.losses import bpr_loss, in_batch_softmax_loss, row_l2, sampled_softmax_loss
from movierec.training.options import RuntimeOptions, resolve_device, torch_threads
from movierec.training.trainer import History, Trainer, tensor_batches

TORCH_MODELS = ("mf", "mf-rank", "neumf", "autorec")
#: small settings, fitted on the CPU (``cpu()`), where the same seed gives bit-identical weights
#: (on a GPU, scatter-add kernels sum in a varying order, so results agree only up to rounding)
FAST = {
    "mf": {"dim": 8, "epochs": 3},
    "mf-rank": {"dim": 8, "epochs": 2, "n_neg": 32},
    "neumf": {"dim": 8, "epochs": 2},
    "autorec": {"hidden": 16, "epochs": 3},
}

def cpu(**options) -> RuntimeOptions:
    """Runtime options on the CPU with `options` changed."""
    return RuntimeOptions(**{"device": "cpu", **options})


#: parameters that pass the up-front checks and fail once training has started
FAILS_IN_TRAINING = {
    "mf": {"init_std": -1.0},  # torch's normal_ refuses a negative std
    "autorec": {"lr": -1.0},  # Adam refuses a negative learning rate
    "mf-rank": {"min_rating": 10.0},  # no interactions left (checked under the thread setting)
    "neumf": {"min_rating": 10.0},
}


@pytest.fixture(scope="module")
def tiny(ml100k):
    """The first 60 users of ML-100K."""
    return ml100k.subset(ml100k.user_idx < 60)


# -- runtime options -----------------------------------------------------------------
@pytest.mark.parametrize("name", TORCH_MODELS)
def test_runtime_options_are_not_hyperparameters(name):
    params = create(name).get_params()
    assert not {"seed", "device", "num_threads", "progress", "distributed"} & set(params), name
    assert "val_fraction" not in params
    if name in ("mf", "autorec"):
        assert params["validation_fraction"] == 0.05


def test_device_rule():
    assert resolve_device("auto", cuda_devices=0) == torch.device("cpu")
    assert resolve_device("auto", cuda_devices=1) == torch.device("cuda")
    assert resolve_device("cuda:1", cuda_devices=2) == torch.device("cuda:1")
    with pytest.raises(ConfigError, match=r"device='cuda' was asked for but this machine has no CUDA GPU; "
                                          r"use device='auto' or 'cpu'\."):
        resolve_device("cuda", cuda_devices=0)
    with pytest.raises(ConfigError, match="only 1 CUDA"):
        resolve_device("cuda:1", cuda_devices=1)
    with pytest.raises(ConfigError, match="device must be"):
        resolve_device("tpu")


@pytest.mark.parametrize("name", TORCH_MODELS)
def test_cuda_device_on_this_machine(name, tiny):
    """device='cuda' trains on a GPU machine and is a ConfigError sentence elsewhere."""
    model = create(name, **FAST[name])
    if torch.cuda.is_available():
        assert model.fit(tiny, runtime=cpu(device="cuda")).recommend(tiny.users.raw([0]), k=3).item_ids.shape == (1, 3)
    else:
        with pytest.raises(ConfigError, match="no CUDA GPU"):
            model.fit(tiny, runtime=cpu(device="cuda"))
        assert not hasattr(model, "users_")


def test_torch_threads_restores_even_on_error():
    before = torch.get_num_threads()
    target = 1 if before != 1 else 2
    with pytest.raises(RuntimeError):
        with torch_threads(target):
            assert torch.get_num_threads() == target
            raise RuntimeError("boom")
    assert torch.get_num_threads() == before
    with torch_threads(None):
        assert torch.get_num_threads() == before


@pytest.mark.parametrize("name", TORCH_MODELS)
def test_threads_restored_after_fit_and_failed_fit(name, tiny):
    before = torch.get_num_threads()
    target = 1 if before != 1 else 2
    create(name, **FAST[name]).fit(tiny, runtime=cpu(num_threads=target))
    assert torch.get_num_threads() == before
    # a fit that fails inside training restores too
    with pytest.raises(Exception):
        create(name, **{**FAST[name], **FAILS_IN_TRAINING[name]}).fit(tiny, runtime=cpu(num_threads=target))
    assert torch.get_num_threads() == before


@pytest.mark.parametrize("name", TORCH_MODELS)
def test_same_seed_same_weights_and_progress_changes_nothing(name, tiny):
    a = create(name, **FAST[name]).fit(tiny, runtime=cpu(seed=5)).state_dict().arrays
    b = create(name, **FAST[name]).fit(tiny, runtime=cpu(seed=5, progress=True)).state_dict().arrays
    c = create(name, **FAST[name]).fit(tiny, runtime=cpu(seed=6)).state_dict().arrays
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=f"{name}: {key}")
    assert any(not np.array_equal(a[k], c[k]) for k in a if k.startswith("model."))


@pytest.mark.parametrize("bad", [{"device": "gpu"}, {"num_threads": -1}, {"seed": -1}, {"progress": "yes"},
                                 {"distributed": "yes"}])
def test_bad_runtime_options(bad, tiny):
    for name in TORCH_MODELS:
        model = create(name, **FAST[name])
        with pytest.raises(ConfigError):
            model.fit(tiny, runtime=cpu(**bad))
        assert not hasattr(model, "users_")


# -- early stopping --------------------------------------------------------------------
class _Line(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))


def _train_fn(calls: list):
    """One-parameter problem: SGD walks w up by 1 per epoch; validation is best at w = 3."""

    def train(data, validation, epochs, refitting):
        calls.append((data, validation, epochs, refitting))
        module = _Line()
        opt = torch.optim.SGD(module.parameters(), lr=1.0)
        validate = None if validation is None else (lambda m: float((m.w - validation) ** 2))
        history = Trainer(max_epochs=epochs, patience=2).fit(
            module, opt, lambda: [(torch.zeros(1),)], lambda m, b: -m.w.sum(), validate)
        return module, history

    return train


def test_policy_internal_holdout_restores_best_and_refits_best_epochs():
    calls: list = []
    result = early_stop_then_refit(_train_fn(calls), "all", None, lambda data: ("part", 3.0),
                                   epochs=20, patience=2, refit=True)
    # early stop: best at epoch 3 (w = 3), stopped two epochs later, best weights restored
    assert result.history.best_epoch == 3 and len(result.history.records) == 5
    assert result.history.stopped_early
    assert calls[0] == ("part", 3.0, 20, False)
    # refit: a fresh network on all the data for exactly the best epoch count
    assert calls[1] == ("all", None, 3, True)
    assert result.best_epoch == 3 and result.refitted and result.holdout == "internal"
    assert float(result.module.w.detach()) == pytest.approx(3.0)


def test_policy_without_refit_keeps_early_stopped_weights():
    calls: list = []
    result = early_stop_then_refit(_train_fn(calls), "all", None, lambda data: ("part", 4.0),
                                   epochs=20, patience=2, refit=False)
    assert len(calls) == 1 and not result.refitted
    assert float(result.module.w.detach()) == pytest.approx(4.0)  # epoch 4's weights, not epoch 6's


def test_policy_given_validation_and_no_early_stopping():
    calls: list = []
    result = early_stop_then_refit(_train_fn(calls), "all", 2.0, lambda data: pytest.fail("no carving"),
                                   epochs=20, patience=2, refit=True)
    assert calls == [("all", 2.0, 20, False)] and result.holdout == "validation"
    assert float(result.module.w.detach()) == pytest.approx(2.0) and result.best_epoch == 2
    calls.clear()
    result = early_stop_then_refit(_train_fn(calls), "all", 2.0, lambda data: ("part", 3.0),
                                   epochs=7, patience=0, refit=True)
    assert calls == [("all", None, 7, False)] and result.best_epoch == 7 and result.holdout == "none"
    calls.clear()
    result = early_stop_then_refit(_train_fn(calls), "all", None, lambda data: None, epochs=4, patience=2, refit=True)
    assert calls == [("all", None, 4, False)] and result.holdout == "none"


def test_random_holdout(ml100k):
    small = ml100k.subset(ml100k.user_idx < 30)
    fit, held = random_holdout(small, 0.1, seed=0)
    assert held.n_ratings == round(small.n_ratings * 0.1) and fit.n_ratings + held.n_ratings == small.n_ratings
    again = random_holdout(small, 0.1, seed=0)[1]
    np.testing.assert_array_equal(again.item_idx, held.item_idx)
    assert random_holdout(small, 0.0, seed=0) is None
    assert random_holdout(small.subset(np.arange(10)), 0.1, seed=0) is None


@pytest.mark.parametrize("name", ["mf", "mf-rank"])
def test_model_refit_runs_the_best_epoch_count(name, tiny):
    """Without validation, the kept network is a refit on all data for best_epoch epochs:
    identical to fitting with early stopping off for that many epochs."""
    params = {**FAST[name], "epochs": 8, "patience": 1, **({"lr": 0.05} if name == "mf" else {})}
    model = create(name, **params).fit(tiny, runtime=cpu(seed=1))
    assert model.history_.stopped_early, "the case must stop early, else a refit for `epochs` would pass too"
    assert 1 <= model.best_epoch_ == model.history_.best_epoch < 8
    plain = create(name, **{**params, "epochs": model.best_epoch_, "patience": 0}).fit(tiny, runtime=cpu(seed=1))
    np.testing.assert_array_equal(plain.score(tiny.users.raw([0, 1])), model.score(tiny.users.raw([0, 1])))


def test_history_round_trips_through_dict():
    h = History(records=[{"epoch": 1, "train_loss": np.float32(0.5), "val": 0.25, "seconds": 0.1}],
                best_epoch=1, best_value=np.float64(0.25), stopped_early=True)
    back = History.from_dict(h.to_dict())
    assert back.records == [{"epoch": 1, "train_loss": 0.5, "val": 0.25, "seconds": 0.1}]
    assert (back.best_epoch, back.best_value, back.stopped_early) == (1, 0.25, True)


def test_tensor_batches_cover_every_row_once():
    x = torch.arange(10)
    got = torch.cat([b[0] for b in tensor_batches([x], 3, torch.Generator().manual_seed(0))])
    assert sorted(got.tolist()) == list(range(10)) and got.tolist() != list(range(10))


# -- losses ----------------------------------------------------------------------------
def test_in_batch_softmax_hand_computed():
    users = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    items = torch.tensor([[2.0, 0.0], [1.0, 1.0]])
    # dot products: row 0 -> [2, 1], row 1 -> [0, 1]
    # plain: row 0: log(e^2 + e^1) - 2; row 1: log(e^0 + e^1) - 1
    plain = (math.log(math.e**2 + math.e) - 2 + math.log(1 + math.e) - 1) / 2
    assert float(in_batch_softmax_loss(users, items)) == pytest.approx(plain, rel=1e-6)
    # temperature 0.5 doubles the logits: row 0 [4, 2], row 1 [0, 2]
    t = (math.log(math.e**4 + math.e**2) - 4 + math.log(1 + math.e**2) - 2) / 2
    assert float(in_batch_softmax_loss(users, items, temperature=0.5)) == pytest.approx(t, rel=1e-6)
    # logQ: item 0 is sampled with probability 0.5, item 1 with 0.25 -> subtract log q per column
    log_q = torch.log(torch.tensor([0.5, 0.25]))
    r0 = [2 - math.log(0.5), 1 - math.log(0.25)]
    r1 = [0 - math.log(0.5), 1 - math.log(0.25)]
    corrected = (math.log(math.exp(r0[0]) + math.exp(r0[1])) - r0[0]
                 + math.log(math.exp(r1[0]) + math.exp(r1[1])) - r1[1]) / 2
    assert float(in_batch_softmax_loss(users, items, log_q=log_q)) == pytest.approx(corrected, rel=1e-6)
    # the same item in both rows is no negative: each row only has its positive -> loss 0
    assert float(in_batch_softmax_loss(users, items, item_ids=torch.tensor([7, 7]))) == pytest.approx(0.0, abs=1e-7)


def _softmax_row_loss(logits: list[float], positive: int) -> float:
    """logsumexp(logits) - logits[positive], in plain Python floats."""
    return math.log(sum(math.exp(x) for x in logits)) - logits[positive]


def test_logq_correction_lowers_popular_items_logits():
    """logit_j = u . v_j - log q_j: a popular movie (large q) is lowered, a rare one raised.
    With a zero user every dot product is 0, so the logits are -log q alone: a popular
    positive among rare negatives costs more than without the correction, a rare one less.
    (The 2 x 2 example above has equal margins in both rows, which hides the sign.)"""
    user = torch.zeros(1, 3)
    items = torch.randn(3, 3, generator=torch.Generator().manual_seed(0))  # 1 positive + 2 extra negatives
    plain = float(in_batch_softmax_loss(user, items))
    assert plain == pytest.approx(math.log(3), rel=1e-6)
    popular = float(in_batch_softmax_loss(user, items, log_q=torch.log(torch.tensor([0.5, 0.05, 0.05]))))
    assert popular == pytest.approx(_softmax_row_loss([-math.log(0.5), -math.log(0.05), -math.log(0.05)], 0),
                                    rel=1e-6)
    assert popular == pytest.approx(math.log(2 + 20 + 20) + math.log(0.5), rel=1e-6)
    rare = float(in_batch_softmax_loss(user, items, log_q=torch.log(torch.tensor([0.05, 0.5, 0.5]))))
    assert rare == pytest.approx(math.log(20 + 2 + 2) + math.log(0.05), rel=1e-6)
    assert popular > plain + 1 and rare < plain - 0.5


def test_in_batch_softmax_with_logq_hand_computed_asymmetric():
    """Two positives, one extra negative, temperature 0.5 and logQ, against plain Python."""
    users = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    items = torch.tensor([[2.0, 0.0], [1.0, 1.0], [0.0, 3.0]])
    q = [0.5, 0.2, 0.1]
    dots = [[2.0, 1.0, 0.0], [0.0, 1.0, 3.0]]
    expected = {}
    for sign in (-1, 1):  # -1: the correction; +1: its flip, which must give another number
        rows = [[d / 0.5 + sign * math.log(qj) for d, qj in zip(row, q)] for row in dots]
        expected[sign] = (_softmax_row_loss(rows[0], 0) + _softmax_row_loss(rows[1], 1)) / 2
    assert abs(expected[-1] - expected[1]) > 0.1
    got = float(in_batch_softmax_loss(users, items, log_q=torch.log(torch.tensor(q)), temperature=0.5))
    assert got == pytest.approx(expected[-1], rel=1e-6)


def test_sampled_softmax_bpr_and_row_l2():
    pos = torch.tensor([1.0, 0.0])
    neg = torch.tensor([[0.0, 2.0], [0.0, 0.0]])
    mask = torch.tensor([[False, True], [False, False]])
    got = sampled_softmax_loss(pos, neg, mask, temperature=1.0)
    expect = [math.log(math.e + 1) - 1, math.log(3.0)]  # row 0's second negative is masked out
    np.testing.assert_allclose(got.numpy(), expect, rtol=1e-6)
    assert float(bpr_loss(torch.tensor([1.0]), torch.tensor([[1.0, 3.0]]))) == pytest.approx(
        (math.log(2) + math.log(1 + math.e**2)) / 2, rel=1e-6)
    rows = torch.tensor([[1.0, 2.0], [0.0, 1.0]])
    assert float(row_l2(rows, torch.tensor([[3.0]]), weight=0.5)) == pytest.approx(0.5 * 15 / 2)
