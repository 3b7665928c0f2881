"""`movierec train | evaluate | recommend | similar | tune | plot` through the Typer runner,
and the installed console script for error cases (exit code, one sentence, no traceback)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from movierec.cli import app
from movierec.errors import BundleError, CapabilityError, ConfigError, MovierecError, UnknownUserError

runner = CliRunner()
SCRIPT = Path(sys.executable).parent / "movierec"
QUICK = ["--param", "dim=8", "--param", "epochs=3"]


def invoke(*args: str):
    result = runner.invoke(app, list(args))
    return result


def ok_json(*args: str) -> dict:
    result = invoke(*args, "--json")
    assert result.exit_code == 0, (result.output, result.exception)
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def ratings_files(ml100k, tmp_path_factory):
    """A small slice of ML-100K as CSV files: all, train, test."""
    folder = tmp_path_factory.mktemp("csv")
    frame = ml100k.subset(ml100k.user_idx < 200).to_frame()
    frame.to_csv(folder / "all.csv", index=False)
    cut = np.random.default_rng(0).random(len(frame)) < 0.8
    frame[cut].to_csv(folder / "train.csv", index=False)
    frame[~cut].to_csv(folder / "test.csv", index=False)
    return folder


@pytest.fixture(scope="module")
def model_dir(ml100k, tmp_path_factory):
    out = tmp_path_factory.mktemp("models") / "mf"
    data = ok_json("train", "--dataset", "ml-100k", "--model", "mf", "--out", str(out), "--param", "dim=16",
                   "--param", "epochs=8", "--seed", "1")
    assert data["model"] == "mf" and "seed" not in data["params"]  # a runtime option, not a hyperparameter
    assert data["metrics"]["train_rmse"] < 1.0 and data["metrics"]["best_epoch"] >= 1
    return out


def test_train_writes_loadable_folder(model_dir):
    from movierec.artifacts import load_bundle

    bundle = load_bundle(model_dir)
    assert bundle.name == "mf" and bundle.model.dim == 16
    assert "fit_seconds" in bundle.metrics and bundle.model.history_.records
    assert bundle.catalog.label(int(bundle.model.items_.lookup([50])[0])).startswith("Star Wars")


def test_train_into_registry_and_recommend_from_it(tmp_path):
    reg = tmp_path / "registry"
    first = ok_json("train", "--dataset", "ml-100k", "--model", "pop", "--registry", str(reg))
    second = ok_json("train", "--dataset", "ml-100k", "-m", "pop", "-p", "min_rating=4", "--registry", str(reg))
    assert (first["registry"]["name"], first["registry"]["version"]) == ("pop", "1")
    assert second["registry"]["version"] == "2" and second["params"]["min_rating"] == 4
    rec = ok_json("recommend", "--registry", str(reg), "--name", "pop", "--user", "1", "-k", "3")
    assert rec["model"] == {"name": "pop", "version": "1"} and len(rec["items"]) == 3  # the first stays current
    again = ok_json("recommend", "--registry", str(reg), "--name", "pop", "--version", "2", "--user", "1", "-k", "3")
    assert again["model"]["version"] == "2"
    result = invoke("recommend", "--registry", str(reg), "--user", "1")
    assert isinstance(result.exception, ConfigError) and "--name" in str(result.exception)


def test_train_needs_a_destination():
    result = invoke("train", "--dataset", "ml-100k", "--model", "pop")
    assert isinstance(result.exception, ConfigError) and "--out" in str(result.exception)


def test_train_with_config_and_data(ratings_files, tmp_path):
    config = tmp_path / "cfg.json"
    config.write_text(json.dumps({"model": "bias", "params": {"reg_user": 2.0}}))
    data = ok_json("train", "--data", str(ratings_files / "all.csv"), "--config", str(config), "--out", str(tmp_path / "b"))
    assert data["model"] == "bias" and data["params"]["reg_user"] == 2.0


def test_evaluate_folds_json(ml100k):
    data = ok_json("evaluate", "--model", "bias", "--dataset", "ml-100k", "--protocol", "ml100k-folds")
    assert [f["fold"] for f in data["folds"]] == ["u1", "u2", "u3", "u4", "u5"]
    assert {"rmse", "mae", "fit_seconds"} <= set(data)
    assert data["rmse"] == pytest.approx(np.mean([f["rmse"] for f in data["folds"]]))
    assert 0.93 < data["rmse"] < 0.95


def test_evaluate_random_and_temporal_data(ratings_files):
    path = str(ratings_files / "all.csv")
    a = ok_json("evaluate", "--model", "mf", "--data", path, "--protocol", "random", "--seed", "3", *QUICK)
    b = ok_json("evaluate", "--model", "mf", "--data", path, "--protocol", "random", "--seed", "3", *QUICK)
    assert a["rmse"] == b["rmse"] and a["seed"] == 3 and len(a["folds"]) == 1
    t = ok_json("evaluate", "--model", "global-mean", "--data", path, "--protocol", "temporal", "--test-fraction", "0.1")
    assert t["protocol"] == "temporal" and t["rmse"] > 0.5 and "test_ratings_unseen_user" in t["folds"][0]
    h = ok_json("evaluate", "--model", "global-mean", "--data", path, "--protocol", "temporal", "--holdout", "0.1")
    assert h["rmse"] == t["rmse"] and h["holdout"] == 0.1


def test_evaluate_accepts_every_compare_protocol(ratings_files):
    path = str(ratings_files / "all.csv")
    last = ok_json("evaluate", "--model", "bias", "--data", path, "--protocol", "leave-last")
    assert last["protocol"] == "leave-last" and last["n_test"] == 200  # one rating per user of the slice
    frac = ok_json("evaluate", "--model", "bias", "--data", path, "--protocol", "leave-last", "--holdout", "0.2")
    assert frac["n_test"] > 5 * last["n_test"]


def test_evaluate_train_test_files(ratings_files):
    data = ok_json("evaluate", "--model", "bias", "--train", str(ratings_files / "train.csv"),
                   "--test", str(ratings_files / "test.csv"))
    assert data["protocol"] == "files" and data["rmse"] < 1.1


def test_evaluate_table_output():
    result = invoke("evaluate", "--model", "global-mean", "--dataset", "ml-100k", "--protocol", "random")
    assert result.exit_code == 0 and "RMSE" in result.stdout


def test_recommend_and_similar(model_dir):
    rec = ok_json("recommend", "--model-dir", str(model_dir), "--user", "42", "-k", "10")
    assert len(rec["items"]) == 10 and all(item["title"] for item in rec["items"])
    sim = ok_json("similar", "--model-dir", str(model_dir), "--movie", "50", "-k", "5")
    assert sim["movie"]["title"] == "Star Wars" and sim["movie"]["year"] == 1977 and len(sim["items"]) == 5
    assert 50 not in [item["movie_id"] for item in sim["items"]]
    table = invoke("recommend", "--model-dir", str(model_dir), "--user", "42", "-k", "3")
    assert table.exit_code == 0 and "top 3 for user 42" in table.stdout


def test_plots(model_dir, tmp_path):
    for args in (("learning-curve", "--model-dir", str(model_dir)),
                 ("tsne", "--model-dir", str(model_dir), "--min-ratings", "100"),
                 ("long-tail", "--dataset", "ml-100k")):
        png = tmp_path / f"{args[0]}.png"
        result = invoke("plot", *args, "--out", str(png))
        assert result.exit_code == 0, (result.output, result.exception)
        assert png.read_bytes()[:4] == b"\x89PNG"
    result = invoke("plot", "tsne", "--model-dir", str(model_dir), "--min-ratings", "100", "--out",
                    str(tmp_path / "t.png"), "--json")
    agreement = json.loads(result.stdout)["genre_agreement"]
    assert agreement["agreement"] > agreement["shuffled"]


def test_tune_rating_model(tmp_path):
    out = tmp_path / "tuned" / "bias.json"
    data = ok_json("tune", "--model", "bias", "--dataset", "ml-100k", "--protocol", "ml100k-folds",
                   "--trials", "3", "--seed", "0", "--out", str(out))
    saved = json.loads(out.read_text())
    assert saved["model"] == "bias" and saved["dataset"] == "ml-100k" and saved["protocol"] == "ml100k-folds"
    assert set(saved["params"]) == {"reg_user", "reg_item"} and saved["validation"]["rmse"] < 1.0
    assert saved["validation"]["n_fit"] + saved["validation"]["n_validation"] == 80_000  # u1.base only
    # the tuned config feeds straight into evaluate
    ev = ok_json("evaluate", "--config", str(out), "--dataset", "ml-100k", "--protocol", "random")
    assert ev["model"] == "bias" and ev["params"]["reg_user"] == saved["params"]["reg_user"]
    again = ok_json("tune", "--model", "bias", "--dataset", "ml-100k", "--protocol", "ml100k-folds",
                    "--trials", "3", "--seed", "0", "--out", str(tmp_path / "again.json"))
    assert again["params"] == data["params"]


def test_tune_ranking_model_delegates_to_the_ranking_tuner(tmp_path):
    name = "ease"
    out = tmp_path / "r.json"
    data = ok_json("tune", "--model", name, "--dataset", "ml-100k", "--trials", "1", "--out", str(out))
    saved = json.loads(out.read_text())
    assert saved["model"] == name and saved["params"] == data["params"] and saved["protocol"] == "random"
    assert saved["validation"]["n_fit"] + saved["validation"]["n_validation"] == 80_000  # train part only
    assert saved["validation"]["metric"] == "ndcg@10" and 0 < saved["validation"]["ndcg@10"] <= 1


@pytest.mark.parametrize(
    "args, error",
    [
        (("evaluate", "--model", "nope", "--dataset", "ml-100k"), ConfigError),
        (("evaluate", "--model", "mf", "--data", "x.csv", "--protocol", "ml100k-folds"), MovierecError),
        (("evaluate", "--model", "bias", "--dataset", "ml-100k", "--protocol", "sideways"), ConfigError),
        (("train", "--model", "mf", "--dataset", "ml-100k", "--param", "dim", "--out", "x"), ConfigError),
        (("train", "--model", "mf", "--dataset", "ml-100k", "--param", "colour=red", "--out", "x"), ConfigError),
        (("evaluate", "--model", "pop", "--dataset", "ml-100k"), CapabilityError),
        (("tune", "--model", "pop", "--dataset", "ml-100k"), ConfigError),
        (("recommend", "--model-dir", "/no/such/folder", "--user", "1"), BundleError),
    ],
)
def test_errors_are_typed(args, error):
    result = invoke(*args)
    assert result.exit_code != 0 and isinstance(result.exception, error), result.exception


def test_unknown_user_is_typed(model_dir):
    result = invoke("recommend", "--model-dir", str(model_dir), "--user", "999999")
    assert isinstance(result.exception, UnknownUserError)


@pytest.mark.parametrize(
    "args",
    [
        ["evaluate", "--model", "nope", "--dataset", "ml-100k"],
        ["recommend", "--model-dir", "/no/such/folder", "--user", "1"],
        ["tune", "--model", "mf", "--dataset", "ml-100k", "--trials", "0"],
        ["train", "--model", "mf", "--dataset", "ml-100k", "--param", "dim=abc", "--out", "x"],
        ["train", "--model", "mf", "--dataset", "ml-100k", "--param", "nosuchparam=3", "--out", "x"],
    ],
)
def test_console_script_errors(args, tmp_path):
    assert SCRIPT.is_file(), f"console script missing next to {sys.executable}"
    proc = subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, cwd=tmp_path,
                          env=dict(os.environ), timeout=120)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and lines[0].endswith(".")
    assert "unexpected" not in lines[0] and "a bug in movierec" not in lines[0]


def test_bad_params_are_named():
    result = invoke("train", "--model", "mf", "--dataset", "ml-100k", "--param", "dim=abc", "--out", "x")
    assert str(result.exception) == "Hyperparameter 'dim' of model 'mf' takes a whole number, got 'abc'."
    result = invoke("evaluate", "--model", "mf", "--dataset", "ml-100k", "-p", "nosuchparam=3")
    assert str(result.exception).startswith("Model 'mf' has no hyperparameter 'nosuchparam'; valid: ")


def test_console_script_unknown_user(model_dir, tmp_path):
    proc = subprocess.run([str(SCRIPT), "recommend", "--model-dir", str(model_dir), "--user", "999999"],
                          capture_output=True, text=True, cwd=tmp_path, env=dict(os.environ), timeout=120)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().startswith("error: Unknown user ID: 999999 (not among the 943 users")


@pytest.mark.parametrize("model", ["ease", "seq-ease", "mf-rank"])
def test_train_and_recommend_ranking_models(model, ratings_files, tmp_path):
    """Ranking models (no ratings, their own kind of history) train and answer through the CLI."""
    out = tmp_path / model
    params = ["--param", "epochs=2"] if model == "mf-rank" else []
    data = ok_json("train", "--data", str(ratings_files / "all.csv"), "--model", model, "--out", str(out), *params)
    assert data["model"] == model and "train_rmse" not in data["metrics"]
    recs = ok_json("recommend", "--model-dir", str(out), "--user", "1", "-k", "5")
    assert len(recs["items"]) == 5 and recs["user_id"] == 1 and all(item["reason"] for item in recs["items"])


def test_tune_leave_last_writes_config_compare_reads(ratings_files, tmp_path):
    out = tmp_path / "ease.json"
    data = ok_json("tune", "--model", "ease", "--data", str(ratings_files / "all.csv"), "--protocol", "leave-last",
                   "--holdout", "0.2", "--trials", "2", "--out", str(out))
    saved = json.loads(out.read_text())
    assert saved["protocol"] == "last20" and saved["dataset"] == "all"
    assert set(saved["params"]) == {"regularization"} and 0 < saved["validation"]["ndcg@10"] <= 1
    assert data["out"] == str(out)


# -- progress: bars on a terminal only, never on stdout ---------------------------------
BAR = "━"  # rich's bar


def test_progress_bars_only_on_a_terminal(monkeypatch):
    args = ["evaluate", "--model", "bias", "--dataset", "ml-100k", "--protocol", "ml100k-folds", "--json"]
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    plain = runner.invoke(app, args)  # CliRunner's stderr is not a terminal
    assert plain.exit_code == 0 and BAR not in plain.stderr and "\x1b[" not in plain.stderr
    assert plain.stderr.count("fitting bias on") == 5  # a plain line per fold instead
    monkeypatch.setenv("TTY_COMPATIBLE", "1")  # rich (and so movierec) now sees a terminal
    bar = runner.invoke(app, args)
    assert bar.exit_code == 0 and BAR in bar.stderr and "evaluating" in bar.stderr
    assert json.loads(bar.stdout)["rmse"] == json.loads(plain.stdout)["rmse"]  # stdout: the JSON only
    quiet = runner.invoke(app, [*args, "--quiet"])
    assert quiet.exit_code == 0 and quiet.stderr == "" and json.loads(quiet.stdout)["rmse"] == json.loads(plain.stdout)["rmse"]


def test_torch_epoch_bar_on_a_terminal_only(monkeypatch):
    args = ["evaluate", "--model", "mf", "--dataset", "ml-100k", "--protocol", "random", *QUICK, "--json"]
    plain = runner.invoke(app, args)
    assert plain.exit_code == 0 and "epoch" not in plain.stderr
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    bar = runner.invoke(app, args)
    assert bar.exit_code == 0 and "epoch" in bar.stderr  # the model's per-epoch bar (its `progress` option)
    doc, ref = json.loads(bar.stdout), json.loads(plain.stdout)
    assert doc["rmse"] == ref["rmse"] and "progress" not in doc["params"]  # results never depend on the terminal
    quiet = runner.invoke(app, [*args, "--quiet"])
    assert "epoch" not in quiet.stderr and quiet.stderr == ""


def test_tune_and_compare_bars(monkeypatch, ratings_files, tmp_path):
    path = str(ratings_files / "all.csv")
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    tune = runner.invoke(app, ["tune", "--model", "bias", "--data", path, "--trials", "2", "--out",
                               str(tmp_path / "b.json"), "--json"])
    assert tune.exit_code == 0 and BAR in tune.stderr and "trial 0: validation" in tune.stderr
    json.loads(tune.stdout)
    comp = runner.invoke(app, ["compare", "--data", path, "--models", "random,pop", "--json"])
    assert comp.exit_code == 0 and BAR in comp.stderr and "compare" in comp.stderr
    json.loads(comp.stdout)
    monkeypatch.delenv("TTY_COMPATIBLE")
    lines = runner.invoke(app, ["compare", "--data", path, "--models", "random,pop", "--json"])
    assert BAR not in lines.stderr and "fitting pop" in lines.stderr
    for quiet in (runner.invoke(app, ["compare", "--data", path, "--models", "pop", "--json", "-q"]),
                  runner.invoke(app, ["tune", "--model", "bias", "--data", path, "--trials", "1", "--out",
                                      str(tmp_path / "q.json"), "--json", "--quiet"])):
        assert quiet.exit_code == 0 and quiet.stderr == "", quiet.stderr


def test_train_refuses_a_registry_that_is_a_file_before_loading_or_training(tmp_path, monkeypatch):
    afile = tmp_path / "afile"
    afile.write_text("x")
    import movierec.cli.models as cli_models

    def no_loading(*args, **kwargs):
        raise AssertionError("the data was loaded before the registry was checked")

    monkeypatch.setattr(cli_models, "load_dataset", no_loading)
    result = invoke("train", "--dataset", "ml-100k", "--model", "pop", "--registry", str(afile))
    assert isinstance(result.exception, BundleError)  # RegistryError; main() prints it as one sentence
    assert "is a file, not a model registry folder" in str(result.exception)
    assert afile.read_text() == "x"
