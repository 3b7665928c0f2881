"""Fast, strict readers for ratings tables.

The fast path hands the file to pyarrow; when it fails, a slow line-by-line pass finds the
first bad line so the error can name it. Every failure is a ParseError whose message names
the file (and the line where there is one).
"""

from __future__ import annotations

import io
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from movierec.errors import ConfigError, ParseError

# column name candidates for a user's own ratings file (lower-cased, without _ - or spaces)
USER_COLUMNS = ("user", "userid", "uid", "users", "customer", "customerid")
ITEM_COLUMNS = ("item", "itemid", "iid", "movie", "movieid", "mid", "film", "filmid", "items")
RATING_COLUMNS = ("rating", "ratings", "score", "stars", "value", "preference")
TIME_COLUMNS = ("timestamp", "time", "ts", "date", "datetime", "unixtime")


class DataWarning(UserWarning):
    """Something in a data file was ignored or guessed (e.g. a column that was not used)."""


class RatingsTable:
    """The columns of a ratings file, shape (n,) each, before they become a Dataset.

    `user` and `item` are the raw IDs. The numeric reader factorises integer IDs straight
    from its parsed blocks instead (`idmap.factorize_chunks`) and hands over `user_codes`
    and `item_codes` as (int32 codes, sorted int64 uniques), so no full int64 copy of the
    IDs is kept; `user` / `item` are then derived from them on demand. `rating` is float32 and
    `timestamp` int64 Unix seconds, or None when the file has no times. `rating_bounds`
    is (lowest, highest) of `rating` when the reader already knows it, else None.
    """

    def __init__(self, user: np.ndarray | None = None, item: np.ndarray | None = None,
                 rating: np.ndarray | None = None, timestamp: np.ndarray | None = None, *,
                 user_codes: tuple[np.ndarray, np.ndarray] | None = None,
                 item_codes: tuple[np.ndarray, np.ndarray] | None = None,
                 rating_bounds: tuple[float, float] | None = None) -> None:
        if (user is None) == (user_codes is None) or (item is None) == (item_codes is None) or rating is None:
            raise ValueError("RatingsTable takes ratings and either raw IDs or codes for users and for items")
        self._user, self._item = user, item
        self.user_codes, self.item_codes = user_codes, item_codes
        self.rating, self.timestamp = rating, timestamp
        self.rating_bounds = rating_bounds

    @property
    def user(self) -> np.ndarray:
        """Raw user IDs, shape (n,)."""
        if self._user is not None:
            return self._user
        codes, uniques = self.user_codes  # type: ignore[misc]
        return uniques[codes]

    @property
    def item(self) -> np.ndarray:
        """Raw movie IDs, shape (n,)."""
        if self._item is not None:
            return self._item
        codes, uniques = self.item_codes  # type: ignore[misc]
        return uniques[codes]

    def __len__(self) -> int:
        return len(self.rating)


def check_readable(path: Path, what: str = "file") -> None:
    """Raise ParseError for a missing or empty file."""
    if not path.exists():
        raise ParseError(f"{what.capitalize()} {path} does not exist.")
    if path.is_dir():
        raise ParseError(f"{path} is a folder, not a {what}.")
    if path.stat().st_size == 0:
        raise ParseError(f"{path} is empty.")


#: bytes per read when a file's encoding is checked, and per block of pyarrow's CSV parser
#: (blocks are parsed in parallel; 16 MiB measured best on the 25M-row file)
BLOCK_BYTES = 16 << 20


def check_encoding(path: Path, encoding: str) -> None:
    """Raise ParseError naming the line of the first byte that is not valid `encoding`.

    Reads the file in blocks (pure-ASCII blocks need no decoding), so a large ratings file
    is never held in memory whole; the full read below runs only to word an error.
    """
    import codecs

    decoder = codecs.getincrementaldecoder(encoding)()
    with open(path, "rb") as fh:
        head = fh.read(4096)
        clean = not head.startswith((b"\xff\xfe", b"\xfe\xff")) and b"\x00" not in head
        block = head
        while clean and block:
            if not block.isascii() or decoder.getstate()[0]:  # ASCII after a whole character is valid
                try:
                    decoder.decode(block)
                except UnicodeDecodeError:
                    clean = False
                    break
            block = fh.read(BLOCK_BYTES)
        if clean:
            try:
                decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                clean = False
    if not clean:
        _explain_encoding(path, encoding)


def _head_decodes(path: Path, encoding: str, size: int = 1 << 16) -> bool:
    """Whether the first `size` bytes are `encoding` text with no byte-order mark or NUL byte
    (what `check_encoding` checks, for the start of the file only; a character cut by the
    end of the head counts as whole)."""
    import codecs

    with open(path, "rb") as fh:
        head = fh.read(size)
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in head[:4096]:
        return False
    try:
        codecs.getincrementaldecoder(encoding)().decode(head, final=False)
    except UnicodeDecodeError:
        return False
    return True


