"""Protocols as registered objects (movierec.evaluation.protocols): the registry, what each
protocol knows (config key, label, tuning split, candidates), a toy protocol registered in
this test only that compare and tune run through, the shared relevance-threshold parser,
the shared JSON encoder and the bounded sampled-negatives cache."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from movierec.data.split import Split
from movierec.errors import ConfigError
from movierec.evaluation.protocols import (
    NegativeCache,
    Protocol,
    SampledEvaluationWarning,
    available_protocols,
    build_split,
    get_protocol,
    parse_relevance_threshold,
    protocol_label,
    protocol_of,
    register_protocol,
    resolve_relevance_threshold,
    sample_negatives,
    split_summary,
    unregister_protocol,
)
from movierec.jsonable import json_default, json_default_finite

ROOT = Path(__file__).resolve().parents[1]
BUILT_IN = ("temporal", "leave-last", "random", "ml100k-folds", "files", "cold-movies")


# -- the registry ----------------------------------------------------------------------

def test_registry_lists_the_built_in_protocols_and_names_them_in_its_error():
    assert available_protocols()[:len(BUILT_IN)] == BUILT_IN
    for name in BUILT_IN:
        protocol = get_protocol(name)
        assert isinstance(protocol, Protocol) and protocol.name == name
        assert protocol.help.startswith(f"{name}: ")
    with pytest.raises(ConfigError) as err:
        get_protocol("bogus")
    assert str(err.value) == f"Unknown protocol 'bogus'; choose one of: {', '.join(available_protocols())}."
    with pytest.raises(ConfigError, match="Unknown protocol 'bogus'"):
        build_split(None, "bogus")


def test_a_name_is_registered_once():
    class Another(Protocol):
        name = "temporal"

    with pytest.raises(ConfigError, match="already registered"):
        register_protocol(Another)
    assert type(get_protocol("temporal")).__name__ == "Temporal"
    register_protocol(type(get_protocol("temporal")))  # the same class again: nothing changes
    assert available_protocols()[:len(BUILT_IN)] == BUILT_IN
    with pytest.raises(TypeError):
        register_protocol(str)

    class Nameless(Protocol):
        pass

    with pytest.raises(TypeError):
        register_protocol(Nameless)


def test_config_keys_are_those_of_before():
    from movierec.experiments import protocol_key

    cases = {("leave-last", None): "loo", ("leave-last", 1): "loo", ("leave-last", 1.0): "loo",
             ("leave-last", 0.2): "last20", ("leave-last", 0.1): "last10", ("leave-last", 3): "leave-last-3",
             ("cold-movies", None): "cold", ("cold-movies", 0.2): "cold", ("temporal", 0.2): "temporal",
             ("random", None): "random", ("ml100k-folds", None): "ml100k-folds", ("files", 0.2): "files"}
    for (name, holdout), key in cases.items():
        assert get_protocol(name).config_key(holdout) == key
        assert protocol_key(name, holdout) == key
    with pytest.raises(ConfigError, match="Unknown protocol"):
        protocol_key("bogus")


def test_no_protocol_name_is_dispatched_on_outside_the_protocol_classes():
    """`if protocol == "..."` chains live in the protocol classes only."""
    pattern = re.compile(r"protocol(?:\.name)?\s*(?:==|!=|in\s*[(\[{])|==\s*\"(?:temporal|leave-last|random|"
                         r"ml100k-folds|files|cold-movies)\"")
    offenders = []
    for path in (ROOT / "src" / "movierec").rglob("*.py"):
        if (ROOT / "src" / "movierec" / "evaluation" / "protocols") in path.parents:
            continue
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if pattern.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []


# -- what each protocol knows ----------------------------------------------------------

def test_one_wording_of_every_protocol(ml100k):
    labels = {
        "temporal": "temporal (test 10%)",
        "leave-last": "leave-last (last item per user)",
        "random": "random (test 10%)",
        "ml100k-folds": "ml100k-folds",
        "cold-movies": "cold-movies (168 movies held out of training)",
    }
    for name, words in labels.items():
        summary = split_summary(build_split(ml100k, name))
        assert get_protocol(name).label(summary) == protocol_label(name, summary) == words
    assert protocol_label("leave-last", {"holdout": 0.2}) == "leave-last (last 20% per user)"
    assert protocol_label("leave-last", {"holdout": 3}) == "leave-last (last 3 items per user)"
    assert protocol_label("temporal", build_split(ml100k, "temporal", validation=False).info) == "temporal (test 20%)"
    assert protocol_label("files", {}) == "files"
    assert protocol_label("kfold", {}) == "kfold" and protocol_label(None) is None
    from movierec.reporting import viz

    assert viz.protocol_label("cold-movies", {"n_cold_items": 3}) == "cold-movies (3 movies held out of training)"


def test_the_cli_titles_a_comparison_in_the_same_words(tmp_path):
    from movierec.cli import app

    result = CliRunner().invoke(app, ["compare", "--dataset", "ml-100k", "--protocol", "leave-last", "--models",
                                      "random,pop", "--config-dir", str(tmp_path)])
    assert result.exit_code == 0, (result.output, result.exception)
    assert "protocol leave-last (last item per user)" in " ".join(result.stdout.split())


def test_every_command_refuses_an_unknown_protocol_in_one_sentence(tmp_path):
    """Before any data is read: the ratings file named here does not exist."""
    from movierec.cli import app

    missing = str(tmp_path / "missing.csv")
    for command in (["compare", "--models", "pop"], ["evaluate", "--model", "bias"], ["tune", "--model", "ease"]):
        result = CliRunner().invoke(app, [*command, "--data", missing, "--protocol", "bogus"])
        assert result.exit_code == 1 and isinstance(result.exception, ConfigError), (command, result.output)
        assert str(result.exception).startswith("Unknown protocol 'bogus'; choose one of: temporal,"), command
    help_text = " ".join(CliRunner().invoke(app, ["compare", "--help"]).stdout.split())
    for name in BUILT_IN:
        assert f"{name}:" in help_text, name


def test_tuning_splits_per_protocol(ml100k):
    from movierec.data.split import carve_validation
    from movierec.experiments import tuning_split

    for name in ("leave-last", "cold-movies"):  # the split compare makes: its own validation part
        tuned, made = tuning_split(ml100k, name, seed=3), build_split(ml100k, name, seed=3)
        for part in ("train", "validation", "test"):
            assert getattr(tuned, part).fingerprint() == getattr(made, part).fingerprint(), (name, part)
    for name, latest in (("temporal", True), ("random", False), ("ml100k-folds", False)):
        tuned = tuning_split(ml100k, name, seed=3, validation_fraction=0.15)
        whole = build_split(ml100k, name, seed=3, validation=False, drop_unseen_test=False)
        fit, validation = carve_validation(whole.train, 0.15, 3, temporal=latest)
        assert tuned.train.fingerprint() == fit.fingerprint()
        assert tuned.validation.fingerprint() == validation.fingerprint()
        assert tuned.test.fingerprint() == whole.test.fingerprint()
    assert tuning_split(ml100k, "ml100k-folds").info["fold"] == "u1"
    with pytest.raises(ConfigError, match="validation share"):
        tuning_split(ml100k, "random", validation_fraction=0.6)


def test_candidates_come_from_the_protocol(ml100k):
    from movierec.evaluation.cold_movies import PROTOCOL, cold_candidates, validation_candidates

    cold = build_split(ml100k, "cold-movies", seed=2)
    assert get_protocol(PROTOCOL).name == PROTOCOL and protocol_of(cold) is get_protocol(PROTOCOL)
    np.testing.assert_array_equal(get_protocol(PROTOCOL).candidates(cold, "test"), cold_candidates(cold))
    np.testing.assert_array_equal(get_protocol(PROTOCOL).candidates(cold, "validation"), validation_candidates(cold))
    temporal = build_split(ml100k, "temporal")
    assert protocol_of(temporal).name == "temporal"
    for name in ("temporal", "leave-last", "random", "ml100k-folds", "files"):
        assert get_protocol(name).candidates(temporal, "test") is None
    with pytest.raises(ConfigError, match="'test' or 'validation'"):
        get_protocol("temporal").candidates(temporal, "train")


# -- a protocol registered here only ---------------------------------------------------

class FirstHalf(Protocol):
    """Toy: a seeded half of the ratings trains, a quarter validates, a quarter tests; only
    movies of even index are ever ranked; tuned configs under "half"."""

    name = "first-half"
    help = "first-half: a seeded half of the ratings trains, the rest tests; only movies of even index are ranked"

    def split(self, ds, holdout, seed, *, validation):
        order = np.random.default_rng(seed).permutation(ds.n_ratings)
        part = np.zeros(ds.n_ratings, dtype=np.int8)
        part[order[ds.n_ratings // 2:]] = 2
        if validation:
            part[order[ds.n_ratings // 2: 3 * ds.n_ratings // 4]] = 1
        return Split(train=ds.subset(part == 0, name=f"{ds.name}:train"),
                     test=ds.subset(part == 2, name=f"{ds.name}:test"),
                     validation=ds.subset(part == 1, name=f"{ds.name}:validation") if validation else None,
                     info={"protocol": self.name, "seed": seed})

    def config_key(self, holdout=None):
        return "half"

    def label(self, summary=None):
        return f"{self.name} (seed {(summary or {}).get('seed')})"

    def candidates(self, split, part="test"):
        mask = np.zeros(split.train.n_items, dtype=bool)
        mask[::2] = True
        return mask


@pytest.fixture
def first_half():
    register_protocol(FirstHalf)
    yield get_protocol("first-half")
    unregister_protocol("first-half")


@pytest.fixture(scope="module")
def slice_(ml100k):
    """The first 200 users of ML-100K under a name of its own (for the tuned-config lookup)."""
    return ml100k.subset(ml100k.user_idx < 200, name="ml-slice")


def test_a_protocol_registered_in_a_test_runs_compare_and_tune(first_half, slice_, tmp_path):
    from movierec.experiments import CompareSpec, compare, tune, tuning_split
    from movierec.experiments.tune import validation_score
    from movierec.models import create
    from movierec.reporting.report import comparison_context

    assert "first-half" in available_protocols()
    (tmp_path / "ml-slice" / "half").mkdir(parents=True)
    (tmp_path / "ml-slice" / "half" / "pop.json").write_text(json.dumps({"params": {"min_rating": 4}}))
    comp = compare(CompareSpec(dataset=slice_, protocol="first-half", models=["pop", "ease"], seed=5,
                               config_root=tmp_path))
    assert comp.info["protocol"] == "first-half" and comp.info["split"]["seed"] == 5
    assert comp.info["models_config"]["pop"] == {"params": {"min_rating": 4},
                                                 "config": str(tmp_path / "ml-slice" / "half" / "pop.json")}
    for result in comp.results.values():
        recs = result.recommendations
        assert recs.size and (recs[recs >= 0] % 2 == 0).all()
    assert comparison_context(comp) == ("ml-slice", "first-half (seed 5)")

    split = tuning_split(slice_, "first-half", seed=1, validation_fraction=0.2)
    assert split.validation.n_ratings == round(0.2 * split.train_full().n_ratings)
    tuned = tune("ease", split, metric="recall@10", trials=2, seed=0)
    assert tuned.protocol == "half" and tuned.dataset == "ml-slice"
    model = create("ease", **tuned.params).fit(split.train)
    ranked_even = validation_score(model, split.train, split.validation, "recall@10", None,
                                   first_half.candidates(split))
    assert tuned.validation["recall@10"] == pytest.approx(ranked_even["recall@10"])
    assert tuned.validation["recall@10"] != pytest.approx(validation_score(model, split.train, split.validation,
                                                                           "recall@10")["recall@10"])


def test_the_toy_protocol_is_gone_after_its_test():
    assert "first-half" not in available_protocols()


# -- relevance threshold ---------------------------------------------------------------

def test_one_relevance_threshold_parser(ml100k):
    assert parse_relevance_threshold(None) == "auto" and parse_relevance_threshold(None, default=None) is None
    for word in ("auto", "AUTO"):
        assert parse_relevance_threshold(word, default=None) == "auto"
    for word in ("none", "off", "all", "None"):
        assert parse_relevance_threshold(word) is None
    assert parse_relevance_threshold("3.5") == 3.5 and parse_relevance_threshold(4) == 4.0
    with pytest.raises(ConfigError, match="relevance threshold is a number, 'auto' or 'none'; got 'high'"):
        parse_relevance_threshold("high")
    assert resolve_relevance_threshold("auto", ml100k) == 4.0
    assert resolve_relevance_threshold(None, ml100k) is None  # tuning's default: every rating relevant
    assert resolve_relevance_threshold("none", ml100k) is None and resolve_relevance_threshold("2", ml100k) == 2.0


def test_both_commands_parse_the_threshold_alike(tmp_path):
    """One parser, before any data is read (the ratings file named here does not exist)."""
    from movierec.cli import app

    missing = str(tmp_path / "missing.csv")
    for command in (["compare", "--models", "pop"], ["tune", "--model", "ease"]):
        result = CliRunner().invoke(app, [*command, "--data", missing, "--relevance-threshold", "high"])
        assert result.exit_code == 1 and isinstance(result.exception, ConfigError), (command, result.output)
        assert "'auto' or 'none'; got 'high'" in str(result.exception)


# -- JSON ------------------------------------------------------------------------------

def test_one_json_encoder_for_numpy_paths_and_sets():
    doc = {"i": np.int64(3), "f": np.float32(0.5), "b": np.bool_(True), "a": np.arange(3), "p": Path("x/y"),
           "s": {2}, "nan": np.float64("nan")}
    assert json.loads(json.dumps(doc, default=json_default).replace("NaN", "null")) == {
        "i": 3, "f": 0.5, "b": True, "a": [0, 1, 2], "p": "x/y", "s": [2], "nan": None}
    assert math.isnan(json_default(np.float64("nan")))
    assert json_default_finite(np.float64("nan")) is None and json_default_finite(np.float32(np.inf)) is None
    assert json_default_finite(np.float32(2.5)) == 2.5 and json_default_finite(np.int8(2)) == 2
    with pytest.raises(TypeError, match="object is not JSON serialisable"):
        json_default(object())


def test_every_writer_uses_the_shared_encoder(tmp_path, capsys):
    from movierec.artifacts import bundle
    from movierec.cli.common import print_json
    from movierec.experiments import TunedConfig

    params = {"regularization": np.float32(2.5), "min_item_count": np.int64(2), "flag": np.bool_(False)}
    path = TunedConfig(model="ease", params=params, dataset="d", protocol="loo").save(tmp_path / "c.json")
    assert TunedConfig.load(path).params == {"regularization": 2.5, "min_item_count": 2, "flag": False}
    print_json({"ok": np.bool_(True), "v": np.float64("nan"), "p": Path("a")})
    assert capsys.readouterr().out.strip() == '{"ok": true, "v": null, "p": "a"}'
    assert bundle._json_default(frozenset({"x"})) == ["x"] and bundle._json_default(np.arange(2)) == [0, 1]


# -- sampled negatives -----------------------------------------------------------------

def test_negative_cache_is_bounded_least_recently_used_out():
    cache = NegativeCache(maxsize=2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # a is now the most recent
    cache.put("c", 3)
    assert len(cache) == 2 and "b" not in cache and cache.get("a") == 1 and cache.get("c") == 3
    with pytest.raises(ConfigError):
        NegativeCache(maxsize=0)


def test_sample_negatives_reuses_its_cache(ml100k):
    split = build_split(ml100k.subset(ml100k.user_idx < 100, name="ml-100"), "random", seed=0)
    cache = NegativeCache(maxsize=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SampledEvaluationWarning)
        first = sample_negatives(split.train, split.test, n_negatives=5, seed=1, cache=cache)
        assert sample_negatives(split.train, split.test, n_negatives=5, seed=1, cache=cache) is first
        other = sample_negatives(split.train, split.test, n_negatives=6, seed=1, cache=cache)
        assert len(cache) == 1 and other is not first
        again = sample_negatives(split.train, split.test, n_negatives=5, seed=1, cache=cache)
    assert again is not first and (again != first).nnz == 0  # drawn again, the same candidates


# -- the command line stays light ------------------------------------------------------

def test_listing_the_protocols_loads_no_numpy():
    """The CLI builds its --protocol help from the registry at import; that must not load
    numpy, pandas or the data layer."""
    probe = ("import sys, movierec.cli; "
             "print(sorted(m for m in ('numpy', 'pandas', 'scipy', 'movierec.data.dataset') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
