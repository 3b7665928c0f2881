"""A folder of Parquet files (a partitioned dataset) read with `load_ratings(DIR)` / `--data DIR`:
the same Dataset as one file of the same rows, hive partitions, one-sentence errors, and a
recorded source whose checksum notices a changed folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from movierec.cli import app
from movierec.data import load_ratings
from movierec.data.parquet import folder_sha256, parquet_files
from movierec.data.source import reload, with_checksums
from movierec.errors import DatasetError, ParseError

runner = CliRunner()
MOVIEREC = Path(sys.executable).with_name("movierec")


def _ratings(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "userId": rng.integers(1, 40, n),
        "movieId": rng.integers(1, 90, n) * 3,
        "rating": rng.integers(1, 11, n) / 2,
        "timestamp": 1_000_000_000 + np.sort(rng.integers(0, 10**8, n)),
    })


def write_partitioned(folder: Path, frame: pd.DataFrame, by: str | None = None, files: int = 3) -> list[Path]:
    """Write `frame` as a partitioned Parquet dataset, the way pyarrow and Spark lay them out:
    hive folders `by=value/part-K.parquet` when `by` is given (the column then lives in the
    folder names only), else `part-K.parquet` files of consecutive rows; plus the `_SUCCESS`
    marker, `.crc` side files and a `_temporary/` attempt those writers leave, which the
    reader must skip.
    Rows come back in the order of the sorted relative paths."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    groups = [(f"{by}={key}", part.drop(columns=by)) for key, part in frame.groupby(by, sort=True)] if by \
        else [("", frame)]
    for sub, part in groups:
        target = folder / sub if sub else folder
        target.mkdir(exist_ok=True)
        for k, chunk in enumerate(np.array_split(np.arange(len(part)), files)):
            path = target / f"part-{k}.parquet"
            pq.write_table(pa.Table.from_pandas(part.iloc[chunk], preserve_index=False), path)
            (target / f".part-{k}.parquet.crc").write_bytes(b"\x00crc")
            written.append(path)
    (folder / "_SUCCESS").write_text("")
    stale = folder / "_temporary" / "0"  # a task attempt Spark left behind: not part of the data
    stale.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pandas(frame.iloc[:5], preserve_index=False), stale / "part-0.parquet")
    return written


def test_folder_reads_as_the_same_dataset_as_one_file(tmp_path):
    frame = _ratings()
    write_partitioned(tmp_path / "shards", frame)
    frame.to_csv(tmp_path / "ratings.csv", index=False)
    from_folder = load_ratings(tmp_path / "shards")
    from_file = load_ratings(tmp_path / "ratings.csv")
    assert from_folder.fingerprint() == from_file.fingerprint()
    assert from_folder.name == "shards" and from_folder.has_timestamps
    assert [p.name for p in parquet_files(tmp_path / "shards")] == ["part-0.parquet", "part-1.parquet",
                                                                   "part-2.parquet"]


def test_hive_partitions_and_widths_that_differ(tmp_path):
    frame = _ratings()
    frame["year"] = np.where(np.arange(len(frame)) < 150, 2019, 2020)
    folder = tmp_path / "by-year"
    write_partitioned(folder, frame, by="year")
    # one shard written with int32 IDs and float32 ratings: numbers of another width agree
    narrow = folder / "year=2020" / "part-0.parquet"
    table = pq.read_table(narrow)
    pq.write_table(table.cast(pa.schema([("userId", pa.int32()), ("movieId", pa.int32()), ("rating", pa.float32()),
                                         ("timestamp", pa.int64())])), narrow)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the partition column is read, then set aside quietly
        ds = load_ratings(folder)
    expected = frame.sort_values("year", kind="stable")
    assert ds.n_ratings == len(frame)
    np.testing.assert_array_equal(ds.users.raw(ds.user_idx), expected["userId"].to_numpy())
    np.testing.assert_array_equal(ds.rating, expected["rating"].to_numpy(np.float32))


