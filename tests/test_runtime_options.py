"""Runtime options (seed, device, threads, progress, distributed) are given at fit time,
never as hyperparameters; the base class keeps the training history."""

from __future__ import annotations

import dataclasses
import json
import warnings

import numpy as np
import pytest
from typer.testing import CliRunner

from movierec.cli import app
from movierec.errors import ConfigError
from movierec.experiments.models import build_model
from movierec.experiments.train import fit_model, history_summary
from movierec.models import create
from movierec.models.base import Recommender
from movierec.training.options import RuntimeOptions
from movierec.training.trainer import History

TORCH_MODELS = ("mf", "mf-rank", "neumf", "autorec", "two-tower")
LEGACY = {"seed": 5, "device": "cpu", "num_threads": 1, "progress": False}


@pytest.fixture(scope="module")
def tiny(ml100k):
    """The first 60 users of ML-100K."""
    return ml100k.subset(ml100k.user_idx < 60)


def _fast_mf():
    return create("mf", dim=8, epochs=3)


def test_runtime_options_are_a_frozen_checked_dataclass():
    runtime = RuntimeOptions()
    assert runtime.to_dict() == {"seed": 42, "device": "auto", "num_threads": 1, "progress": False,
                                 "distributed": "auto"}
    with pytest.raises(dataclasses.FrozenInstanceError):
        runtime.seed = 3  # type: ignore[misc]
    assert runtime.with_seed(None) is runtime and runtime.with_seed(7).seed == 7
    with pytest.raises(ConfigError, match="distributed must be True, False or 'auto'"):
        RuntimeOptions(distributed="yes").checked()  # type: ignore[arg-type]


@pytest.mark.parametrize("name", TORCH_MODELS)
def test_torch_constructors_take_hyperparameters_only(name):
    assert not set(LEGACY) & set(create(name).get_params()), name
    assert not set(LEGACY) & set(type(create(name)).default_params()), name


def test_fit_stores_the_runtime_and_the_seed_changes_the_model(tiny):
    a = _fast_mf().fit(tiny, runtime=RuntimeOptions(seed=1, device="cpu"))
    b = _fast_mf().fit(tiny, runtime=RuntimeOptions(seed=2, device="cpu"))
    assert a.runtime_ == RuntimeOptions(seed=1, device="cpu")
    assert not np.array_equal(a.user_embeddings_, b.user_embeddings_)
    assert _fast_mf().fit(tiny).runtime_ == RuntimeOptions()
    with pytest.raises(ConfigError, match="runtime must be a movierec.training.options.RuntimeOptions"):
        _fast_mf().fit(tiny, runtime={"seed": 1})  # type: ignore[arg-type]


def test_runtime_given_to_the_constructor_warns_and_still_applies(tiny):
    """Old scripts keep working: create("mf", seed=5) warns and fits as runtime seed 5."""
    with pytest.warns(DeprecationWarning, match=r"runtime options are no longer hyperparameters; pass them at fit "
                                                r"time: model\.fit\(train, runtime=RuntimeOptions\(seed=5"):
        old = create("mf", dim=8, epochs=3, **LEGACY)
    assert "seed" not in old.get_params()
    old.fit(tiny)
    assert old.runtime_.seed == 5
    new = _fast_mf().fit(tiny, runtime=RuntimeOptions(seed=5, device="cpu"))
    np.testing.assert_array_equal(old.user_embeddings_, new.user_embeddings_)
    with pytest.raises(ConfigError, match="unexpected keyword argument 'no_such'"):
        create("mf", no_such=1)


def test_old_params_with_runtime_keys_are_dropped_where_they_are_not_hyperparameters():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # dropped, not handed to the constructor's deprecated path
        built = build_model("mf", {"dim": 8, **LEGACY})
    assert built.get_params()["dim"] == 8 and not set(LEGACY) & set(built.get_params())
    assert build_model("als", {"seed": 3}).get_params()["seed"] == 3  # ALS really takes a seed


def test_an_old_bundle_listing_runtime_options_still_loads(tiny, tmp_path):
    from movierec.artifacts import Bundle, load_bundle, save_bundle

    model = _fast_mf().fit(tiny, runtime=RuntimeOptions(seed=0, device="cpu"))
    path = save_bundle(Bundle.from_model(model, tiny), tmp_path / "mf")
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["params"].update(LEGACY)  # what movierec wrote before runtime options left the params
    (path / "manifest.json").write_text(json.dumps(manifest))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # dropped quietly, not handed to the constructor's deprecated path
        loaded = load_bundle(path).model
    users = tiny.users.raw(np.arange(5))
    np.testing.assert_array_equal(loaded.score(users), model.score(users))
    assert loaded.history_.to_dict() == model.history_.to_dict()


def test_history_is_declared_and_reports_ratings_per_second(tiny):
    assert Recommender.history_ is None and Recommender.best_epoch_ is None
    pop = create("pop").fit(tiny)
    assert pop.history_ is None and history_summary(pop) == {}
    result = fit_model("mf", tiny, params={"dim": 8, "epochs": 3}, seed=0)
    history = result.model.history_
    assert isinstance(history, History) and history.records
    assert all(r["ratings_per_s"] > 0 for r in history.records)
    assert result.metrics["ratings_per_s"] > 0 and result.metrics["epochs_run"] == len(history.records)


def test_distributed_true_without_torchrun_is_one_sentence(tiny):
    model = _fast_mf()
    with pytest.raises(ConfigError, match="distributed=True needs several processes started by torchrun"):
        model.fit(tiny, runtime=RuntimeOptions(distributed=True))
    assert not hasattr(model, "users_")


def test_cli_device_and_threads_are_checked_before_loading_data(tmp_path):
    runner = CliRunner()
    bad_threads = runner.invoke(app, ["train", "-m", "mf", "-d", "ml-100k", "--out", str(tmp_path / "m"), "--threads",
                                      "-1"])
    assert bad_threads.exit_code != 0 and isinstance(bad_threads.exception, ConfigError)
    assert str(bad_threads.exception) == "--threads must be 0 or more, got -1."
    bad_device = runner.invoke(app, ["evaluate", "-m", "mf", "-d", "ml-100k", "--device", "tpu"])
    assert isinstance(bad_device.exception, ConfigError)
    assert "device must be 'auto', 'cpu', 'cuda' or 'cuda:N'" in str(bad_device.exception)


def test_cli_refuses_a_runtime_option_given_as_a_hyperparameter(tmp_path):
    result = CliRunner().invoke(app, ["train", "-m", "mf", "-d", "ml-100k", "--out", str(tmp_path / "m"), "-p",
                                      "seed=3"])
    assert isinstance(result.exception, ConfigError)
    assert not (tmp_path / "m").exists()
    assert str(result.exception) == ("seed is a runtime option, not a hyperparameter of 'mf'; give it with --seed "
                                     "instead of --param.")
    tuned = CliRunner().invoke(app, ["tune", "-m", "mf", "-d", "ml-100k", "-p", "device=cpu"])
    assert isinstance(tuned.exception, ConfigError) and "give it with --device" in str(tuned.exception)