def _explain_encoding(path: Path, encoding: str) -> None:
    """check_encoding's error: raise ParseError for the first byte that is not `encoding`."""
    data = path.read_bytes()
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ParseError(f"{path} is UTF-16 encoded; save it as UTF-8 text.")
    if b"\x00" in data[:4096]:
        raise ParseError(f"{path} contains NUL bytes, so it is UTF-16 text or binary; save it as UTF-8 text.")
    try:
        data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ParseError(
            f"{path}, line {line}: byte 0x{data[exc.start]:02x} is not valid {encoding} text; "
            f"re-save the file as {encoding} text."
        ) from None


#: a valid UTF-8 multi-byte sequence (two to four bytes)
_UTF8_SEQUENCE = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}")
#: control characters that never appear in a text table (tab, LF and CR do)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def decode_8bit(data: bytes) -> str | None:
    """`data` (not valid UTF-8) decoded as Windows-1252 where that is safe, else None.

    Windows-1252 is Latin-1 plus printable punctuation (curly quotes, dashes, the euro
    sign) in 0x80-0x9f, so it reads Latin-1 files too. Safe means: the bytes hold no
    valid UTF-8 multi-byte sequence (else the file is UTF-8 with a few bad bytes, and
    reading it as Windows-1252 would garble its other accented letters), every byte is
    defined in Windows-1252, and no control character other than tab, CR or LF results.
    """
    if _UTF8_SEQUENCE.search(data):
        return None
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError:  # 0x81, 0x8d, 0x8f, 0x90, 0x9d are undefined in Windows-1252
        return None
    return None if _CONTROL.search(text) else text


def diagnose_table(path: Path, sep: str, n_cols: int, numeric: list[int], header: bool,
                   encoding: str = "utf-8") -> None:
    """Scan a delimited file line by line and raise ParseError at the first malformed line.

    Args:
        n_cols: expected number of fields on each line.
        numeric: positions of fields that must parse as numbers.
    """
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            if header and lineno == 1:
                continue
            try:
                line = raw.decode(encoding).rstrip("\r\n")
            except UnicodeDecodeError:
                raise ParseError(f"{path}, line {lineno}: not valid {encoding} text.") from None
            if not line.strip():
                continue
            fields = line.split(sep)
            if len(fields) != n_cols:
                raise ParseError(
                    f"{path}, line {lineno}: expected {n_cols} fields separated by {sep!r}, found {len(fields)}."
                )
            for pos in numeric:
                value = fields[pos].strip()
                try:
                    number = float(value)
                except ValueError:
                    number = float("nan")
                if number != number:  # not a number, or "nan"
                    raise ParseError(
                        f"{path}, line {lineno}: field {pos + 1} is {value!r}, not a number."
                    ) from None


def read_numeric_table(path: Path, sep: str, n_cols: int, header: bool,
                       dtypes: list[str]) -> list[np.ndarray]:
    """Read a purely numeric delimited file into one array per column.

    Multi-character separators (MovieLens' `::`) are rewritten in memory so that the
    fast parser can read them. (Ratings files of numbers only take the streaming
    `read_numeric_ratings`; this reads the rest, e.g. headerless files with text IDs.)
    """
    check_readable(path)
    source: str | io.BytesIO = str(path)
    if len(sep) > 1:
        source = io.BytesIO(path.read_bytes().replace(sep.encode(), b"\t"))
        fast_sep = "\t"
    else:
        fast_sep = sep
    names = [f"c{i}" for i in range(n_cols)]
    try:
        frame = pd.read_csv(
            source,
            sep=fast_sep,
            header=0 if header else None,
            names=names,
            dtype={n: t for n, t in zip(names, dtypes)},
            engine="pyarrow",
        )
    except Exception as exc:  # pyarrow raises several types; find the line, then report
        diagnose_table(path, sep, n_cols, list(range(n_cols)), header)
        raise ParseError(f"{path} could not be parsed: {str(exc).splitlines()[0]}") from None
    if frame.empty:
        raise ParseError(f"{path} has a header but no data rows.")
    cols = [frame[n].to_numpy() for n in names]
    first_line = 2 if header else 1
    for n, col in zip(names, cols):
        if col.dtype.kind == "f" and np.isnan(col).any():
            row = int(np.flatnonzero(np.isnan(col))[0])
            raise ParseError(f"{path}, line {row + first_line}: field {names.index(n) + 1} is empty.")
    return cols


class NotNumeric(Exception):
    """`read_numeric_ratings(strict=False)` could not read a file as typed numbers (text IDs,
    dates, empty fields ...): the caller reads it the general way instead."""


