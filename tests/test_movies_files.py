"""`--movies` files in MovieLens' own layouts: ML-100K's u.item (Latin-1, "|", 19 genre
flags) and ML-1M's movies.dat (Latin-1, "::"), recognised by their content; a headed
CSV/TSV that is not UTF-8 is read as Latin-1 only where that is safe, and says so."""

from __future__ import annotations

import shutil
import warnings

import pytest
from typer.testing import CliRunner

from movierec.artifacts import load_bundle
from movierec.cli import app
from movierec.data import load_ratings
from movierec.data.fetch import fetch
from movierec.data.movielens import ML100K_GENRES, read_movies
from movierec.data.readers import DataWarning
from movierec.errors import ParseError

runner = CliRunner()


@pytest.fixture(scope="module")
def ml100k_folder(ml100k):
    """The extracted ML-100K folder in the test cache (the real u.item, u.genre ...)."""
    return fetch("ml-100k")


def data_warnings(caught) -> list[str]:
    return [str(w.message) for w in caught if issubclass(w.category, DataWarning)]


# -- ML-100K's u.item ------------------------------------------------------------------
def test_real_u_item_alone_reads_like_the_dataset(ml100k, ml100k_folder, tmp_path):
    """The real u.item, copied without its u.genre and under another name: the same
    titles, years and genres as the ML-100K dataset, accents decoded from Latin-1."""
    raw = (ml100k_folder / "u.item").read_bytes()
    assert b"Mis\xe9rables" in raw  # the real file really is Latin-1
    path = tmp_path / "my-films.txt"
    shutil.copy(ml100k_folder / "u.item", path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        frame = read_movies(path)
    assert data_warnings(caught) == []  # u.item's own encoding: nothing to warn about
    assert len(frame) == ml100k.n_items == 1682
    order = ml100k.items.lookup(frame["item_id"].to_numpy())
    cat = ml100k.catalog
    assert frame["title"].tolist() == [cat.titles[i] for i in order]
    assert frame["year"].tolist() == [int(cat.years[i]) for i in order]
    assert frame["genres"].tolist() == [list(cat.genres[i]) for i in order]
    row = frame.set_index("item_id").loc[543]
    assert row["title"] == "Misérables, Les" and row["year"] == 1995 and row["genres"] == ["Drama", "Musical"]
    assert not any("unknown" in g for g in frame["genres"])  # the "unknown" flag is dropped


def test_u_item_takes_genre_names_from_a_u_genre_beside_it(ml100k_folder, tmp_path):
    shutil.copy(ml100k_folder / "u.item", tmp_path / "u.item")
    names = [f"g{i}" for i in range(19)]
    (tmp_path / "u.genre").write_text("".join(f"{n}|{i}\n" for i, n in enumerate(names)) + "\n")
    frame = read_movies(tmp_path / "u.item").set_index("item_id")
    toy_story = [n for n, std in zip(names, ML100K_GENRES) if std in ("Animation", "Children's", "Comedy")]
    assert frame.loc[1, "genres"] == toy_story


def test_u_item_resaved_as_utf8_is_read_as_utf8(ml100k_folder, tmp_path):
    path = tmp_path / "u.item"
    path.write_bytes((ml100k_folder / "u.item").read_bytes().decode("iso-8859-1").encode("utf-8"))
    assert read_movies(path).set_index("item_id").loc[543, "title"] == "Misérables, Les"


@pytest.mark.parametrize(
    "content, message",
    [
        (b"1|Toy Story (1995)|01-Jan-1995||http://x|0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n"
         b"2|GoldenEye (1995)|01-Jan-1995||http://x|0|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0|1|0\n",
         r"u\.item, line 2: expected 24 fields separated by '\|', found 23"),
        (b"1|A (1995)|01-Jan-1995||http://x|0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n"
         b"1|B (1995)|01-Jan-1995||http://x|0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n",
         r"movie ID 1 appears more than once"),
        (b"1,Toy Story (1995),Comedy\n", r"line 1: '1,Toy Story \(1995\),Comedy' is a movie, not a header"),
    ],
)
def test_malformed_movielens_layouts(tmp_path, content, message):
    path = tmp_path / "u.item"
    path.write_bytes(content)
    with pytest.raises(ParseError, match=message):
        read_movies(path)


def test_train_with_u_item_as_movies(ml100k, ml100k_folder, tmp_path):
    """The issue's command: train on a CSV of one's own with ML-100K's u.item as --movies."""
    frame = ml100k.subset(ml100k.user_idx < 200).to_frame()
    frame = frame[["user", "item", "rating", "timestamp"]]
    data = tmp_path / "combined.csv"
    frame.to_csv(data, index=False)
    out = tmp_path / "model"
    result = runner.invoke(app, ["train", "--data", str(data), "--movies", str(ml100k_folder / "u.item"),
                                 "--model", "pop", "--out", str(out)])
    assert result.exit_code == 0, (result.output, result.exception)
    bundle = load_bundle(out)
    items = bundle.model.items_
    star_wars = int(items.lookup([50])[0])
    assert bundle.catalog.label(star_wars) == "Star Wars (1977)"
    assert "Sci-Fi" in bundle.catalog.genres[star_wars]
    if 543 in set(frame["item"]):
        assert bundle.catalog.titles[int(items.lookup([543])[0])] == "Misérables, Les"


# -- ML-1M's movies.dat ----------------------------------------------------------------
ML1M_DAT = ("1::Toy Story (1995)::Animation|Children's|Comedy\n"
            "73::Misérables, Les (1995)::Drama|Musical\n"
            "3952::Contender, The (2000)::Drama|Thriller\n")


@pytest.mark.parametrize("name", ["movies.dat", "films.txt"])
@pytest.mark.parametrize("encoding", ["iso-8859-1", "utf-8"])
def test_movies_dat_in_latin1_or_utf8(tmp_path, name, encoding):
    """ML-1M's movies.dat is Latin-1 (ML-10M's is UTF-8); the layout is found by its '::'."""
    path = tmp_path / name
    path.write_bytes(ML1M_DAT.encode(encoding))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        frame = read_movies(path)
    assert data_warnings(caught) == []
    assert frame["item_id"].tolist() == [1, 73, 3952]
    assert frame["title"].tolist() == ["Toy Story", "Misérables, Les", "Contender, The"]
    assert frame["year"].tolist() == [1995, 1995, 2000]
    assert frame["genres"].tolist() == [["Animation", "Children's", "Comedy"], ["Drama", "Musical"],
                                        ["Drama", "Thriller"]]


def test_movies_dat_through_load_ratings(tmp_path):
    (tmp_path / "movies.dat").write_bytes(ML1M_DAT.encode("iso-8859-1"))
    (tmp_path / "ratings.csv").write_text("user,item,rating\n1,1,5\n1,73,4\n2,73,3\n2,3952,1\n")
    ds = load_ratings(tmp_path / "ratings.csv", movies=tmp_path / "movies.dat")
    assert ds.catalog.label(int(ds.items.lookup([73])[0])) == "Misérables, Les (1995)"


# -- a CSV/TSV with a header that is not UTF-8 -----------------------------------------
def test_latin1_csv_is_read_with_a_warning(tmp_path):
    path = tmp_path / "movies.csv"
    path.write_bytes("movieId,title,genres\n1,Toy Story (1995),Comedy\n2,Misérables (1995),Drama\n"
                     "3,Amélie (2001),Comedy|Romance\n".encode("latin-1"))
    with pytest.warns(DataWarning) as caught:
        frame = read_movies(path)
    messages = data_warnings(caught)
    assert len(messages) == 1
    assert "is not UTF-8 text; it was read as Latin-1 (Windows-1252), so line 3 reads '2,Misérables (1995),Drama'" \
        in messages[0]
    assert frame["title"].tolist() == ["Toy Story", "Misérables", "Amélie"]


def test_windows_1252_tsv_keeps_its_curly_quotes(tmp_path):
    path = tmp_path / "movies.tsv"
    path.write_bytes("id\ttitle\n10\tDon’t Look Now (1973)\n".encode("cp1252"))
    with pytest.warns(DataWarning, match="read as Latin-1"):
        frame = read_movies(path)
    assert frame["title"].tolist() == ["Don’t Look Now"]


def test_given_encoding_reads_without_a_warning(tmp_path):
    path = tmp_path / "movies.csv"
    path.write_bytes("movieId,title\n1,Misérables (1995)\n".encode("latin-1"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        frame = read_movies(path, encoding="latin-1")
    assert data_warnings(caught) == [] and frame["title"].tolist() == ["Misérables"]


def test_utf8_csv_with_a_byte_order_mark(tmp_path):
    path = tmp_path / "movies.csv"
    path.write_bytes("\ufeffmovieId,title\n1,Amélie (2001)\n".encode("utf-8"))
    assert read_movies(path)["title"].tolist() == ["Amélie"]


@pytest.mark.parametrize(
    "content, message",
    [
        # mostly UTF-8 with one Latin-1 byte: reading it as Latin-1 would garble "Amélie"
        ("movieId,title\n1,Amélie (2001)\n".encode("utf-8") + "2,Misérables (1995)\n".encode("latin-1"),
         r"line 3: byte 0xe9 is not valid utf-8 text"),
        # 0x81 is undefined in Windows-1252
        (b"movieId,title\n1,Caf\xe9 (2001)\n2,X\x81 (1999)\n", r"line 2: byte 0xe9 is not valid utf-8 text"),
        # a control character: binary, not text
        (b"movieId,title\n1,Caf\xe9 (2001)\n2,X\x01 (1999)\n", r"line 2: byte 0xe9 is not valid utf-8 text"),
        ("movieId,title\n1,A\n".encode("utf-16"), r"UTF-16"),
    ],
)
def test_undecodable_tables_keep_the_clear_error(tmp_path, content, message):
    path = tmp_path / "movies.csv"
    path.write_bytes(content)
    with pytest.raises(ParseError, match=message):
        read_movies(path)


def test_movies_csv_layout_is_unchanged(tmp_path):
    """MovieLens' movies.csv (a header, "|" genres) is not taken for a u.item."""
    path = tmp_path / "movies.csv"
    path.write_text("movieId,title,genres\n1,Toy Story (1995),Adventure|Animation|Children|Comedy|Fantasy\n")
    frame = read_movies(path)
    assert frame["genres"].tolist() == [["Adventure", "Animation", "Children", "Comedy", "Fantasy"]]
    assert frame["item_id"].tolist() == [1] and frame["title"].tolist() == ["Toy Story"]


def test_training_without_titles_says_once_that_ids_will_show(tmp_path):
    """`train --data` without --movies: one note on stderr (search and the page show IDs only);
    with --movies, none."""
    import subprocess
    import sys
    from pathlib import Path

    movierec = Path(sys.executable).with_name("movierec")
    ratings = tmp_path / "r.csv"
    ratings.write_text("user,item,rating\n1,10,4\n1,20,5\n2,10,3\n2,30,4\n3,20,2\n3,30,5\n")
    run = subprocess.run([str(movierec), "train", "--data", str(ratings), "--model", "pop", "--out",
                          str(tmp_path / "m")], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    notes = [line for line in run.stderr.splitlines() if "no titles" in line]
    assert len(notes) == 1 and "movie IDs only" in notes[0] and "--movies" in notes[0]
    movies = tmp_path / "m.csv"
    movies.write_text("movieId,title,genres\n10,Ten (1990),Drama\n20,Twenty (1991),Comedy\n30,Thirty (1992),Drama\n")
    run = subprocess.run([str(movierec), "train", "--data", str(ratings), "--movies", str(movies), "--model", "pop",
                          "--out", str(tmp_path / "m2")], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and "no titles" not in run.stderr, run.stderr
