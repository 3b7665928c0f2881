"""Discoverability (issue 9, finding 9): `movierec --version`, `movierec models available`,
`movierec movies search` and the title search behind it (`movierec.data.catalog_search`),
on the real ML-100K and ml-latest-small catalogs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import movierec
from movierec.cli import app
from movierec.data.catalog_search import TIERS, TitleIndex, search_titles, title_key
from movierec.errors import ConfigError, MovierecError

runner = CliRunner()
SCRIPT = Path(sys.executable).parent / "movierec"


def ok_json(*args: str) -> dict:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, (result.output, result.exception)
    return json.loads(result.stdout.strip().splitlines()[-1])


def raw_id(ds, index: int):
    return ds.items.raw_ids[index].item()


# -- --version -----------------------------------------------------------------------------
@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version(flag):
    result = runner.invoke(app, [flag])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"movierec {movierec.__version__}"


# -- models available ----------------------------------------------------------------------
def test_models_available_json_matches_the_declared_classes():
    from movierec.models import available, get_class

    doc = ok_json("models", "available")
    assert [m["name"] for m in doc["models"]] == available()
    for entry in doc["models"]:
        cls = get_class(entry["name"])
        assert entry["kind"] == ("rating" if cls.capabilities.predicts_ratings else "ranking")
        assert entry["capabilities"] == cls.capabilities.names()
        assert entry["params"] == json.loads(json.dumps(cls.default_params()))
        assert list(entry["tunable"]) == list(cls.search_space)  # declaration (= sampling) order
    by_name = {m["name"]: m for m in doc["models"]}
    assert by_name["mf"]["kind"] == "rating" and by_name["ease"]["kind"] == "ranking"
    assert by_name["mf"]["params"]["dim"] == 32
    assert by_name["mf"]["tunable"]["reg"] == {"type": "float", "low": 0.02, "high": 0.3, "log": True,
                                               "describe": "float in [0.02, 0.3] (log)"}
    assert "fold_in" in by_name["ease"]["capabilities"] and by_name["pop"]["tunable"] == {}


def test_models_available_text_and_one_model():
    result = runner.invoke(app, ["models", "available"])
    assert result.exit_code == 0
    for name in movierec.available():
        assert f"\n{name}  (" in "\n" + result.stdout
    one = ok_json("models", "available", "bpr")
    assert [m["name"] for m in one["models"]] == ["bpr"]
    bad = runner.invoke(app, ["models", "available", "nosuchmodel"])
    assert bad.exit_code != 0 and isinstance(bad.exception, ConfigError)


# -- the title search (library) ------------------------------------------------------------
def test_title_key_moves_articles_and_drops_accents_and_case():
    assert title_key("Matrix, The") == title_key("the matrix") == title_key("MATRIX") == ["matrix"]
    assert title_key("Postino, Il") == ["postino"]
    assert title_key("Amélie") == title_key("AMELIE") == ["amelie"]
    assert title_key("Wallace & Gromit") == ["wallace", "and", "gromit"]


def test_star_wars_on_ml100k(ml100k):
    hits = search_titles(ml100k.catalog, "star wars", k=5, counts=ml100k.item_counts())
    assert raw_id(ml100k, hits[0].index) == 50 and hits[0].tier == "exact"
    assert hits[0].label == "Star Wars (1977)"


@pytest.mark.parametrize("query", ["the matrix", "matrix", "Matrix, The", "THE MATRIX", "matrix 1999"])
def test_the_matrix_however_it_is_typed(ml_small, query):
    hits = search_titles(ml_small.catalog, query, k=3, counts=ml_small.item_counts())
    assert ml_small.catalog.titles[hits[0].index] == "Matrix, The" and raw_id(ml_small, hits[0].index) == 2571


def test_accents_and_alternative_titles(ml100k, ml_small):
    amelie = search_titles(ml_small.catalog, "amelie", k=1)[0]
    assert ml_small.catalog.titles[amelie.index].startswith("Amelie (Fabuleux destin d'Amélie Poulain")
    assert ml100k.catalog.titles[search_titles(ml100k.catalog, "les miserables", k=1)[0].index] == "Misérables, Les"
    # a title in parentheses (here the French one), typed with and without accents
    for query in ("cite des enfants perdus", "Cité des Enfants Perdus"):
        hit = search_titles(ml_small.catalog, query, k=1)[0]
        assert ml_small.catalog.titles[hit.index].startswith("City of Lost Children, The") and hit.tier == "exact"
    hit = search_titles(ml100k.catalog, "CAFE AU LAIT", k=1)[0]
    assert ml100k.catalog.titles[hit.index] == "Metisse (Café au Lait)"


def test_tiers_come_in_order_and_popular_first_within_a_tier(ml_small):
    counts = ml_small.item_counts()
    hits = TitleIndex(ml_small.catalog, counts).search("star wars", k=20)
    tiers = [TIERS.index(h.tier) for h in hits]
    assert tiers == sorted(tiers)
    prefix = [h for h in hits if h.tier == "prefix"]
    assert len(prefix) >= 6  # the Star Wars episodes
    assert ml_small.catalog.titles[prefix[0].index].startswith("Star Wars: Episode IV")  # the most rated
    non_fuzzy = [h for h in hits if h.tier != "fuzzy"]
    assert [counts[h.index] for h in non_fuzzy if h.tier == "prefix"] == sorted(
        (counts[h.index] for h in non_fuzzy if h.tier == "prefix"), reverse=True)


def test_words_and_fuzzy_matches(ml100k):
    words = search_titles(ml100k.catalog, "empire back", k=3)
    assert ml100k.catalog.titles[words[0].index] == "Empire Strikes Back, The" and words[0].tier == "words"
    fuzzy = search_titles(ml100k.catalog, "shawshenk redemption", k=3)
    assert ml100k.catalog.titles[fuzzy[0].index] == "Shawshank Redemption, The" and fuzzy[0].tier == "fuzzy"
    assert search_titles(ml100k.catalog, "qqqxxzz", k=5) == []


def test_bad_queries(ml100k):
    with pytest.raises(ConfigError):
        search_titles(ml100k.catalog, "  ,, ", k=5)
    with pytest.raises(ConfigError):
        search_titles(ml100k.catalog, "star wars", k=0)


# -- movies search (CLI) -------------------------------------------------------------------
def test_movies_search_dataset():
    doc = ok_json("movies", "search", "star wars", "--dataset", "ml-100k", "-k", "3")
    assert doc["movies"][0] == {"movie_id": 50, "title": "Star Wars (1977)",
                                "genres": ["Action", "Adventure", "Romance", "Sci-Fi", "War"],
                                "ratings": 583, "match": "exact"}
    assert len(doc["movies"]) <= 3
    text = runner.invoke(app, ["movies", "search", "star wars", "-d", "ml-100k"])
    assert text.exit_code == 0 and "Star Wars (1977)" in text.stdout and "50" in text.stdout


def test_movies_search_own_movies_file(tmp_path):
    movies = tmp_path / "movies.csv"
    movies.write_text("movieId,title,genres\n1,\"Matrix, The (1999)\",Action|Sci-Fi\n"
                      "2,Amélie (2001),Comedy|Romance\n3,Toy Story (1995),Animation\n", encoding="utf-8")
    doc = ok_json("movies", "search", "the matrix", "--movies", str(movies))
    assert doc["movies"][0]["movie_id"] == 1 and doc["movies"][0]["title"] == "Matrix, The (1999)"
    assert doc["movies"][0]["ratings"] is None
    assert ok_json("movies", "search", "AMELIE", "--movies", str(movies))["movies"][0]["movie_id"] == 2


def test_movies_search_model_folder(tmp_path, ml100k):
    from movierec.artifacts import save_bundle
    from movierec.artifacts.train import train

    folder = save_bundle(train("pop", ml100k), tmp_path / "pop")
    doc = ok_json("movies", "search", "godfather", "--model-dir", str(folder), "-k", "2")
    assert doc["movies"][0]["movie_id"] == 127 and doc["movies"][0]["ratings"] == 413


def test_movies_search_needs_exactly_one_source(tmp_path):
    for args in ([], ["-d", "ml-100k", "--model-dir", str(tmp_path)]):
        result = runner.invoke(app, ["movies", "search", "star wars", *args])
        assert result.exit_code != 0 and isinstance(result.exception, ConfigError)
        assert "--dataset" in str(result.exception)


def test_console_script_version_and_movies_search():
    assert SCRIPT.is_file(), f"console script missing next to {sys.executable}"
    version = subprocess.run([str(SCRIPT), "-V"], capture_output=True, text=True, timeout=120)
    assert version.returncode == 0 and version.stdout.strip() == f"movierec {movierec.__version__}"
    found = subprocess.run([str(SCRIPT), "movies", "search", "Star Wars", "-d", "ml-100k", "--json"],
                           capture_output=True, text=True, timeout=120)
    assert found.returncode == 0, found.stderr
    assert json.loads(found.stdout)["movies"][0]["movie_id"] == 50
    models = subprocess.run([str(SCRIPT), "models", "available", "--json"], capture_output=True, text=True, timeout=120)
    assert models.returncode == 0 and "mf" in [m["name"] for m in json.loads(models.stdout)["models"]]
    empty = subprocess.run([str(SCRIPT), "movies", "search", " ", "-d", "ml-100k"], capture_output=True, text=True,
                           timeout=120)
    assert empty.returncode == 1 and "Traceback" not in empty.stderr
    assert empty.stderr.strip().startswith("error: ") and len(empty.stderr.strip().splitlines()) == 1
    assert issubclass(ConfigError, MovierecError)
