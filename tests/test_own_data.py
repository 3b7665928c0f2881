"""Own data from the command line: a ratings file with string user IDs and a time column
under an unknown name, plus a movies file, -> train -> titled recommendations for oneself as
a new person; the same reading options on every command that takes --data."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from movierec.cli import app
from movierec.data import load_ratings
from movierec.data.movielens import read_movies
from movierec.data.readers import DataWarning
from movierec.errors import ConfigError, ParseError, UnknownUserError

runner = CliRunner()


def ok_json(*args: str) -> dict:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, (result.output, result.exception)
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def newcomer(ml100k, tmp_path_factory):
    """A newcomer's files made from ML-100K's first 400 users: ratings.csv (user names as
    text, the time as dates in a column called "when", a free-text column) and movies.csv
    in the MovieLens layout (movieId,title,genres with "|" genres and "(year)" titles)."""
    folder = tmp_path_factory.mktemp("own")
    frame = ml100k.subset(ml100k.user_idx < 400).to_frame()
    ratings = pd.DataFrame({
        "userId": "fan-" + frame["user"].astype(str),
        "movieId": frame["item"],
        "rating": frame["rating"],
        "when": pd.to_datetime(frame["timestamp"], unit="s").dt.strftime("%Y-%m-%d %H:%M:%S"),
        "comment": "ok",
    })
    ratings.to_csv(folder / "ratings.csv", index=False)
    cat = ml100k.catalog
    movies = pd.DataFrame({
        "movieId": ml100k.items.raw_ids,
        "title": [cat.label(i) for i in range(ml100k.n_items)],
        "genres": ["|".join(g) if g else "(no genres listed)" for g in cat.genres],
    })
    movies.to_csv(folder / "movies.csv", index=False)
    return folder


def test_newcomer_end_to_end(newcomer, tmp_path, ml100k):
    """ratings.csv + movies.csv -> train -> recommend for oneself with --rated -> titles."""
    model = tmp_path / "model"
    trained = runner.invoke(app, ["train", "--data", str(newcomer / "ratings.csv"), "--movies",
                                  str(newcomer / "movies.csv"), "--model", "ease", "--out", str(model)])
    assert trained.exit_code == 0, (trained.output, trained.exception)
    assert "ignored column 'comment'" in trained.stderr and "--time-col" in trained.stderr
    result = runner.invoke(app, ["recommend", "--model-dir", str(model), "--rated", "50=5,172=5,181=4,1=2", "-k", "10"])
    assert result.exit_code == 0, (result.output, result.exception)
    assert "liked: Star Wars (1977)" in result.stdout  # the movies given, named with titles
    doc = ok_json("recommend", "--model-dir", str(model), "--rated", "50=5,172=5,181=4,1=2", "-k", "10")
    labels = {int(m): ml100k.catalog.label(i) for i, m in enumerate(ml100k.items.raw_ids)}
    assert len(doc["items"]) == 10
    assert [f"{item['title']} ({item['year']})" for item in doc["items"]] == \
        [labels[item["movie_id"]] for item in doc["items"]]
    assert all(item["genres"] for item in doc["items"])
    # a known user by their text ID; an unknown one is one sentence, never "nan"
    known = ok_json("recommend", "--model-dir", str(model), "--user", "fan-1", "-k", "3")
    assert known["user_id"] == "fan-1" and len(known["items"]) == 3
    unknown = runner.invoke(app, ["recommend", "--model-dir", str(model), "--user", "newbie"])
    assert isinstance(unknown.exception, UnknownUserError) and str(unknown.exception).startswith("Unknown user ID: 'newbie' (not among the 400 users")


def test_unknown_name_date_column_is_detected(newcomer):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = load_ratings(newcomer / "ratings.csv")
    assert ds.has_timestamps and ds.timestamp.min() == pd.Timestamp("1997-09-20 03:05:10").value // 10**9
    messages = [str(w.message) for w in caught if issubclass(w.category, DataWarning)]
    assert len(messages) == 1 and "'comment'" in messages[0] and "'when'" not in messages[0]
    # the temporal protocol works on it (it needs times)
    doc = ok_json("evaluate", "--model", "bias", "--data", str(newcomer / "ratings.csv"), "--protocol", "temporal")
    assert doc["protocol"] == "temporal" and doc["rmse"] < 1.2


def test_epoch_seconds_under_an_unknown_name_and_a_warning_otherwise(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("user,item,rating,moment\n1,10,4,881250949\n2,10,3,891717742\n")
    ds = load_ratings(path)
    assert ds.has_timestamps and sorted(ds.timestamp.tolist()) == [881250949, 891717742]
    odd = tmp_path / "odd.csv"
    odd.write_text("user,item,rating,age\n1,10,4,23\n2,10,3,41\n")
    with pytest.warns(DataWarning, match=r"ignored column 'age'.*name it with time_col"):
        ds = load_ratings(odd)
    assert not ds.has_timestamps
    words = tmp_path / "words.csv"
    words.write_text("user,item,rating,mood\n1,10,4,happy\n2,10,3,sad 2\n")
    with pytest.warns(DataWarning, match="'mood'"):
        assert not load_ratings(words).has_timestamps


def test_movies_file_layouts(tmp_path):
    ml = tmp_path / "movies.csv"
    ml.write_text('movieId,title,genres\n1,Toy Story (1995),Adventure|Animation|Children\n'
                  '2,"American President, The (1995)",Comedy|Drama|Romance\n3,Untitled,(no genres listed)\n')
    frame = read_movies(ml)
    assert frame["item_id"].tolist() == [1, 2, 3]
    assert frame["title"].tolist() == ["Toy Story", "American President, The", "Untitled"]
    assert frame["year"].tolist() == [1995, 1995, -1]
    assert frame["genres"].tolist() == [["Adventure", "Animation", "Children"], ["Comedy", "Drama", "Romance"], []]
    other = tmp_path / "films.tsv"
    other.write_text("id\tname\tgenre\tyear\ntt1\tAlien\tHorror; Sci-Fi\t1979\ntt2\tHeat\tCrime\t\n")
    frame = read_movies(other)
    assert frame["item_id"].tolist() == ["tt1", "tt2"] and frame["title"].tolist() == ["Alien", "Heat"]
    assert frame["genres"].tolist() == [["Horror", "Sci-Fi"], ["Crime"]] and frame["year"].tolist() == [1979, -1]


@pytest.mark.parametrize(
    "content, message",
    [
        ("movieId,genres\n1,Drama\n", r"cannot tell which column holds the title"),
        ("movieId,title\n1,A\n1,B\n", r"line 3: movie ID '1' appears more than once"),
        ("movieId,title\n,A\n", r"line 2: the movie ID is empty"),
        ("movieId,title,genres\n1,A,Drama\n2,B,Drama,extra\n", r"line 3: the number of fields differs"),
        ("movieId,title\n", r"has a header but no movies"),
    ],
)
def test_malformed_movies_files(tmp_path, content, message):
    path = tmp_path / "movies.csv"
    path.write_text(content)
    with pytest.raises(ParseError, match=message):
        read_movies(path)


def test_movies_file_errors_through_the_cli(newcomer, tmp_path):
    bad = tmp_path / "movies.csv"
    bad.write_text("movieId,genres\n1,Drama\n")
    result = runner.invoke(app, ["data", "describe", "--data", str(newcomer / "ratings.csv"), "--movies", str(bad)])
    assert isinstance(result.exception, ParseError) and "cannot tell which column holds the title" in str(result.exception)
    result = runner.invoke(app, ["train", "--dataset", "ml-100k", "--movies", str(bad), "-m", "pop", "-o", "x"])
    assert isinstance(result.exception, ConfigError) and str(result.exception).startswith("--movies goes with --data")


def test_movies_missing_some_rated_movies_warn(newcomer, tmp_path):
    few = tmp_path / "few.csv"
    pd.read_csv(newcomer / "movies.csv").head(100).to_csv(few, index=False)
    with pytest.warns(DataWarning, match=r"of the \d[\d,]* rated movies are not in"):
        ds = load_ratings(newcomer / "ratings.csv", movies=few)
    assert ds.catalog.label(0) == "Toy Story (1995)" and (ds.catalog.titles == "").sum() > 0


# -- the same reading options on every command that takes --data ------------------------
@pytest.fixture(scope="module")
def odd_file(ml100k, tmp_path_factory):
    """Columns nobody can guess, ';'-separated: only the column options can read it."""
    frame = ml100k.subset(ml100k.user_idx < 150).to_frame()
    path = tmp_path_factory.mktemp("odd") / "odd.txt"
    pd.DataFrame({"who": frame["user"], "what": frame["item"], "verdict": frame["rating"],
                  "at": frame["timestamp"]}).to_csv(path, index=False, sep=";")
    return path


COLUMNS = ["--user-col", "who", "--item-col", "what", "--rating-col", "verdict", "--time-col", "at", "--sep", ";"]


@pytest.mark.parametrize(
    "command",
    [
        ["data", "describe"],
        ["train", "--model", "pop", "--out", "{tmp}/m"],
        ["evaluate", "--model", "bias", "--protocol", "temporal"],
        ["tune", "--model", "bias", "--trials", "1", "--out", "{tmp}/t.json"],
        ["compare", "--models", "pop", "--protocol", "temporal"],
    ],
)
def test_column_options_on_every_data_command(odd_file, tmp_path, command):
    command = [c.replace("{tmp}", str(tmp_path)) for c in command]
    without = runner.invoke(app, [*command, "--data", str(odd_file)])
    assert isinstance(without.exception, ParseError) and "--user-col" in str(without.exception)
    doc = ok_json(*command, "--data", str(odd_file), *COLUMNS)
    assert doc  # read with the named columns: every command got the same options


def test_time_col_reaches_the_data(odd_file):
    stats = ok_json("data", "describe", "--data", str(odd_file), *COLUMNS)
    assert stats["n_users"] == 150 and "time_first" in stats
    assert np.isfinite(stats["rating_mean"])


@pytest.mark.parametrize("sep", [";", "\t", "|"])
def test_separator_of_a_csv_is_detected_from_its_first_line(tmp_path, sep):
    from movierec.data.movielens import parse_user_file

    path = tmp_path / "semi.csv"
    rows = ["userId{0}movieId{0}rating{0}timestamp", "1{0}10{0}4{0}100", "1{0}11{0}3{0}200", "2{0}10{0}5{0}300"]
    path.write_text("\n".join(r.format(sep) for r in rows) + "\n")
    ds = parse_user_file(path)
    assert (ds.n_ratings, ds.n_users, ds.n_items) == (3, 2, 2)
    assert sorted(ds.rating.tolist()) == [3.0, 4.0, 5.0]


def test_sniff_separator_prefers_the_split_with_most_fields():
    from movierec.data.readers import sniff_separator

    assert sniff_separator("a,b,c\n", ",") == ","
    assert sniff_separator("a;b;c\n", ",") == ";"
    assert sniff_separator("1::2::3::4\n", ",") == "::"
    assert sniff_separator("justone\n", ",") == ","


# -- the rating scale: the one given, else the file's lowest and highest (said once) -----
@pytest.fixture(scope="module")
def ten_points(ml100k, tmp_path_factory):
    """ML-100K's first 300 users on a 1-10 scale in which nobody gave a 1 (stars x 2: 2..10)."""
    frame = ml100k.subset(ml100k.user_idx < 300).to_frame()
    path = tmp_path_factory.mktemp("ten") / "ten.csv"
    pd.DataFrame({"user": frame["user"], "item": frame["item"], "rating": frame["rating"] * 2,
                  "timestamp": frame["timestamp"]}).to_csv(path, index=False)
    return path