def read_numeric_ratings(path: Path, sep: str, header: bool, dtypes: list[str],
                         roles: tuple[int, int, int, int | None],
                         rating_range: tuple[float | None, float | None], *,
                         encoding: str = "utf-8", strict: bool = True) -> RatingsTable:
    """Read a ratings file of numbers only with pyarrow's multithreaded CSV parser.

    The whole file is parsed at once into typed columns (pyarrow cuts it into blocks of
    BLOCK_BYTES and parses them on every CPU, the slow part). Then a few threads turn the
    user and movie IDs into int32 codes (`idmap.factorize_chunks`: a dense presence table
    for MovieLens-like integer IDs, no hashing), check the ratings and copy them into one
    float32 array, and copy the times into one int64 array, freeing each parsed column as
    it goes. Every array is written once, into memory from pyarrow's pool (`_memory_pool`).
    IDs and times are parsed as int32 and without quoting first; a file that needs int64
    IDs or times, or has quoted numbers, is read again with both. Lines are numbered from
    the top of the file.

    Args:
        path: the file (multi-character separators such as `::` are rewritten in memory).
        sep: the field separator.
        header: whether the first line is a header (skipped).
        dtypes: one of "int64", "int32", "float32", "float64" per field of a line.
        roles: positions of the user, movie, rating and time (None: no time) fields.
        rating_range: (low, high) for `check_rating_range`; None for no bound.
        strict: True (a MovieLens layout) raises ParseError naming the line for anything
            that is not a number; False raises NotNumeric instead, for a caller that falls
            back to a general reader (text IDs, dates, empty fields).

    Raises:
        ParseError: a malformed line, an empty field, a rating out of range (naming the
            line), or a file with no data rows.
        NotNumeric: only with strict=False, as said above.
    """
    import pyarrow as pa

    from movierec.data.idmap import factorize_chunks

    check_readable(path)
    data: bytes | None = None
    fast_sep = sep
    if len(sep) > 1:
        data = path.read_bytes().replace(sep.encode(), b"\t")
        fast_sep = "\t"
    names = [f"c{i}" for i in range(len(dtypes))]
    first_line = 2 if header else 1
    pool = _memory_pool()
    # first try: IDs and Unix-second times as int32 (half the bytes to move; times are
    # widened to int64 in their one copy) and no quoting (pyarrow's faster parse); a file
    # that needs either (IDs or times beyond int32, quoted numbers) is read again
    narrow = [("int32" if k in (*roles[:2], roles[3]) and t == "int64" else t) for k, t in enumerate(dtypes)]
    table = error = None
    for types, quoted in ((narrow, False), (dtypes, True)):
        try:
            table, error = _parse_csv(path, data, names, fast_sep, header, types, encoding, quoted, pool), None
            break
        except pa.ArrowInvalid as exc:
            if "Empty CSV file" in str(exc):  # nothing after the header: no rows, not an error
                break
            error = exc
        except (pa.ArrowException, UnicodeDecodeError) as exc:  # the file's fault; anything else rises as it is
            error = exc
            break
    data = None
    if error is not None:
        if not strict:
            raise NotNumeric(str(error)) from None
        diagnose_table(path, sep, len(names), list(range(len(names))), header, encoding)
        raise ParseError(f"{path} could not be parsed: {str(error).splitlines()[0]}") from None
    if table is None or not table.num_rows:
        raise ParseError(f"{path} has a header but no data rows." if header else f"{path} has no data rows.")
    n = table.num_rows
    nulls = [_first_null(table.column(pos)) for pos in range(len(names))]
    chunks = [[_as_numpy(c) for c in table.column(pos).chunks if len(c)] for pos in range(len(names))]
    del table  # each parsed column now lives in `chunks` only, until its copy is made
    u_pos, i_pos, r_pos, t_pos = roles

    def empty(size: int, dtype: type) -> np.ndarray:
        return _pool_empty(size, dtype, pool)

    def codes(pos: int) -> tuple[np.ndarray, np.ndarray]:
        out = factorize_chunks(chunks[pos], empty=empty)
        chunks[pos] = []
        return out

    def ratings() -> tuple[np.ndarray, int | None, tuple[int, float] | None, tuple[float, float]]:
        first_nan, first_bad, bounds = _rating_problems(chunks[r_pos], *rating_range)  # on the parsed values
        out = empty(n, np.float32)
        np.concatenate(chunks[r_pos], out=out, casting="same_kind")
        chunks[r_pos] = []
        return out, first_nan, first_bad, bounds

    def times() -> tuple[np.ndarray | None, int | None]:
        if t_pos is None:
            return None, None
        first_nan = _first_nan(chunks[t_pos]) if chunks[t_pos][0].dtype.kind == "f" else None
        out = empty(n, np.int64)
        np.concatenate(chunks[t_pos], out=out, casting="unsafe")  # float seconds are truncated
        chunks[t_pos] = []
        return out, first_nan

    if any(row is not None for row in nulls):  # refused below: only an earlier NaN can change the line
        for pos in (r_pos, t_pos):
            if pos is not None and chunks[pos][0].dtype.kind == "f":
                nulls[pos] = _earliest(nulls[pos], _first_nan(chunks[pos]))
    else:
        user_codes, item_codes, (timestamp, time_nan), (rating, rating_nan, first_bad, bounds) = _run_all(
            [lambda: codes(u_pos), lambda: codes(i_pos), times, ratings])
        nulls[r_pos] = rating_nan
        if t_pos is not None:
            nulls[t_pos] = time_nan
    missing = [(row, pos) for pos, row in enumerate(nulls) if row is not None]
    if missing:  # an empty field, or a NaN ("nan", which pyarrow used to read as empty)
        row, pos = min(missing)
        if not strict:
            raise NotNumeric(f"field {pos + 1} has empty values")
        diagnose_table(path, sep, len(names), list(range(len(names))), header, encoding)
        raise ParseError(f"{path}, line {row + first_line}: field {pos + 1} is empty.")
    if first_bad is not None:
        row, value = first_bad
        check_rating_range(path, np.array([value]), *rating_range, first_line=first_line + row)
    return RatingsTable(rating=rating, timestamp=timestamp, user_codes=user_codes, item_codes=item_codes,
                        rating_bounds=bounds)


