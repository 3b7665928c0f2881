"""`movierec recommend` for a new person (--rated / --liked / --ratings-file), --min-ratings,
and `train --out` never destroying what is not a model folder: through the Typer runner
and the installed console script (exit 1, one sentence, no traceback)."""

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
from movierec.errors import ConfigError

runner = CliRunner()
SCRIPT = Path(sys.executable).parent / "movierec"
STAR_WARS_FAN = "50,172,181"  # Star Wars, Empire Strikes Back, Return of the Jedi
DISNEY_FAN = "1,71,95,588"  # Toy Story, Lion King, Aladdin, Beauty and the Beast


def ok_json(*args: str) -> dict:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, (result.output, result.exception)
    return json.loads(result.stdout.strip().splitlines()[-1])


def script(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    assert SCRIPT.is_file(), f"console script missing next to {sys.executable}"
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, cwd=cwd, env=dict(os.environ),
                          timeout=180)


def one_sentence(proc: subprocess.CompletedProcess) -> str:
    """The single error line of a failed run (exit 1, no traceback, not "a bug")."""
    assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and lines[0].endswith("."), lines
    assert "unexpected" not in lines[0] and "a bug in movierec" not in lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def ease_dir(ml100k, tmp_path_factory) -> Path:
    """EASE (the demo's recommender) trained on all of ML-100K."""
    out = tmp_path_factory.mktemp("cold") / "ease"
    ok_json("train", "--dataset", "ml-100k", "--model", "ease", "--param", "regularization=300", "--out", str(out))
    return out


def top_ids(doc: dict) -> list:
    return [item["movie_id"] for item in doc["items"]]


def test_liked_lists_differ_with_taste(ease_dir, ml100k):
    star_wars = ok_json("recommend", "--model-dir", str(ease_dir), "--liked", STAR_WARS_FAN, "-k", "10")
    disney = ok_json("recommend", "--model-dir", str(ease_dir), "--liked", DISNEY_FAN, "-k", "10")
    assert len(star_wars["items"]) == len(disney["items"]) == 10
    assert len(set(top_ids(star_wars)) & set(top_ids(disney))) <= 3
    # titles are shown, and the given movies are never recommended back
    assert all(item["title"] and item["title"] != "?" for item in star_wars["items"] + disney["items"])
    assert not {50, 172, 181} & set(top_ids(star_wars))
    assert star_wars["liked"] == [50, 172, 181] and star_wars["disliked"] == [] and not star_wars["fallback"]
    # the Disney fan gets Disney animation, the Star Wars fan does not
    assert sum("Animation" in item["genres"] for item in disney["items"]) >= 4
    assert sum("Animation" in item["genres"] for item in star_wars["items"]) <= 1
    table = runner.invoke(app, ["recommend", "--model-dir", str(ease_dir), "--liked", DISNEY_FAN, "-k", "5"])
    assert table.exit_code == 0 and "new person who gave 4 movies" in table.stdout
    assert "Snow White" in table.stdout and "liked: Toy Story (1995); The Lion King (1994)" in table.stdout


def test_rated_goes_through_the_one_cold_start_api(ease_dir):
    from movierec.artifacts import load_bundle

    model = load_bundle(ease_dir).model
    doc = ok_json("recommend", "--model-dir", str(ease_dir), "--rated", "50=5,172=4,1=1", "-k", "8")
    expected = model.recommend_new([50, 172, 1], [5.0, 4.0, 1.0], k=8, exclude_given=True)
    assert top_ids(doc) == expected.items_of(0).tolist()
    assert doc["liked"] == [50, 172] and doc["disliked"] == [1] and doc["liked_threshold"] == 3.5
    liked = ok_json("recommend", "--model-dir", str(ease_dir), "--liked", "50,172,1", "-k", "8")
    assert top_ids(liked) == model.recommend_new([50, 172, 1], None, k=8).items_of(0).tolist()


def test_ratings_file_with_and_without_ratings(ease_dir, tmp_path):
    rated = tmp_path / "me.csv"
    rated.write_text("movieId,rating\n50,5\n172,4\n1,1\n")
    from_file = ok_json("recommend", "--model-dir", str(ease_dir), "--ratings-file", str(rated), "-k", "8")
    from_flag = ok_json("recommend", "--model-dir", str(ease_dir), "--rated", "50=5,172=4,1=1", "-k", "8")
    assert top_ids(from_file) == top_ids(from_flag)
    ids_only = tmp_path / "liked.csv"
    ids_only.write_text("1\n71\n95\n588\n")
    a = ok_json("recommend", "--model-dir", str(ease_dir), "--ratings-file", str(ids_only), "-k", "10")
    b = ok_json("recommend", "--model-dir", str(ease_dir), "--liked", DISNEY_FAN, "-k", "10")
    assert top_ids(a) == top_ids(b) and a["liked_threshold"] is None and a["liked"] == [1, 71, 95, 588]