def scale_warnings(caught) -> list[str]:
    return [str(w.message) for w in caught if issubclass(w.category, DataWarning) and "scale" in str(w.message)]


def test_given_rating_range_is_the_scale(ten_points):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = load_ratings(ten_points, rating_range=(1, 10))
    assert ds.rating_scale == (1.0, 10.0) and float(ds.rating.min()) == 2.0
    assert scale_warnings(caught) == []


def test_observed_scale_is_said_once(ten_points):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = load_ratings(ten_points)
    assert ds.rating_scale == (2.0, 10.0)
    assert scale_warnings(caught) == ["Ratings are read on the scale [2, 10], the lowest and highest in the file; "
                                      "give rating_range LOW,HIGH when the scale is wider."]


@pytest.mark.parametrize("ratings", [(1, 3, 5), (0.5, 2.5, 5), (1, 7, 10), (0, 1, 1), (1, 1, 1)])
def test_conventional_observed_scales_need_no_warning(tmp_path, ratings):
    """A common scale, or clicks with a constant rating: nothing to warn about."""
    path = tmp_path / "r.csv"
    path.write_text("user,item,rating\n" + "".join(f"{u},{u},{r}\n" for u, r in enumerate(ratings)))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = load_ratings(path)
    assert ds.rating_scale == (float(min(ratings)), float(max(ratings))) and scale_warnings(caught) == []


