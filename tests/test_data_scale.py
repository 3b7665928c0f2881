"""Reading ratings at scale: the numeric CSV reader (pyarrow's parallel parse in blocks,
int32 IDs first), the ID factorisation over parsed blocks (dense tables and the hash
fallback), the user-file fast path, and ml-25m / ml-32m folders.

Every test compares against the plain reference (pandas + `IdMap.from_values`) on small
files with the parser's block size shrunk, so that a few hundred lines cross many blocks.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import movierec.data.readers as readers
from movierec.data import load_ratings
from movierec.data.idmap import IdMap, factorize_chunks
from movierec.data.movielens import build_dataset, get_spec, parse_movielens, parse_user_file, read_ratings
from movierec.errors import ParseError

HEADER = "userId,movieId,rating,timestamp"


@pytest.fixture
def small_blocks(monkeypatch):
    """Parser blocks of 4 KiB: a 30 KiB file is parsed in several blocks (by several threads
    on a machine with 2+ CPUs), so its columns arrive in several chunks."""
    monkeypatch.setattr(readers, "BLOCK_BYTES", 4096)


def _ratings(n: int = 1500, seed: int = 0, users: int = 60, items: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "userId": rng.integers(1, users, n),
        "movieId": rng.choice(np.arange(1, 5 * items, 5), n),  # sparse IDs, as MovieLens' movies
        "rating": rng.integers(1, 11, n) / 2,
        "timestamp": 1_000_000_000 + rng.integers(0, 10**8, n),
    })


def _write(path, frame: pd.DataFrame, header: bool = True, sep: str = ",") -> None:
    frame.to_csv(path, index=False, header=header, sep=sep)


def _reference(frame: pd.DataFrame):
    users, user_idx = IdMap.from_values(frame["userId"].to_numpy(np.int64))
    items, item_idx = IdMap.from_values(frame["movieId"].to_numpy(np.int64))
    return users, user_idx, items, item_idx


def test_streamed_ml25m_file_equals_the_reference(tmp_path, small_blocks):
    frame = _ratings()
    path = tmp_path / "ratings.csv"
    _write(path, frame)
    assert path.stat().st_size > 5 * readers.BLOCK_BYTES
    ds = build_dataset("x", read_ratings(get_spec("ml-25m"), path))
    users, user_idx, items, item_idx = _reference(frame)
    assert ds.users == users and ds.items == items
    assert ds.users.raw_ids.dtype == np.int64 and ds.user_idx.dtype == np.int32
    np.testing.assert_array_equal(ds.user_idx, user_idx)
    np.testing.assert_array_equal(ds.item_idx, item_idx)
    np.testing.assert_array_equal(ds.rating, frame["rating"].to_numpy(np.float32))
    np.testing.assert_array_equal(ds.timestamp, frame["timestamp"].to_numpy(np.int64))


def test_ratings_table_gives_raw_ids_from_codes(tmp_path, small_blocks):
    frame = _ratings(300)
    path = tmp_path / "ratings.csv"
    _write(path, frame)
    table = read_ratings(get_spec("ml-25m"), path)
    assert table.user_codes is not None  # factorised as read: no raw int64 copy kept
    np.testing.assert_array_equal(table.user, frame["userId"].to_numpy())
    np.testing.assert_array_equal(table.item, frame["movieId"].to_numpy())


def test_ids_beyond_int32_and_negative_ids_are_read_as_int64(tmp_path, small_blocks):
    frame = _ratings(800)
    frame.loc[700, "userId"] = 3_000_000_000  # past int32: the int32 first try reads again
    frame.loc[10, "movieId"] = -7
    path = tmp_path / "ratings.csv"
    _write(path, frame)
    ds = build_dataset("x", read_ratings(get_spec("ml-25m"), path))
    users, user_idx, items, item_idx = _reference(frame)
    assert ds.users == users and ds.items == items
    assert 3_000_000_000 in ds.users and -7 in ds.items
    np.testing.assert_array_equal(ds.user_idx, user_idx)
    np.testing.assert_array_equal(ds.item_idx, item_idx)


@pytest.mark.parametrize("late", [2_147_483_648, 1_500_000_000_000, -5])  # past 2038, milliseconds, before 1970
def test_times_beyond_int32_are_read_as_int64(tmp_path, small_blocks, late):
    """Times are parsed as int32 first (MovieLens' Unix seconds fit); one that does not
    makes the reader parse again with int64, and every time keeps its value."""
    frame = _ratings(800)
    frame.loc[650, "timestamp"] = late
    path = tmp_path / "ratings.csv"
    _write(path, frame)
    for ds in (build_dataset("x", read_ratings(get_spec("ml-25m"), path)), load_ratings(path)):
        assert ds.timestamp.dtype == np.int64
        np.testing.assert_array_equal(ds.timestamp, frame["timestamp"].to_numpy(np.int64))


def test_quoted_numbers_still_read(tmp_path, small_blocks):
    frame = _ratings(600)
    path = tmp_path / "ratings.csv"
    text = path.write_text
    lines = [HEADER] + [f"{u},{i},{r},{t}" for u, i, r, t in frame.itertuples(index=False)]
    lines[500] = '"' + lines[500].replace(",", '","') + '"'  # every field of one line quoted
    text("\n".join(lines) + "\n")
    table = read_ratings(get_spec("ml-25m"), path)
    np.testing.assert_array_equal(table.user, frame["userId"].to_numpy())


@pytest.mark.parametrize("row", [5, 1100])  # in the first parsed block, in a later one
def test_errors_name_the_line_in_any_block_or_part(tmp_path, small_blocks, row):
    frame = _ratings()
    lines = [HEADER] + [f"{u},{i},{r},{t}" for u, i, r, t in frame.itertuples(index=False)]
    path = tmp_path / "ratings.csv"
    bad = list(lines)
    bad[row] = "7,8,9.5,1000000000"
    path.write_text("\n".join(bad) + "\n")
    with pytest.raises(ParseError, match=rf"ratings\.csv, line {row + 1}: rating 9\.5 is out of range"):
        read_ratings(get_spec("ml-25m"), path)
    bad = list(lines)
    bad[row] = "7,,4.0,1000000000"
    path.write_text("\n".join(bad) + "\n")
    with pytest.raises(ParseError, match=rf"ratings\.csv, line {row + 1}: field 2 is ''"):
        read_ratings(get_spec("ml-25m"), path)
    bad = list(lines)
    bad[row] = "7,8,4.0"
    path.write_text("\n".join(bad) + "\n")
    with pytest.raises(ParseError, match=rf"ratings\.csv, line {row + 1}: expected 4 fields"):
        read_ratings(get_spec("ml-25m"), path)


def test_header_only_file_has_no_data_rows(tmp_path):
    path = tmp_path / "ratings.csv"
    path.write_text(HEADER + "\n")
    with pytest.raises(ParseError, match="has a header but no data rows"):
        read_ratings(get_spec("ml-25m"), path)


# -- factorize_chunks: every way through it gives pandas' codes ---------------------------
def _check_factorized(chunks: list[np.ndarray]) -> None:
    codes, uniques = factorize_chunks(chunks)
    expected_codes, expected_uniques = pd.factorize(np.concatenate([c.astype(np.int64) for c in chunks]), sort=True)
    np.testing.assert_array_equal(codes, expected_codes)
    np.testing.assert_array_equal(uniques, expected_uniques)
    assert codes.dtype == np.int32 and uniques.dtype == np.int64


# IDs from a few ranges and widths, so that every path comes up: contiguous and gapped dense
# tables, negative IDs (a shifted table), IDs past int32 in a narrow range, sparse IDs (hashing)
@settings(max_examples=150, deadline=None)
@given(low=st.sampled_from([0, 1, -40, 3_000_000_000]), width=st.sampled_from([3, 60, 5_000_000]),
       chunks=st.lists(st.lists(st.integers(0, 10**9), max_size=40), min_size=1, max_size=6),
       dtype=st.sampled_from([np.int32, np.int64]))
def test_factorize_chunks_equals_pd_factorize(low, width, chunks, dtype):
    if low + width >= 2**31:
        dtype = np.int64
    arrays = [(low + np.array(c, dtype=np.int64) % width).astype(dtype) for c in chunks]
    if sum(len(a) for a in arrays):
        _check_factorized(arrays)


@pytest.mark.parametrize("ids", [
    np.arange(1, 40),  # every ID from 1 to 39 (MovieLens' users): code = ID - 1
    np.arange(5, 400, 7),  # gaps (MovieLens' movies): a lookup in the table
    np.array([3, 3, 1, 2, 2, 9]),
    np.array([-7, 5, -7, 100, 0]),  # negative IDs: the table is shifted
    np.array([3_000_000_004, 3_000_000_000, 3_000_000_002]),  # past int32, a narrow range: a shifted table
    np.array([2**31 - 1, 2**31 - 3, 2**31 - 2]),  # the top of int32
], ids=["contiguous", "gaps", "small", "negative", "int64", "int32-max"])
def test_factorize_chunks_dense_tables(ids):
    """Each table path on blocks of both widths, against pandas; pd.factorize never called."""
    shuffled = np.random.default_rng(1).permutation(np.repeat(ids, 3))
    widths = [np.int64] if np.abs(ids).max() >= 2**31 else [np.int32, np.int64]
    for dtype in widths:
        _check_factorized(np.array_split(shuffled.astype(dtype), 4))


def test_factorize_chunks_sparse_ids_take_the_hash_path(monkeypatch):
    """A highest ID far beyond the number of IDs (more than 2**20 apart) would need a huge
    table: pandas' hash table factorises them instead, with the same codes."""
    real, calls = pd.factorize, []
    monkeypatch.setattr(pd, "factorize", lambda *a, **k: calls.append(1) or real(*a, **k))
    _check_factorized([np.array([50_000_000, 7, 7], np.int32), np.array([12, 50_000_000, 3], np.int32)])
    assert len(calls) == 2  # the function's own call and the reference's
    calls.clear()
    _check_factorized([np.array([900_000, 7, 7], np.int32)])  # within 2**20: a table
    assert len(calls) == 1


@pytest.mark.parametrize("kind", ["gaps", "sparse", "negative", "int64"])
def test_ids_of_every_kind_read_from_a_file(tmp_path, small_blocks, kind):
    """The reader's codes over many parsed blocks equal the reference for each kind of IDs."""
    frame = _ratings()
    rng = np.random.default_rng(3)
    if kind == "gaps":
        frame["userId"] = frame["userId"] * 3
    elif kind == "sparse":
        frame["movieId"] = rng.choice([4, 9, 400_000_000, 2_000_000_000], len(frame))
    elif kind == "negative":
        frame["userId"] = frame["userId"] - 30
    else:
        frame["movieId"] = frame["movieId"] + 5_000_000_000
    path = tmp_path / "ratings.csv"
    _write(path, frame)
    ds = build_dataset("x", read_ratings(get_spec("ml-25m"), path))
    users, user_idx, items, item_idx = _reference(frame)
    assert ds.users == users and ds.items == items
    np.testing.assert_array_equal(ds.user_idx, user_idx)
    np.testing.assert_array_equal(ds.item_idx, item_idx)
    np.testing.assert_array_equal(ds.timestamp, frame["timestamp"].to_numpy(np.int64))


def test_read_arrays_are_writable_and_survive_the_pool_fallback(tmp_path, small_blocks, monkeypatch):
    """The arrays come from pyarrow's memory pool (jemalloc where built in, else the default
    pool): they are ordinary writable numpy arrays either way."""
    import pyarrow as pa

    frame = _ratings(400)
    path = tmp_path / "ratings.csv"
    _write(path, frame)
    tables = [read_ratings(get_spec("ml-25m"), path)]

    def no_jemalloc():
        raise NotImplementedError("jemalloc support is not enabled")

    monkeypatch.setattr(pa, "jemalloc_memory_pool", no_jemalloc)
    tables.append(read_ratings(get_spec("ml-25m"), path))
    for table in tables:
        for arr in (table.rating, table.timestamp, table.user_codes[0], table.item_codes[0]):
            assert arr.flags.writeable and arr.flags.c_contiguous
        np.testing.assert_array_equal(table.user, frame["userId"].to_numpy())
        np.testing.assert_array_equal(table.rating, frame["rating"].to_numpy(np.float32))
        table.rating[:3] = 1.0


@pytest.mark.parametrize("value, message", [
    ("nan", r"line 8: field 3 is 'nan', not a number"),
    ("NA", r"line 8: field 3 is 'NA', not a number"),
    ("inf", r"line 8: rating inf is out of range"),
])
def test_not_a_number_ratings_name_the_line(tmp_path, value, message):
    lines = [HEADER] + [f"{k},{k},4.0,1000000000" for k in range(1, 20)]
    lines[7] = f"8,8,{value},1000000000"
    path = tmp_path / "ratings.csv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ParseError, match=message):
        read_ratings(get_spec("ml-25m"), path)
    with pytest.raises(ParseError, match=r"line 8: the rating is empty" if value != "inf" else message):
        load_ratings(path)  # a user's file: NaN and NA go to the general reader, as before


# -- a user's own file: the fast path gives what the general reader gives ------------------
USER_FILES = {
    "header.csv": lambda f: f.to_csv(index=False),
    "renamed.csv": lambda f: f.rename(columns={"userId": "user_id", "movieId": "item"}).to_csv(index=False),
    "reordered.tsv": lambda f: f[["rating", "movieId", "timestamp", "userId"]].to_csv(index=False, sep="\t"),
    "no-time.csv": lambda f: f.drop(columns="timestamp").to_csv(index=False),
    "headerless.csv": lambda f: f.to_csv(index=False, header=False),
    "headerless3.tsv": lambda f: f.drop(columns="timestamp").to_csv(index=False, header=False, sep="\t"),
    "semicolon.csv": lambda f: f.to_csv(index=False, sep=";"),
}


@pytest.mark.parametrize("name", sorted(USER_FILES))
def test_user_file_fast_path_equals_general_reader(tmp_path, small_blocks, monkeypatch, name):
    frame = _ratings(900)
    path = tmp_path / name
    path.write_text(USER_FILES[name](frame))
    calls = []
    real = readers.read_numeric_ratings
    monkeypatch.setattr(readers, "read_numeric_ratings", lambda *a, **k: calls.append(1) or real(*a, **k))
    with warnings.catch_warnings(record=True) as fast_warnings:
        warnings.simplefilter("always")
        fast = load_ratings(path)
    assert calls, "the fast path was not taken"
    monkeypatch.setattr(readers, "_read_numeric_user_file", lambda *a, **k: None)
    with warnings.catch_warnings(record=True) as slow_warnings:
        warnings.simplefilter("always")
        slow = load_ratings(path)
    assert fast.fingerprint() == slow.fingerprint()
    assert fast.users == slow.users and fast.items == slow.items
    assert fast.has_timestamps == slow.has_timestamps and fast.rating_scale == slow.rating_scale
    assert [str(w.message) for w in fast_warnings] == [str(w.message) for w in slow_warnings]


@pytest.mark.parametrize("text, message", [
    ("user,item,rating\nalice,10,4\nbob,20,1\n", None),  # text IDs: the general reader
    ("user,item,rating\n5,10,4\n5,,1\n", r"line 3: the item ID is empty"),
    ("user,item,rating\n5,10,4\n6,20,-1\n", r"line 3: rating -1 is out of range"),
    ("user,item,rating,when\n5,10,4,2020-01-02\n6,20,1,2020-02-03\n", None),  # dates
])
def test_user_files_the_fast_path_hands_back(tmp_path, small_blocks, text, message):
    path = tmp_path / "r.csv"
    path.write_text(text)
    if message is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = parse_user_file(path)
        assert ds.n_ratings == 2
    else:
        with pytest.raises(ParseError, match=message):
            parse_user_file(path)


def test_user_file_rating_scale_is_that_of_its_float32_ratings(tmp_path, small_blocks, monkeypatch):
    """The fast path hands over the lowest and highest rating it saw while checking them;
    the scale must be what the float32 ratings give (the general reader's), not the
    float64 text values: 1.1 and 4.7 are not float32 numbers."""
    frame = _ratings()
    frame["rating"] = np.random.default_rng(5).choice([1.1, 2.3, 3.3, 4.7], len(frame))
    path = tmp_path / "r.csv"
    _write(path, frame)
    fast = load_ratings(path)
    monkeypatch.setattr(readers, "_read_numeric_user_file", lambda *a, **k: None)
    slow = load_ratings(path)
    assert fast.rating_scale == slow.rating_scale == (float(np.float32(1.1)), float(np.float32(4.7)))


def test_user_file_range_error_in_a_later_part(tmp_path, small_blocks):
    frame = _ratings()
    frame.loc[1200, "rating"] = 7.0
    path = tmp_path / "r.csv"
    _write(path, frame)
    with pytest.raises(ParseError, match=r"r\.csv, line 1202: rating 7 is out of range \(expected 0.5 to 5\)"):
        parse_user_file(path, rating_range=(0.5, 5))


# -- the encoding check reads in blocks ----------------------------------------------------
def test_encoding_check_across_blocks(tmp_path, monkeypatch):
    monkeypatch.setattr(readers, "BLOCK_BYTES", 64)
    lines = [f"{i},{i},4,1000000000" for i in range(1, 400)]
    lines[300] = "301,301,4,1000000000,Amélie"  # past the first 4 KiB read; 2 bytes in UTF-8
    path = tmp_path / "r.csv"
    explain = readers._explain_encoding
    monkeypatch.setattr(readers, "_explain_encoding", lambda *a: pytest.fail("a valid file took the error path"))
    for shift in range(70):  # the character at every place in a 64-byte block, its ends included
        path.write_bytes((("x" * shift) + "\n" + "\n".join(lines) + "\n").encode())
        readers.check_encoding(path, "utf-8")
    monkeypatch.setattr(readers, "_explain_encoding", explain)
    # a lead byte ending one block, ASCII blocks, then a continuation byte: not a character
    data = bytearray(("\n".join(lines) + "\n").encode("ascii", errors="replace").replace(b"?", b"e"))
    data[4096 + 64 * 3 - 1], data[4096 + 64 * 5] = 0xC3, 0xA9
    path.write_bytes(bytes(data))
    with pytest.raises(ParseError, match=r"byte 0xc3 is not valid utf-8"):
        readers.check_encoding(path, "utf-8")
    data = ("\n".join(lines) + "\n").encode().replace("é".encode(), b"\xe9")  # Latin-1 byte
    path.write_bytes(data)
    with pytest.raises(ParseError, match=r"r\.csv, line 301: byte 0xe9 is not valid utf-8"):
        readers.check_encoding(path, "utf-8")


def test_bad_byte_past_the_head_of_a_numeric_user_file(tmp_path):
    """The fast path checks only the head's encoding; a bad byte further on hands the file to
    the general reader, which names the byte's line as before."""
    lines = ["user,item,rating,timestamp"] + [f"{i},{i % 50},4,1000000000" for i in range(1, 8000)]
    path = tmp_path / "r.csv"
    data = ("\n".join(lines) + "\n").encode().replace(b"\n7000,0,4,", b"\n7000,0,4\xe9,", 1)
    path.write_bytes(data)
    assert data.index(b"\xe9") > 1 << 16
    with pytest.raises(ParseError, match=r"r\.csv, line 7001: byte 0xe9 is not valid utf-8"):
        load_ratings(path)


# -- ml-25m and ml-32m folders in their own format -----------------------------------------
MOVIES_CSV = (
    'movieId,title,genres\n'
    '1,Toy Story (1995),Adventure|Animation|Children|Comedy|Fantasy\n'
    '11,"American President, The (1995)",Comedy|Drama|Romance\n'
    '21,"Life Is Beautiful (La Vita è bella) (1997)",Comedy|Drama|Romance|War\n'
    '31,"Good, the Bad and the Ugly, The (Buono, il brutto, il cattivo, Il) (1966)",Action|Adventure|Western\n'
    '41,Some Unrated Film (2019),(no genres listed)\n'
    '51,"Title, Without Year",Drama\n'
)


@pytest.mark.parametrize("name", ["ml-25m", "ml-32m"])
def test_movielens_csv_folder_parses(tmp_path, name):
    folder = tmp_path / name
    folder.mkdir()
    frame = _ratings(500, items=10)
    frame["movieId"] = np.array([1, 11, 21, 31, 41, 51])[np.arange(500) % 6]
    _write(folder / "ratings.csv", frame)
    (folder / "movies.csv").write_text(MOVIES_CSV, encoding="utf-8")
    ds = parse_movielens(get_spec(name), folder)
    assert ds.name == name and ds.n_ratings == 500 and ds.rating_scale == (0.5, 5.0)
    cat = ds.catalog
    label = {int(m): cat.label(ds.items.index_of(m)) for m in ds.items.raw_ids}
    assert label[11] == "American President, The (1995)"
    assert label[21] == "Life Is Beautiful (La Vita è bella) (1997)"
    assert label[31] == "Good, the Bad and the Ugly, The (Buono, il brutto, il cattivo, Il) (1966)"
    assert label[51] == "Title, Without Year"
    assert cat.genres[ds.items.index_of(41)] == []  # "(no genres listed)"
    assert cat.genres[ds.items.index_of(31)] == ["Action", "Adventure", "Western"]
    assert "(no genres listed)" not in cat.genre_names
    np.testing.assert_array_equal(ds.rating, frame["rating"].to_numpy(np.float32))


def test_movielens_ratings_header_is_checked(tmp_path):
    folder = tmp_path / "ml-32m"
    folder.mkdir()
    (folder / "ratings.csv").write_text("user,movie,rating,timestamp\n1,1,4.0,1\n")
    (folder / "movies.csv").write_text(MOVIES_CSV)
    with pytest.raises(ParseError, match=r"line 1: expected the header 'userId,movieId,rating,timestamp'"):
        parse_movielens(get_spec("ml-32m"), folder)