def test_min_ratings_filters_known_and_new_users(ease_dir, ml100k):
    counts = dict(zip(ml100k.items.raw_ids.tolist(), ml100k.item_counts().tolist()))
    for who in (["--user", "42"], ["--liked", DISNEY_FAN]):
        plain = ok_json("recommend", "--model-dir", str(ease_dir), *who, "-k", "10")
        assert min(counts[m] for m in top_ids(plain)) < 300  # the filter has something to remove
        popular = ok_json("recommend", "--model-dir", str(ease_dir), *who, "-k", "10", "--min-ratings", "300")
        assert len(popular["items"]) == 10 and min(counts[m] for m in top_ids(popular)) >= 300
    result = runner.invoke(app, ["recommend", "--model-dir", str(ease_dir), "--user", "42", "--min-ratings", "5000"])
    assert isinstance(result.exception, ConfigError) and "the most rated movie has 583" in str(result.exception)


def test_user_and_new_person_options_exclude_each_other(ease_dir):
    for args in (["--user", "42", "--liked", "50"], ["--user", "42", "--rated", "1=5"], []):
        result = runner.invoke(app, ["recommend", "--model-dir", str(ease_dir), *args])
        assert isinstance(result.exception, ConfigError), result.output
        assert str(result.exception).startswith("Give one of --user ID")
    # a new person's stars and liked movies go together (as in the API): liked ones count as top stars
    both = ok_json("recommend", "--model-dir", str(ease_dir), "--rated", "50=5,88=1", "--liked", "1", "-k", "5")
    assert both["liked"] == [50, 1] and both["disliked"] == [88]


def test_model_without_fold_in_names_those_with_it(tmp_path):
    out = tmp_path / "gm"
    ok_json("train", "--dataset", "ml-100k", "--model", "global-mean", "--out", str(out))
    doc = ok_json("recommend", "--model-dir", str(out), "--liked", "50")  # answered, by the flagged fallback
    assert doc["fallback"] is True and len(doc["items"]) == 10 and 50 not in top_ids(doc)
    message = doc["fallback_reason"]
    assert "cannot recommend for a new person" in message
    named = message.split("models that can: ")[1].rstrip(".").split(", ")
    assert {"ease", "seq-ease", "mf", "als"} <= set(named) and "global-mean" not in named and "neumf" not in named


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--rated", "50=abc"], "error: --rated: the rating in '50=abc' is not a number."),
        (["--rated", "50"], "error: --rated takes movie=rating pairs like 50=5,172=4; '50' is not one."),
        (["--rated", "50=9"], "error: Ratings must lie in [1, 5], the model's scale; got 9 for movie 50."),
        (["--liked", ""], "error: --liked needs at least one movie ID, like --liked 1,71,95."),
        (["--liked", "50", "--liked-threshold", "7"],
         "error: The liked threshold must lie on the model's rating scale [1, 5], got 7."),
        (["--liked", "50", "-k", "0"], "error: k must be a whole number from 1 to 1000, got 0."),
        (["--liked", "50", "--min-ratings", "5000"],
         "error: No movie passes the filters (5000+ ratings; the most rated movie has 583); loosen them."),
        (["--liked", "50", "--only", "1,99999"], "error: Unknown movie ID: 99999."),
        (["--ratings-file", "missing.csv"], "error: Ratings file missing.csv does not exist."),
        (["--user", "newbie"], "error: Unknown user ID: 'newbie' (not among the 943 users the model was trained on); "
                                "for someone new, recommend from the movies they rated or liked."),
    ],
)
def test_console_script_cold_start_mistakes(ease_dir, tmp_path, args, expected):
    assert one_sentence(script("recommend", "--model-dir", str(ease_dir), *args, cwd=tmp_path)) == expected


def test_console_script_malformed_ratings_file(ease_dir, tmp_path):
    (tmp_path / "bad.csv").write_text("movieId,rating\n50,5\n172,great\n")
    line = one_sentence(script("recommend", "--model-dir", str(ease_dir), "--ratings-file", "bad.csv", cwd=tmp_path))
    assert line == "error: bad.csv, line 3: the rating is 'great', not a number."
    (tmp_path / "who.csv").write_text("film_name,stars\nAlien,5\n")
    line = one_sentence(script("recommend", "--model-dir", str(ease_dir), "--ratings-file", "who.csv", cwd=tmp_path))
    assert "cannot tell which column holds the movie IDs" in line