@pytest.mark.parametrize("rating_range, message", [
    ((5, 1), r"needs two finite numbers with LOW < HIGH; got 5,1"),
    ((1, float("nan")), r"needs two finite numbers"),
    ((1,), r"takes two numbers LOW,HIGH"),
    ("1-5", r"takes two numbers LOW,HIGH"),
])
def test_bad_rating_range_is_refused(ten_points, rating_range, message):
    with pytest.raises(ConfigError, match=message):
        load_ratings(ten_points, rating_range=rating_range)


def test_ratings_outside_the_given_range_are_refused(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("user,item,rating\n1,10,4\n2,20,11\n")
    with pytest.raises(ParseError, match=r"line 3: rating 11 is out of range \(expected 1 to 10\)"):
        load_ratings(path, rating_range=(1, 10))


def test_rating_range_from_train_to_recommend(ten_points, tmp_path):
    """The issue's commands: train with --rating-range 1,10, then rate 10 and 1 as a new person."""
    model = tmp_path / "model"
    trained = runner.invoke(app, ["train", "--data", str(ten_points), "--rating-range", "1,10", "--model", "bias",
                                  "--out", str(model)])
    assert trained.exit_code == 0, (trained.output, trained.exception)
    assert "scale" not in trained.stderr
    doc = ok_json("recommend", "--model-dir", str(model), "--rated", "100=10,101=1", "-k", "5")
    assert len(doc["items"]) == 5
    # without the range: trained on [2, 10], and told so in the CLI's words
    plain = runner.invoke(app, ["train", "--data", str(ten_points), "--model", "bias", "--out", str(tmp_path / "m2")])
    assert plain.exit_code == 0, (plain.output, plain.exception)
    assert plain.stderr.count("Ratings are read on the scale [2, 10]") == 1
    assert "--rating-range LOW,HIGH" in plain.stderr