def _parse_csv(path: Path, data: bytes | None, names: list[str], sep: str, header: bool, dtypes: list[str],
               encoding: str, quoted: bool, pool):
    """The whole file (or `data`, its bytes with the separator rewritten) as a pyarrow Table
    with one column per name, of the given types. Only an empty field is a null: "NA" or
    "null" are not numbers, and "nan" parses as a float NaN (read_numeric_ratings reports it
    as an empty value)."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    source = pa.BufferReader(data) if data is not None else pa.OSFile(str(path))  # no decompression by name
    try:
        return pcsv.read_csv(
            source,
            read_options=pcsv.ReadOptions(column_names=names, skip_rows=1 if header else 0,
                                          block_size=BLOCK_BYTES, encoding=encoding, use_threads=True),
            parse_options=pcsv.ParseOptions(delimiter=sep, quote_char='"' if quoted else False),
            convert_options=pcsv.ConvertOptions(column_types={n: pa.type_for_alias(t) for n, t in zip(names, dtypes)},
                                                null_values=[""]),
            memory_pool=pool,
        )
    finally:
        source.close()


def _memory_pool():
    """pyarrow's jemalloc pool where the build has it, else its default pool.

    The parse and the final arrays take their memory from it. jemalloc hands pages it freed
    out again for a while and faults fresh ones in 4 KiB pages; numpy's large arrays get
    transparent huge pages, and mimalloc (pyarrow's default on Linux) returns freed pages
    quickly and faults them in again. Fresh pages are dear on a virtual machine: on the
    2-core benchmark machine, for the 25M-row file, the final arrays from numpy cost 0.6-0.7
    s more system time than from jemalloc, and the parse with mimalloc 0 to 1.5 s more.
    """
    import pyarrow as pa

    try:
        return pa.jemalloc_memory_pool()
    except (NotImplementedError, pa.ArrowException):
        return pa.default_memory_pool()


def _pool_empty(size: int, dtype: type, pool) -> np.ndarray:
    """An uninitialised, writable numpy array of `size` items whose memory comes from the
    pyarrow memory pool `pool` (freed when the array is)."""
    import pyarrow as pa

    dtype = np.dtype(dtype)
    buffer = pa.allocate_buffer(max(size * dtype.itemsize, 1), memory_pool=pool)
    return np.frombuffer(buffer, dtype=dtype, count=size)


def _run_all(tasks: list) -> list:
    """Call each of `tasks` (no arguments) and return their results in order, in threads
    when there are several CPUs (numpy releases the GIL in the copies and gathers)."""
    import os

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if cpus < 2 or len(tasks) < 2:
        return [task() for task in tasks]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(min(cpus, len(tasks), 4), thread_name_prefix="movierec-csv") as executor:
        futures = [executor.submit(task) for task in tasks]
        return [f.result() for f in futures]


def _as_numpy(column) -> np.ndarray:
    """A non-empty arrow array of ints or floats as a read-only numpy view of its values
    buffer (no copy; values under nulls are undefined)."""
    dtype = np.dtype(column.type.to_pandas_dtype())
    return np.frombuffer(column.buffers()[1], dtype=dtype, count=len(column), offset=column.offset * dtype.itemsize)


def _first_null(column) -> int | None:
    """The row of the first null of a pyarrow ChunkedArray, or None."""
    if not column.null_count:
        return None
    offset = 0
    for chunk in column.chunks:
        if chunk.null_count:
            return offset + int(np.flatnonzero(chunk.is_null().to_numpy(zero_copy_only=False))[0])
        offset += len(chunk)
    return None


def _first_nan(chunks: list[np.ndarray]) -> int | None:
    """The row of the first NaN in float `chunks` (one column, in order), or None."""
    offset = 0
    for chunk in chunks:
        if np.isnan(chunk.min()):  # NaN propagates through min
            return offset + int(np.flatnonzero(np.isnan(chunk))[0])
        offset += len(chunk)
    return None


def _earliest(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else min(a, b)


def _rating_problems(chunks: list[np.ndarray], low: float | None, high: float | None
                     ) -> tuple[int | None, tuple[int, float] | None, tuple[float, float]]:
    """(row of the first NaN rating, (row, value) of the first other rating that is not finite
    or lies outside [low, high], (lowest, highest) rating as float32 gives them): the first
    two None when there is none; one min and max per chunk unless a chunk holds a problem."""
    first_nan = first_bad = None
    offset = 0
    lows, highs = [], []
    for chunk in chunks:
        lo, hi = float(chunk.min()), float(chunk.max())  # NaN fails every test below
        lows.append(lo)
        highs.append(hi)
        if not (np.isfinite(lo) and np.isfinite(hi) and (low is None or lo >= low) and (high is None or hi <= high)):
            nan = np.isnan(chunk)
            if first_nan is None and nan.any():
                first_nan = offset + int(np.flatnonzero(nan)[0])
            bad = ~np.isfinite(chunk) & ~nan
            if low is not None:
                bad |= chunk < low
            if high is not None:
                bad |= chunk > high
            if first_bad is None and bad.any():
                row = int(np.flatnonzero(bad)[0])
                first_bad = (offset + row, float(chunk[row]))
        offset += len(chunk)
    # rounding to float32 keeps the order, so these are the min and max of the float32 ratings
    return first_nan, first_bad, (float(np.float32(min(lows))), float(np.float32(max(highs))))


def check_rating_range(path: Path, rating: np.ndarray, low: float | None, high: float | None,
                       first_line: int) -> None:
    """Raise ParseError at the first rating outside [low, high] or not finite."""
    bad = ~np.isfinite(rating)
    if low is not None:
        bad |= rating < low
    if high is not None:
        bad |= rating > high
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        if low is not None and high is not None:
            rng = f" (expected {low:g} to {high:g})"
        elif low is not None:
            rng = f" (ratings must be at least {low:g}; give rating_range for another scale)"
        else:
            rng = f" (ratings must be at most {high:g})"
        raise ParseError(
            f"{path}, line {row + first_line}: rating {rating[row]:g} is out of range{rng}."
        )


def check_scale(rating_range: object) -> tuple[float, float]:
    """A rating range as (low, high) floats.

    Raises:
        ConfigError: unless it is two finite numbers with low < high.
    """
    try:
        low, high = (float(v) for v in rating_range)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise ConfigError(f"rating_range takes two numbers LOW,HIGH such as 1,5; got {rating_range!r}.") from None
    if not (np.isfinite(low) and np.isfinite(high) and low < high):
        raise ConfigError(f"rating_range needs two finite numbers with LOW < HIGH; got {low:g},{high:g}.")
    return low, high


def _norm(name: str) -> str:
    return re.sub(r"[\s_\-]", "", str(name).lower())


def _find_column(columns: list[str], given: str | None, candidates: tuple[str, ...], role: str,
                 path: Path, required: bool = True) -> str | None:
    if given is not None:
        if given not in columns:
            raise ParseError(f"{path} has no column {given!r} (columns: {', '.join(map(str, columns))}).")
        return given
    normed = {_norm(c): c for c in columns}
    for cand in candidates:
        if cand in normed:
            return normed[cand]
    if required:
        raise ParseError(
            f"{path}: cannot tell which column holds the {role} (columns: {', '.join(map(str, columns))}); "
            f"name it with {role}_col."
        )
    return None


#: separators tried, in order of preference, when a text file's separator is not given
SEPARATORS = ("::", "\t", ",", ";", "|")


def sniff_separator(first_line: str, default: str) -> str:
    """The separator that splits the first line into the most fields (at least 2), else `default`.

    Lets a semicolon- or tab-separated file named `.csv` read without naming its separator.
    """
    line = first_line.rstrip("\r\n")
    best, best_n = default, len(line.split(default)) if default else 1
    for cand in SEPARATORS:
        n = len(line.split(cand))
        if n > best_n and n >= 2:
            best, best_n = cand, n
    return best


def _looks_headerless(first_line: str, sep: str) -> bool:
    fields = [f.strip() for f in first_line.split(sep)]
    try:
        [float(f) for f in fields[:3]]
        return True
    except ValueError:
        return False


def detect_format(path: Path) -> str:
    """'parquet', 'tsv', 'csv' or 'dat' from the suffix and first line."""
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return "parquet"
    with open(path, "rb") as fh:
        first = fh.readline().decode("utf-8", errors="replace")
    if "::" in first:
        return "dat"
    if "\t" in first:
        return "tsv"
    return "csv"


def _timestamps_to_seconds(values: pd.Series, path: Path) -> np.ndarray:
    if values.dtype.kind in "iu":
        return values.to_numpy(np.int64)
    if values.dtype.kind == "f":
        if values.isna().any():
            raise ParseError(f"{path}: the timestamp column has empty values.")
        return values.to_numpy().astype(np.int64)
    if values.dtype.kind == "M":
        return (values.astype("datetime64[s]").astype(np.int64)).to_numpy()
    parsed = pd.to_datetime(values, errors="coerce", utc=True, format="mixed")
    if parsed.isna().any():
        row = int(np.flatnonzero(parsed.isna().to_numpy())[0])
        raise ParseError(f"{path}: timestamp {values.iloc[row]!r} (row {row + 1}) is not a date or number.")
    return (parsed.astype("datetime64[s, UTC]").astype(np.int64)).to_numpy()


def read_user_ratings(
    path: str | Path,
    user_col: str | None = None,
    item_col: str | None = None,
    rating_col: str | None = None,
    time_col: str | None = None,
    sep: str | None = None,
    rating_range: tuple[float, float] | None = None,
    encoding: str = "utf-8",
) -> RatingsTable:
    """Read a user's own ratings file: CSV, TSV, `::`-separated, Parquet, or a folder of
    Parquet files (a partitioned dataset, see `parquet.read_parquet_folder`).

    Columns are found by name (user/userId/user_id, item/movieId, rating/score,
    timestamp/time/date) unless given. A file whose first line is numeric is read as
    headerless `user, item, rating[, timestamp]`. Ratings must be finite numbers,
    non-negative unless `rating_range` says otherwise; with `rating_range` (low, high)
    every rating must lie in [low, high].

    Raises:
        ConfigError: for a `rating_range` that is not two finite numbers, low < high.
        ParseError: for a missing, empty, undecodable or malformed file, or a rating
            outside the range (naming its line); for a folder without Parquet files, with
            files that disagree on a column or a file that is not readable Parquet.
    """
    path = Path(path)
    if rating_range is not None:
        rating_range = check_scale(rating_range)
    first_line = 2
    if path.is_dir():  # a folder of Parquet files (a partitioned dataset)
        from movierec.data.parquet import read_parquet_folder

        fmt, frame = "parquet", read_parquet_folder(path)
        if frame.empty:
            raise ParseError(f"{path}: its Parquet files hold no rows.")
    else:
        check_readable(path, "ratings file")
        fmt = detect_format(path)
        if fmt == "parquet":
            try:
                frame = pd.read_parquet(path)
            except Exception:
                raise ParseError(f"{path} is not a readable Parquet file.") from None
    if fmt != "parquet":
        # the whole file's encoding is checked before the general reader only: a file the fast
        # path reads is numbers after its header, so its start is all that needs a check here
        if not _head_decodes(path, encoding):
            check_encoding(path, encoding)
        with open(path, encoding=encoding) as fh:
            first = fh.readline()
        sep = sep or sniff_separator(first, {"dat": "::", "tsv": "\t", "csv": ","}[fmt])
        headerless = _looks_headerless(first, sep)
        n_fields = len(first.rstrip("\r\n").split(sep))
        fast = _read_numeric_user_file(path, sep, headerless, n_fields, (user_col, item_col, rating_col, time_col),
                                       rating_range if rating_range else (0.0, None), encoding)
        if fast is not None:
            return fast
        check_encoding(path, encoding)
        if headerless:
            if n_fields not in (3, 4):
                raise ParseError(
                    f"{path}, line 1: expected 3 or 4 fields (user, item, rating[, timestamp]), found {n_fields}."
                )
            cols = read_numeric_table(path, sep, n_fields, False, ["str", "str", "float64"] + ["float64"] * (n_fields - 3))
            frame = pd.DataFrame(dict(zip(["user", "item", "rating", "timestamp"], cols)))
            first_line = 1
        else:
            try:
                frame = pd.read_csv(path, sep=sep, engine="python" if len(sep) > 1 else "c",
                                    encoding=encoding, dtype=str, skipinitialspace=True)
            except pd.errors.ParserError as exc:
                match = re.search(r"line (\d+)", str(exc))
                where = f", line {match.group(1)}" if match else ""
                raise ParseError(f"{path}{where}: the number of fields differs from the header.") from None
            if frame.empty:
                raise ParseError(f"{path} has a header but no data rows.")
    columns = list(frame.columns)
    ucol = _find_column(columns, user_col, USER_COLUMNS, "user", path)
    icol = _find_column(columns, item_col, ITEM_COLUMNS, "item", path)
    rcol = _find_column(columns, rating_col, RATING_COLUMNS, "rating", path)
    tcol = _find_column(columns, time_col, TIME_COLUMNS, "time", path, required=False)
    if fmt != "parquet" and first_line == 2 and frame[[ucol, icol, rcol]].isna().to_numpy().any():
        # the parser pads short lines with NaN; name the first short line if there is one
        diagnose_table(path, sep, len(columns), [], header=True, encoding=encoding)
    for role, col in (("user", ucol), ("item", icol)):
        if frame[col].isna().any():
            row = int(np.flatnonzero(frame[col].isna().to_numpy())[0])
            raise ParseError(f"{path}, line {row + first_line}: the {role} ID is empty.")
    rating_raw = frame[rcol]
    rating = pd.to_numeric(rating_raw, errors="coerce").to_numpy(np.float64)
    if np.isnan(rating).any():
        row = int(np.flatnonzero(np.isnan(rating))[0])
        raw = rating_raw.iloc[row]
        shown = "empty" if pd.isna(raw) or not str(raw).strip() else f"{raw!r}, not a number"
        raise ParseError(f"{path}, line {row + first_line}: the rating is {shown}.")
    low, high = rating_range if rating_range else (0.0, None)
    check_rating_range(path, rating, low, high, first_line)
    if tcol is None and first_line == 2:
        tcol = _detect_time_column(frame, [c for c in columns if c not in (ucol, icol, rcol)], path)
    timestamp = None
    if tcol is not None:
        ts = frame[tcol]
        if ts.dtype == object or pd.api.types.is_string_dtype(ts):
            numeric = pd.to_numeric(ts, errors="coerce")
            ts = numeric if not numeric.isna().any() else ts
        timestamp = _timestamps_to_seconds(ts, path)
    return RatingsTable(
        user=_ids(frame[ucol]), item=_ids(frame[icol]), rating=rating.astype(np.float32), timestamp=timestamp
    )


def _read_numeric_user_file(path: Path, sep: str, headerless: bool, n_fields: int,
                            given: tuple[str | None, str | None, str | None, str | None],
                            rating_range: tuple[float | None, float | None], encoding: str) -> RatingsTable | None:
    """read_user_ratings' fast path: a file whose every column is a number and is used.

    Headerless `user, item, rating[, timestamp]` files, and files whose header names
    exactly a user, a movie, a rating and (optionally) a time column, stream through
    `read_numeric_ratings`: integer IDs, numeric ratings, integer Unix seconds. Anything
    else (text IDs, dates, empty fields, other columns to detect or warn about, a header
    the columns cannot be found in) returns None, and the general reader takes the file
    with the same result and errors it always had.
    """
    if headerless:
        if n_fields not in (3, 4):
            return None
        dtypes = ["int64", "int64", "float64"] + ["float64"] * (n_fields - 3)
        roles: tuple[int, int, int, int | None] = (0, 1, 2, 3 if n_fields == 4 else None)
    else:
        try:
            columns = list(pd.read_csv(path, sep=sep, nrows=0, encoding=encoding, skipinitialspace=True,
                                       engine="python" if len(sep) > 1 else "c").columns)
            found = [_find_column(columns, col, cands, role, path, required=role != "time")
                     for col, cands, role in zip(given, (USER_COLUMNS, ITEM_COLUMNS, RATING_COLUMNS, TIME_COLUMNS),
                                                 ("user", "item", "rating", "time"))]
        except (ParseError, ValueError, pd.errors.ParserError):
            return None  # the general reader words it
        used = [c for c in found if c is not None]
        if len(set(used)) != len(used) or set(used) != set(columns) or len(columns) != len(set(columns)):
            return None
        dtypes = ["int64"] * len(columns)
        dtypes[columns.index(found[2])] = "float64"
        pos = [columns.index(c) if c is not None else None for c in found]
        roles = (pos[0], pos[1], pos[2], pos[3])  # type: ignore[assignment]
    try:
        return read_numeric_ratings(path, sep, not headerless, dtypes, roles, rating_range, encoding=encoding,
                                    strict=False)
    except NotNumeric:
        return None


#: epoch seconds accepted for a time column found by its values: 1973-03-03 .. 2103-02-04
_EPOCH_RANGE = (1e8, 4.2e9)


def _looks_like_times(values: pd.Series) -> bool:
    """True when every value is a date/time text or a whole number of epoch seconds."""
    values = values.dropna()
    if values.empty:
        return False
    if values.dtype.kind == "M":
        return True
    numeric = pd.to_numeric(values, errors="coerce")
    if not numeric.isna().any():
        low, high = _EPOCH_RANGE
        return bool(((numeric >= low) & (numeric <= high) & (numeric == numeric.round())).all())
    text = values.astype(str).str.strip()
    # a date has digits and a separator; plain words ("drama") or numbers are not dates
    if not text.str.contains(r"\d").all() or not text.str.contains(r"[-/:.T ]").all():
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parsed = pd.to_datetime(text, errors="coerce", utc=True, format="mixed")
    return not parsed.isna().any()


def _detect_time_column(frame: pd.DataFrame, others: list, path: Path) -> str | None:
    """The one column among `others` whose values are all dates or epoch seconds, or None.

    Other columns that are left unused are named in a DataWarning, so a time column under
    a name nobody guessed is never dropped silently.
    """
    found = [c for c in others if _looks_like_times(frame[c])]
    if len(found) == 1:
        others = [c for c in others if c != found[0]]
    if others:
        shown = ", ".join(repr(str(c)) for c in others)
        warnings.warn(f"{path}: ignored column{'s' if len(others) > 1 else ''} {shown} (not the user, movie, "
                      f"rating or a time column); if one holds the rating times, name it with time_col.",
                      DataWarning, stacklevel=3)
    return found[0] if len(found) == 1 else None


def _ids(col: pd.Series) -> np.ndarray:
    """Raw IDs as int64 when every value is a whole number, else as strings."""
    if col.dtype.kind in "iu":
        return col.to_numpy(np.int64)
    values = col.astype(str).str.strip()
    numeric = pd.to_numeric(values, errors="coerce")
    if not numeric.isna().any() and (numeric == numeric.round()).all():
        return numeric.to_numpy().astype(np.int64)
    return values.to_numpy(dtype=object)


def read_new_user(path: str | Path, encoding: str = "utf-8") -> tuple[np.ndarray, np.ndarray | None]:
    """One new person's movies from a small CSV/TSV: (raw movie IDs (m,), ratings (m,) or None).

    Accepted layouts: a header naming a movie column (movieId, item, movie ...) and
    optionally a rating column (rating, score, stars ...); or no header with one field
    per line (movie IDs: movies the person liked) or two (movie ID, rating). A user
    column, if present, must hold one user only. Without ratings the movies count as
    liked (see `Recommender.fold_in`).

    Raises:
        ParseError: for a missing, empty or malformed file, empty IDs, ratings that are
            not numbers, or rows of several users.
    """
    path = Path(path)
    check_readable(path, "ratings file")
    check_encoding(path, encoding)
    fmt = detect_format(path)
    if fmt == "parquet":
        frame = pd.read_parquet(path).astype(str)
        header = True
    else:
        with open(path, encoding=encoding) as fh:
            first = fh.readline()
        sep = sniff_separator(first, {"dat": "::", "tsv": "\t", "csv": ","}[fmt])
        fields = [f.strip() for f in first.rstrip("\r\n").split(sep)]
        header = not _looks_headerless(first, sep) and not (len(fields) == 1 and fields[0].isdigit())
        try:
            frame = pd.read_csv(path, sep=sep, engine="python" if len(sep) > 1 else "c", encoding=encoding,
                                dtype=str, skipinitialspace=True, header=0 if header else None,
                                keep_default_na=False)
        except pd.errors.ParserError as exc:
            match = re.search(r"line (\d+)", str(exc))
            where = f", line {match.group(1)}" if match else ""
            raise ParseError(f"{path}{where}: the number of fields differs from the first line.") from None
    if frame.empty:
        raise ParseError(f"{path} has no movies.")
    first_line = 2 if header else 1
    if header:
        columns = list(frame.columns)
        icol = _find_column(columns, None, ITEM_COLUMNS, "item", path, required=False)
        if icol is None:
            raise ParseError(f"{path}: cannot tell which column holds the movie IDs (columns: "
                             f"{', '.join(map(str, columns))}); call it movieId.")
        rcol = _find_column(columns, None, RATING_COLUMNS, "rating", path, required=False)
        ucol = _find_column(columns, None, USER_COLUMNS, "user", path, required=False)
        if ucol is not None and frame[ucol].str.strip().nunique() > 1:
            raise ParseError(f"{path} holds the ratings of several users; give one person's movies only.")
    else:
        if frame.shape[1] > 2:
            raise ParseError(f"{path}, line 1: expected a movie ID, or a movie ID and a rating; found "
                             f"{frame.shape[1]} fields.")
        icol, rcol = frame.columns[0], (frame.columns[1] if frame.shape[1] == 2 else None)
    ids = frame[icol].str.strip()
    if (ids == "").any():
        row = int(np.flatnonzero((ids == "").to_numpy())[0])
        raise ParseError(f"{path}, line {row + first_line}: the movie ID is empty.")
    ratings = None
    if rcol is not None:
        raw = frame[rcol].str.strip()
        ratings = pd.to_numeric(raw, errors="coerce").to_numpy(np.float64)
        if np.isnan(ratings).any():
            row = int(np.flatnonzero(np.isnan(ratings))[0])
            shown = "empty" if not raw.iloc[row] else f"{raw.iloc[row]!r}, not a number"
            raise ParseError(f"{path}, line {row + first_line}: the rating is {shown}.")
    return _ids(ids), ratings
