"""Bad input: a typed error with one sentence naming the file (and line), in the library,
through the CLI runner, and through the real `movierec` console script (no traceback)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import mirror_dir
from fixtures.movielens_files import write_csv_family, write_ml1m, write_ml10m
from movierec.cli import app
from movierec.data import load_movielens, load_ratings
from movierec.data.movielens import get_spec, parse_movielens
from movierec.errors import DatasetError, FetchError, MovierecError, ParseError

MOVIEREC = Path(sys.executable).with_name("movierec")
runner = CliRunner()


def one_sentence(message: str) -> None:
    assert message and "\n" not in message and "Traceback" not in message
    assert message.rstrip().endswith(".")


# -- a user's own files: (content, options, message regex with the line) --------------------
USER_CASES = {
    "short-line": (b"user,item,rating\n1,10,4\n2,20\n", {}, r"line 3: expected 3 fields separated by ',', found 2"),
    "long-line": (b"user,item,rating\n1,10,4\n2,20,3,9\n", {}, r"line 3: the number of fields differs"),
    "headerless-short": (b"1,10,4\n2,20\n", {}, r"line 2: expected 3 fields separated by ',', found 2"),
    "headerless-too-many": (b"1,10,4,5,6\n", {}, r"line 1: expected 3 or 4 fields"),
    "non-numeric-rating": (b"user,item,rating\n1,10,4\n2,20,good\n", {}, r"line 3: the rating is 'good', not a number"),
    "headerless-non-numeric": (b"1,10,4\n2,20,abc\n", {}, r"line 2: field 3 is 'abc', not a number"),
    "empty-rating": (b"user,item,rating\n1,10,4\n2,20,\n", {}, r"line 3: the rating is empty"),
    "empty-user": (b"user,item,rating\n1,10,4\n,20,3\n", {}, r"line 3: the user ID is empty"),
    "out-of-range": (b"user,item,rating\n1,10,4\n2,20,9\n", {"rating_range": (1, 5)}, r"line 3: rating 9 is out of range \(expected 1 to 5\)"),
    "headerless-out-of-range": (b"1,10,0\n", {"rating_range": (1, 5)}, r"line 1: rating 0 is out of range"),
    "negative": (b"user,item,rating\n1,10,-1\n", {}, r"line 2: rating -1 is out of range"),
    "empty-file": (b"", {}, r"is empty"),
    "header-only": (b"user,item,rating,timestamp\n", {}, r"has a header but no data rows"),
    "unknown-columns": (b"foo,bar,baz\n1,2,3\n", {}, r"cannot tell which column holds the user"),
    "missing-given-column": (b"user,item,rating\n1,2,3\n", {"rating_col": "stars"}, r"has no column 'stars'"),
    "latin1": ("user,item,rating\n1,10,4\n2,café,3\n".encode("latin-1"), {}, r"line 3: byte 0xe9 is not valid utf-8"),
    "utf16-bom": ("user,item,rating\n1,10,4\n".encode("utf-16"), {}, r"UTF-16"),
    "utf16-no-bom": ("user,item,rating\n1,10,4\n".encode("utf-16-le"), {}, r"UTF-16"),
    "bad-date": (b"user,item,rating,date\n1,10,4,2020-01-01\n1,11,4,someday\n", {}, r"timestamp 'someday' \(row 2\)"),
}


@pytest.mark.parametrize("case", list(USER_CASES))
def test_user_file_errors(tmp_path, case):
    content, options, message = USER_CASES[case]
    path = tmp_path / f"{case}.csv"
    path.write_bytes(content)
    with pytest.raises(ParseError, match=message) as info:
        load_ratings(path, **options)
    assert str(path) in str(info.value)
    one_sentence(str(info.value))


def test_missing_user_file(tmp_path):
    with pytest.raises(ParseError, match="does not exist"):
        load_ratings(tmp_path / "nope.csv")


def test_folder_instead_of_file(tmp_path):
    with pytest.raises(ParseError, match="is a folder"):
        load_ratings(tmp_path)


def test_corrupt_parquet(tmp_path):
    path = tmp_path / "r.parquet"
    path.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(ParseError, match="not a readable Parquet file"):
        load_ratings(path)


# -- MovieLens formats -------------------------------------------------------------------
def _ml100k_copy(tmp_path: Path) -> Path:
    return Path(shutil.copytree(load_movielens_folder(), tmp_path / "ml-100k"))


def load_movielens_folder() -> Path:
    from movierec.data.fetch import fetch

    return fetch("ml-100k")


def _append(path: Path, data: bytes) -> None:
    path.write_bytes(path.read_bytes() + data)


ML_CASES = {
    # name: (spec, writer(tmp) -> folder, error type, regex)
    "100k-columns": ("ml-100k", lambda t: _mut100k(t, "u.data", b"1\t2\t3\n"), ParseError,
                     r"u\.data, line 100001: expected 4 fields separated by '\\t', found 3"),
    "100k-non-numeric": ("ml-100k", lambda t: _mut100k(t, "u.data", b"1\t2\tx\t5\n"), ParseError,
                         r"u\.data, line 100001: field 3 is 'x', not a number"),
    "100k-out-of-range": ("ml-100k", lambda t: _mut100k(t, "u.data", b"1\t2\t6\t5\n"), ParseError,
                          r"u\.data, line 100001: rating 6 is out of range \(expected 1 to 5\)"),
    "100k-zero-rating": ("ml-100k", lambda t: _mut100k(t, "u.data", b"1\t2\t0\t5\n"), ParseError,
                         r"line 100001: rating 0 is out of range"),
    "100k-item-columns": ("ml-100k", lambda t: _mut100k(t, "u.item", b"9999|x|y\n"), ParseError,
                          r"u\.item, line 1683: expected 24 fields"),
    "100k-user-columns": ("ml-100k", lambda t: _mut100k(t, "u.user", b"1|2|3|4|5|6|7\n"), ParseError,
                          r"u\.user, line 944: expected 5 fields"),
    "100k-no-genres": ("ml-100k", lambda t: _del100k(t, "u.genre"), ParseError, r"u\.genre does not exist"),
    "100k-no-ratings": ("ml-100k", lambda t: _del100k(t, "u.data"), ParseError, r"u\.data does not exist"),
    "1m-columns": ("ml-1m", lambda t: _mut(write_ml1m(t / "ml-1m"), "ratings.dat", b"1::2::3\n"), ParseError,
                   r"ratings\.dat, line 8: expected 4 fields separated by '::', found 3"),
    "1m-out-of-range": ("ml-1m", lambda t: _mut(write_ml1m(t / "ml-1m"), "ratings.dat", b"1::2::0::5\n"), ParseError,
                        r"ratings\.dat, line 8: rating 0 is out of range"),
    "1m-movie-columns": ("ml-1m", lambda t: _mut(write_ml1m(t / "ml-1m"), "movies.dat", b"12::Title only\n"),
                         ParseError, r"movies\.dat, line 6: expected 3 fields"),
    "1m-users-columns": ("ml-1m", lambda t: _mut(write_ml1m(t / "ml-1m"), "users.dat", b"4::M\n"),
                         ParseError, r"users\.dat, line 4: expected 5 fields separated by '::'"),
    "10m-encoding": ("ml-10m", lambda t: _mut(write_ml10m(t / "ml-10M100K"), "movies.dat", "5::Café (1999)::Drama\n".encode("latin-1")),
                     ParseError, r"movies\.dat, line 4: byte 0xe9 is not valid utf-8"),
    "10m-half-star-out-of-range": ("ml-10m", lambda t: _mut(write_ml10m(t / "ml-10M100K"), "ratings.dat", b"1::2::5.5::9\n"),
                                   ParseError, r"rating 5\.5 is out of range \(expected 0\.5 to 5\)"),
    "csv-movies-latin1": ("ml-25m", lambda t: _rewrite(write_csv_family(t / "ml-25m"), "movies.csv", "latin-1"),
                          ParseError, r"movies\.csv, line 5: byte 0xe9 is not valid utf-8"),
    "csv-header": ("ml-25m", lambda t: _replace(write_csv_family(t / "ml-25m"), "ratings.csv", b"userId", b"user"),
                   ParseError, r"ratings\.csv, line 1: expected the header"),
    "csv-header-only": ("ml-25m", lambda t: _set(write_csv_family(t / "ml-25m"), "ratings.csv", b"userId,movieId,rating,timestamp\n"),
                        ParseError, r"has a header but no data rows"),
    "csv-empty": ("ml-32m", lambda t: _set(write_csv_family(t / "ml-32m"), "ratings.csv", b""), ParseError, r"is empty"),
    "csv-non-numeric": ("ml-25m", lambda t: _mut(write_csv_family(t / "ml-25m"), "ratings.csv", b"1,2,x,3\n"),
                        ParseError, r"ratings\.csv, line 7: field 3 is 'x', not a number"),
    "csv-movies-columns": ("ml-25m", lambda t: _set(write_csv_family(t / "ml-25m"), "movies.csv", b"movieId,title\n1,A (1990)\n"),
                           ParseError, r"movies\.csv lacks the column\(s\) genres"),
}


def _mut100k(tmp: Path, fname: str, data: bytes) -> Path:
    folder = _ml100k_copy(tmp)
    _append(folder / fname, data)
    return folder


def _del100k(tmp: Path, fname: str) -> Path:
    folder = _ml100k_copy(tmp)
    (folder / fname).unlink()
    return folder


def _mut(folder: Path, fname: str, data: bytes) -> Path:
    _append(folder / fname, data)
    return folder


def _set(folder: Path, fname: str, data: bytes) -> Path:
    (folder / fname).write_bytes(data)
    return folder


def _replace(folder: Path, fname: str, old: bytes, new: bytes) -> Path:
    path = folder / fname
    path.write_bytes(path.read_bytes().replace(old, new, 1))
    return folder


def _rewrite(folder: Path, fname: str, encoding: str) -> Path:
    path = folder / fname
    path.write_bytes(path.read_text(encoding="utf-8").encode(encoding))
    return folder


@pytest.mark.parametrize("case", list(ML_CASES))
def test_movielens_format_errors(tmp_path, case):
    name, build, error, message = ML_CASES[case]
    folder = build(tmp_path)
    with pytest.raises(error, match=message) as info:
        parse_movielens(get_spec(name), folder)
    assert str(folder) in str(info.value)
    one_sentence(str(info.value))


def test_unknown_dataset_name():
    with pytest.raises(DatasetError, match="Unknown dataset 'movielens'; known datasets: ml-100k"):
        load_movielens("movielens")


# -- through the CLI runner -------------------------------------------------------------------
@pytest.fixture
def bad_files(tmp_path) -> dict[str, Path]:
    files = {
        "columns.csv": b"user,item,rating\n1,10,4\n2,20\n",
        "rating.csv": b"user,item,rating\n1,10,4\n2,20,good\n",
        "range.csv": b"user,item,rating\n1,10,4\n2,20,9\n",
        "empty.csv": b"",
        "header.csv": b"user,item,rating\n",
        "utf16.csv": "user,item,rating\n1,10,4\n".encode("utf-16"),
        "latin1.csv": "user,item,rating\n1,10,4\n2,café,3\n".encode("latin-1"),
    }
    out = {}
    for name, data in files.items():
        out[name] = tmp_path / name
        out[name].write_bytes(data)
    out["missing.csv"] = tmp_path / "missing.csv"
    return out


@pytest.fixture
def corrupt_mirror(tmp_path) -> Path:
    """A mirror folder with a truncated ml-100k.zip and a corrupt ml-1m.zip."""
    folder = tmp_path / "badmirror"
    folder.mkdir()
    data = (mirror_dir() / "ml-100k.zip").read_bytes()
    (folder / "ml-100k.zip").write_bytes(data[: len(data) // 3])
    with zipfile.ZipFile(folder / "ml-1m.zip", "w") as zf:
        zf.writestr("ml-1m/ratings.dat", "1::1::5::1\n")
    return folder


CLI_CASES = [
    ("columns.csv", [], r"columns\.csv, line 3: expected 3 fields"),
    ("rating.csv", [], r"rating\.csv, line 3: the rating is 'good'"),
    ("range.csv", ["--rating-range", "1,5"], r"range\.csv, line 3: rating 9 is out of range"),
    ("empty.csv", [], r"empty\.csv is empty"),
    ("header.csv", [], r"header\.csv has a header but no data rows"),
    ("utf16.csv", [], r"utf16\.csv is UTF-16 encoded"),
    ("latin1.csv", [], r"latin1\.csv, line 3: byte 0xe9"),
    ("missing.csv", [], r"missing\.csv does not exist"),
]


@pytest.mark.parametrize("fname, extra, message", CLI_CASES)
def test_cli_runner_bad_files(bad_files, fname, extra, message):
    result = runner.invoke(app, ["data", "describe", "--data", str(bad_files[fname]), *extra])
    assert result.exit_code != 0
    assert isinstance(result.exception, ParseError)  # main() turns it into "error: ..." + exit 1
    assert re.search(message, str(result.exception))
    one_sentence(str(result.exception))


def test_cli_runner_unknown_dataset():
    result = runner.invoke(app, ["data", "describe", "ml-5m"])
    assert result.exit_code != 0 and isinstance(result.exception, DatasetError)
    assert "Unknown dataset 'ml-5m'" in str(result.exception)


@pytest.mark.parametrize("name, message", [("ml-100k", "not a valid zip archive"), ("ml-1m", "lacks movies.dat")])
def test_cli_runner_corrupt_archives(tmp_path, corrupt_mirror, name, message):
    env = {"MOVIEREC_MIRROR": str(corrupt_mirror), "MOVIEREC_CACHE": str(tmp_path / "cache")}
    result = runner.invoke(app, ["data", "describe", name], env=env)
    assert result.exit_code != 0 and isinstance(result.exception, FetchError)
    assert message in str(result.exception)
    cache = tmp_path / "cache"  # nothing but the (hidden) fetch lock file may remain
    assert not cache.exists() or [p for p in cache.iterdir() if not p.name.endswith(".lock")] == []


def test_cli_runner_bad_rating_range(bad_files):
    result = runner.invoke(app, ["data", "describe", "--data", str(bad_files["range.csv"]), "--rating-range", "5,1"])
    assert result.exit_code != 0 and isinstance(result.exception, MovierecError)
    assert "low < high" in str(result.exception)


# -- through the real console script: exit code, one sentence on stderr, no traceback -----------
def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([str(MOVIEREC), *args], capture_output=True, text=True, env=full_env, timeout=120)


def check_clean_failure(proc: subprocess.CompletedProcess, pattern: str) -> None:
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert re.search(pattern, lines[0]), lines[0]
    one_sentence(lines[0])


SCRIPT_CASES = {
    "columns": (lambda f, t, m: (["data", "describe", "--data", str(f["columns.csv"])], {}),
                r"columns\.csv, line 3: expected 3 fields"),
    "unknown-name": (lambda f, t, m: (["data", "describe", "ml-5m"], {}), r"Unknown dataset 'ml-5m'"),
    "truncated-zip": (lambda f, t, m: (["data", "fetch", "ml-100k"],
                                       {"MOVIEREC_MIRROR": str(m), "MOVIEREC_CACHE": str(t / "c")}),
                      r"not a valid zip archive"),
}


@pytest.mark.parametrize("case", list(SCRIPT_CASES))
def test_console_script_bad_inputs(bad_files, tmp_path, corrupt_mirror, case):
    build, pattern = SCRIPT_CASES[case]
    args, env = build(bad_files, tmp_path, corrupt_mirror)
    check_clean_failure(run_cli(*args, env=env), pattern)
