"""`movierec compare` through the Typer runner (and the console entry point for errors)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from movierec.cli import app
from movierec.errors import ConfigError
from movierec.experiments import CompareSpec, compare, find_tuned

runner = CliRunner()


def invoke(*args):
    result = runner.invoke(app, ["compare", *args])
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def test_json_output_temporal(tmp_path):
    res = invoke("--dataset", "ml-100k", "--models", "random,pop", "-k", "10,20", "--json",
                 "--config-dir", str(tmp_path / "none"))
    doc = json.loads(res.stdout.strip().splitlines()[-1])
    assert doc["protocol"] == "temporal"
    for name in ("random", "pop"):
        for key in ("ndcg@10", "hr@10", "recall@10", "precision@10", "map@10", "ndcg@20", "recall@20", "coverage@10"):
            assert key in doc["models"][name], key
    assert doc["models"]["pop"]["ndcg@10"] > 3 * doc["models"]["random"]["ndcg@10"]
    assert doc["relevance_threshold"] == 4.0
    assert doc["split"]["dropped"]["test_unseen_users"] > 0
    assert doc["significance"]["reference"] == "pop"
    assert any(c["model"] == "random" and c["metric"] == "ndcg@10" and c["significant"]
               for c in doc["significance"]["comparisons"])
    assert set(doc["ci"]["values"]) == {"random", "pop"}


def test_report_folder_and_table(tmp_path):
    out = tmp_path / "report"
    res = invoke("--dataset", "ml-100k", "--protocol", "leave-last", "--holdout", "1", "--models",
                 "random,pop,pop-recent", "-k", "5,10", "--out", str(out), "--config-dir", str(tmp_path))
    assert "ndcg@10" in res.stdout and "pop" in res.stdout
    for name in ("report.md", "results.json", "per_user.csv", "significance.csv", "metric_bars.png",
                 "recall_at_k.png", "coverage_vs_accuracy.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    text = (out / "report.md").read_text()
    assert "± " in text and "Holm" in text and "leave-last" in text


def test_tuned_config_is_used_and_recorded(tmp_path):
    (tmp_path / "pop-recent.json").write_text(json.dumps({"params": {"window_days": 7}}))
    comp = compare(CompareSpec(dataset="ml-100k", models=["pop-recent"], config_root=tmp_path))
    used = comp.info["models_config"]["pop-recent"]
    assert used["params"]["window_days"] == 7 and used["config"] == str(tmp_path / "pop-recent.json")
    assert comp.to_json()["models_config"]["pop-recent"]["config"] == used["config"]
    # a hyperparameter given explicitly wins over the tuned one, and is recorded
    comp = compare(CompareSpec(dataset="ml-100k", models=["pop-recent"], config_root=tmp_path,
                               params={"pop-recent": {"window_days": 3.0}}))
    assert comp.info["models_config"]["pop-recent"]["params"]["window_days"] == 3.0
    (tmp_path / "pop.json").write_text("{not json")
    with pytest.raises(ConfigError):
        compare(CompareSpec(dataset="ml-100k", models=["pop"], config_root=tmp_path))


def test_report_records_params_and_config(tmp_path):
    (tmp_path / "pop-recent.json").write_text(json.dumps({"params": {"window_days": 7}}))
    out = tmp_path / "report"
    invoke("--dataset", "ml-100k", "--models", "pop,pop-recent", "--out", str(out), "--config-dir", str(tmp_path),
           "-p", "pop.min_rating=4")
    text = (out / "report.md").read_text()
    assert str(tmp_path / "pop-recent.json") in text and "window_days=7" in text and "min_rating=4" in text
    saved = json.loads((out / "results.json").read_text())
    assert saved["models_config"]["pop"] == {"params": {"min_rating": 4}, "config": None}


def test_train_test_files(tmp_path, ml100k):
    frame = ml100k.to_frame()
    cut = np.quantile(frame["timestamp"], 0.9)
    frame[frame.timestamp < cut].to_csv(tmp_path / "train.csv", index=False)
    frame[frame.timestamp >= cut].to_csv(tmp_path / "test.csv", index=False)
    res = invoke("--train", str(tmp_path / "train.csv"), "--test", str(tmp_path / "test.csv"),
                 "--models", "random,pop", "--json", "--config-dir", str(tmp_path))
    doc = json.loads(res.stdout.strip().splitlines()[-1])
    assert doc["protocol"] == "files"
    assert doc["models"]["pop"]["ndcg@10"] > doc["models"]["random"]["ndcg@10"]


def test_sampled_negatives_warns(tmp_path):
    comp = compare(CompareSpec(dataset="ml-100k", models=["random", "pop"], sampled_negatives=50,
                               config_root=tmp_path))
    messages = comp.info["warnings"]
    assert messages and "reorder" in messages[0]
    assert comp.info["candidates"] == "per-user candidates"


def test_errors_are_clear(tmp_path):
    with pytest.raises(ConfigError, match="Unknown model 'nope'"):
        compare(CompareSpec(dataset="ml-100k", models=["random", "nope"]))
    with pytest.raises(ConfigError, match="Unknown protocol 'bogus'"):
        compare(CompareSpec(dataset="ml-100k", models=["pop"], protocol="bogus", config_root=tmp_path))
    with pytest.raises(ConfigError):
        compare(CompareSpec(dataset="ml-100k", models=["pop"], ks=[0]))
    with pytest.raises(ConfigError):
        compare(CompareSpec(train=tmp_path / "a.csv", models=["pop"]))
    with pytest.raises(ConfigError, match="no hyperparameter 'colour'"):
        compare(CompareSpec(dataset="ml-100k", models=["pop"], params={"pop": {"colour": 1}}))
    for args, flag in ((["-k", "ten"], "-k"), (["-p", "min_rating=4"], "--param")):
        result = runner.invoke(app, ["compare", "--dataset", "ml-100k", "--models", "pop", *args])
        assert isinstance(result.exception, ConfigError) and flag in str(result.exception)
    proc = subprocess.run([sys.executable, "-c", "from movierec.cli import main; main()", "compare",
                           "--dataset", "ml-100k", "--models", "random,not-a-model"],
                          capture_output=True, text=True)
    assert proc.returncode == 1
    assert "Unknown model 'not-a-model'" in proc.stderr and "Traceback" not in proc.stderr


def test_tuned_config_lookup_order(tmp_path):
    (tmp_path / "ml-100k" / "loo").mkdir(parents=True)
    (tmp_path / "pop-recent.json").write_text(json.dumps({"params": {"window_days": 1}}))
    (tmp_path / "ml-100k" / "loo" / "pop-recent.json").write_text(json.dumps({"params": {"window_days": 3}}))
    assert find_tuned("pop-recent", "ml-100k", "loo", tmp_path).params == {"window_days": 3}
    assert find_tuned("pop-recent", "ml-100k", "temporal", tmp_path).params == {"window_days": 1}
    assert find_tuned("pop", "ml-100k", "temporal", tmp_path) is None