# -- train --out never destroys what is not a model folder ------------------------------
def test_out_refuses_a_folder_with_other_files(tmp_path):
    project = tmp_path / "myproject"
    project.mkdir()
    (project / "notes.txt").write_text("my notes")
    (project / "data").mkdir()
    (project / "data" / "mine.csv").write_text("user,item,rating\n1,2,3\n")
    line = one_sentence(script("train", "--dataset", "ml-100k", "--model", "pop", "--out", "myproject", cwd=tmp_path))
    assert line.startswith("error: Refusing to replace myproject: it holds files but is not a movierec model folder")
    assert (project / "notes.txt").read_text() == "my notes"
    assert sorted(p.name for p in project.rglob("*")) == ["data", "mine.csv", "notes.txt"]


def test_out_refuses_an_existing_file(tmp_path):
    target = tmp_path / "myfile.csv"
    target.write_text("user,item,rating\n1,2,3\n")
    line = one_sentence(script("train", "--dataset", "ml-100k", "--model", "pop", "--out", "myfile.csv", cwd=tmp_path))
    assert line == "error: Refusing to write the model over myfile.csv: it is a file, not a model folder."
    assert target.is_file() and target.read_text() == "user,item,rating\n1,2,3\n"


@pytest.mark.parametrize("out", [".", ".."])
def test_out_refuses_the_working_folder(tmp_path, out):
    (tmp_path / "keep.txt").write_text("x")
    line = one_sentence(script("train", "--dataset", "ml-100k", "--model", "pop", "--out", out, cwd=tmp_path))
    assert "it is the working folder or holds it" in line
    assert (tmp_path / "keep.txt").read_text() == "x"


def test_out_replaces_an_older_model_folder_only_with_overwrite(tmp_path):
    import os
    import stat

    from movierec.artifacts import load_bundle

    ok_json("train", "--dataset", "ml-100k", "--model", "pop", "--out", str(tmp_path / "m"))
    line = one_sentence(script("train", "--dataset", "ml-100k", "--model", "ease", "--out", "m", cwd=tmp_path))
    assert line == "error: m already holds a model; give --overwrite to replace it, or name a new folder."
    assert load_bundle(tmp_path / "m").name == "pop"  # untouched
    ok_json("train", "--dataset", "ml-100k", "--model", "ease", "--param", "regularization=300",
            "--out", str(tmp_path / "m"), "--overwrite")
    assert load_bundle(tmp_path / "m").name == "ease"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE((tmp_path / "m").stat().st_mode) == 0o777 & ~umask  # not drwx------
    (tmp_path / "empty").mkdir()
    ok_json("train", "--dataset", "ml-100k", "--model", "pop", "--out", str(tmp_path / "empty"))
    assert load_bundle(tmp_path / "empty").name == "pop"


@pytest.mark.parametrize(
    "params, start",
    [
        (["--device", "cuda:9"], "error: device='cuda:9' was asked for but this machine has"),
        (["--param", "device=cuda:9"], "error: device is a runtime option, not a hyperparameter of 'mf'"),
        (["--param", "dim=abc"], "error: Hyperparameter 'dim' of model 'mf' takes a whole number"),
        (["--param", "nosuchparam=3"], "error: Model 'mf' has no hyperparameter 'nosuchparam'"),
    ],
)
def test_console_script_bad_params_before_training(tmp_path, params, start):
    (tmp_path / "keep").mkdir()
    (tmp_path / "keep" / "x.txt").write_text("x")
    line = one_sentence(script("train", "--dataset", "ml-100k", "--model", "mf", *params, "--out", "m", cwd=tmp_path))
    assert line.startswith(start), line
    assert not (tmp_path / "m").exists()


def test_min_ratings_counts_come_from_the_seen_matrix(ease_dir, ml100k):
    from movierec.answers import Answerer, Filters
    from movierec.artifacts import load_bundle

    answerer = Answerer(load_bundle(ease_dir))
    kept = answerer.item_ids[answerer.allowed(Filters(min_ratings=100))]
    expected = ml100k.items.raw_ids[ml100k.item_counts() >= 100]
    assert np.array_equal(np.sort(kept), np.sort(expected))
    assert answerer.allowed(Filters(min_ratings=0)) is None