def test_text_ids_in_a_folder(tmp_path):
    frame = pd.DataFrame({"user": ["ann", "bob", "ann"], "item": ["m1", "m2", "m2"], "score": [4.0, 2.0, 5.0]})
    write_partitioned(tmp_path / "f", frame, files=2)
    ds = load_ratings(tmp_path / "f")
    assert ds.users.to_list() == ["ann", "bob"] and ds.items.to_list() == ["m1", "m2"]


def test_folder_with_no_parquet_files(tmp_path):
    folder = tmp_path / "empty"
    folder.mkdir()
    (folder / "README.txt").write_text("ratings go here")
    (folder / "_SUCCESS").write_text("")
    with pytest.raises(ParseError, match=r"empty is a folder with no Parquet files \(\*\.parquet\) in it"):
        load_ratings(folder)


def test_mismatched_schemas_name_both_files_and_the_column(tmp_path):
    folder = tmp_path / "mixed"
    write_partitioned(folder, _ratings())
    pq.write_table(pa.table({"userId": [1], "movieId": [3], "rating": ["4.5"], "timestamp": [1_000_000_000]}),
                   folder / "part-9.parquet")
    with pytest.raises(ParseError, match=r"Parquet files part-0\.parquet and part-9\.parquet disagree on column "
                                         r"'rating' \(double in part-0\.parquet, string in part-9\.parquet\)"):
        load_ratings(folder)
    pq.write_table(pa.table({"userId": [1], "movieId": [3], "rating": [4.5]}), folder / "part-9.parquet")
    with pytest.raises(ParseError, match=r"part-0\.parquet and part-9\.parquet disagree on column 'timestamp' "
                                         r"\(part-0\.parquet has it, part-9\.parquet does not\)"):
        load_ratings(folder)


def test_corrupt_file_is_named(tmp_path):
    folder = tmp_path / "broken"
    files = write_partitioned(folder, _ratings())
    files[1].write_bytes(files[1].read_bytes()[:40] + b"\x00" * 20)  # a truncated copy
    with pytest.raises(ParseError, match=r"broken/part-1\.parquet is not a readable Parquet file"):
        load_ratings(folder)


def test_cli_reads_a_folder_and_refuses_a_bad_one(tmp_path):
    write_partitioned(tmp_path / "shards", _ratings())
    result = runner.invoke(app, ["data", "describe", "--data", str(tmp_path / "shards"), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["n_ratings"] == 400
    (tmp_path / "none").mkdir()
    proc = subprocess.run([str(MOVIEREC), "data", "describe", "--data", str(tmp_path / "none")],
                          capture_output=True, text=True, env=os.environ.copy())
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.strip().endswith("is a folder with no Parquet files (*.parquet) in it; give a ratings file "
                                        "or a folder of Parquet files.") and "Traceback" not in proc.stderr


def test_source_of_a_folder_notices_a_change(tmp_path):
    folder = tmp_path / "shards"
    files = write_partitioned(folder, _ratings())
    ds = load_ratings(folder)
    source = {**with_checksums(ds.source), "fingerprint": ds.fingerprint()}
    assert source["sha256"] == folder_sha256(folder)
    assert reload(source).fingerprint() == ds.fingerprint()
    (folder / "_SUCCESS").write_text("written again")  # not a data file: no change
    assert reload(source).n_ratings == ds.n_ratings
    files[0].rename(folder / "part-0b.parquet")  # same bytes, another name
    with pytest.raises(DatasetError, match=r"ratings folder .*shards has changed since the model was trained"):
        reload(source)
    (folder / "part-0b.parquet").rename(files[0])
    assert reload(source).n_ratings == ds.n_ratings
    pq.write_table(pa.table({"userId": [1], "movieId": [3], "rating": [4.5], "timestamp": [1_000_000_000]}),
                   folder / "part-3.parquet")
    with pytest.raises(DatasetError, match="has changed"):
        reload(source)
