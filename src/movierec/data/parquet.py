"""Folders of Parquet files (a partitioned dataset) read as one ratings table.

A team that outgrew one machine keeps its ratings as many Parquet files, often in hive
partitions (`year=2019/part-0.parquet`), as Spark, pandas and pyarrow write them.
`read_parquet_folder` reads such a folder with `pyarrow.dataset` into one frame, which
`readers.read_user_ratings` then treats like a single Parquet file (same column detection,
checks and errors). `folder_sha256` is the folder's checksum a bundle records, so that
`movierec retrain` notices a folder whose files changed.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd

from movierec.errors import ParseError

#: file names read as Parquet (compared lower-cased)
PARQUET_SUFFIXES = (".parquet", ".pq")


def parquet_files(folder: Path) -> list[Path]:
    """The Parquet files under `folder` (any depth), sorted by their path relative to it.

    Names ending `.parquet` or `.pq`; files and folders whose name starts with "." or "_"
    are skipped, as pyarrow and Spark skip them (`_SUCCESS`, `.part-0.crc`, `_temporary/`).
    """
    folder = Path(folder)
    found = []
    for path in folder.rglob("*"):
        rel = path.relative_to(folder)
        if any(part.startswith((".", "_")) for part in rel.parts):
            continue
        if path.suffix.lower() in PARQUET_SUFFIXES and path.is_file():
            found.append(path)
    return sorted(found, key=lambda p: p.relative_to(folder).as_posix())


def folder_sha256(folder: Path) -> str:
    """sha256 over the sorted relative paths of the folder's Parquet files and each file's
    sha256: a file added, removed, renamed or changed changes it."""
    from movierec.data.checksum import file_sha256

    folder = Path(folder)
    digest = hashlib.sha256()
    for path in parquet_files(folder):
        digest.update(f"{path.relative_to(folder).as_posix()}\0{file_sha256(path)}\n".encode())
    return digest.hexdigest()


def _kind(arrow_type) -> str:
    """What a column holds, for comparing files: numbers of any width agree with each other,
    texts with texts, dates and times with each other; anything else by its exact type."""
    import pyarrow as pa

    if pa.types.is_dictionary(arrow_type):
        arrow_type = arrow_type.value_type
    if pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type) or pa.types.is_decimal(arrow_type):
        return "number"
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type) or (
            hasattr(pa.types, "is_string_view") and pa.types.is_string_view(arrow_type)):
        return "text"
    if pa.types.is_timestamp(arrow_type) or pa.types.is_date(arrow_type):
        return "time"
    return str(arrow_type)


def _check_schemas(folder: Path, files: list[Path], schemas: list) -> None:
    """Raise ParseError naming the first file whose columns disagree with the first file's."""
    first, base = files[0].relative_to(folder).as_posix(), schemas[0]
    fix = "write every file of the folder with the same columns and types."
    for path, schema in zip(files[1:], schemas[1:]):
        other = path.relative_to(folder).as_posix()
        for name in base.names:
            if name not in schema.names:
                raise ParseError(f"{folder}: Parquet files {first} and {other} disagree on column {name!r} "
                                 f"({first} has it, {other} does not); {fix}")
        for name in schema.names:
            if name not in base.names:
                raise ParseError(f"{folder}: Parquet files {first} and {other} disagree on column {name!r} "
                                 f"({other} has it, {first} does not); {fix}")
            a, b = base.field(name).type, schema.field(name).type
            if _kind(a) != _kind(b):
                raise ParseError(f"{folder}: Parquet files {first} and {other} disagree on column {name!r} "
                                 f"({a} in {first}, {b} in {other}); {fix}")


def _unreadable(path: Path) -> ParseError:
    return ParseError(f"{path} is not a readable Parquet file; rewrite it or remove it from the folder.")


def read_parquet_folder(folder: str | Path) -> pd.DataFrame:
    """Every Parquet file under `folder` as one frame, hive partition keys as columns.

    The files must agree on their columns (numbers of different widths, such as int32 and
    int64, are widened to one type); files are read in the order of their relative paths.

    Raises:
        ParseError: a folder with no Parquet files, two files that disagree on a column
            (naming both and the column), or a file that is not readable Parquet (naming it).
    """
    import pyarrow as pa
    import pyarrow.dataset as pads
    import pyarrow.parquet as pq

    folder = Path(folder)
    files = parquet_files(folder)
    if not files:
        raise ParseError(f"{folder} is a folder with no Parquet files (*.parquet) in it; give a ratings file "
                         f"or a folder of Parquet files.")
    schemas = []
    for path in files:
        try:
            schemas.append(pq.read_schema(path))
        except Exception:  # pyarrow raises several types for a damaged footer
            raise _unreadable(path) from None
    _check_schemas(folder, files, schemas)
    names = [str(p) for p in files]
    try:
        unified = pa.unify_schemas([s.remove_metadata() for s in schemas], promote_options="permissive")
        found = pads.dataset(names, format="parquet", partitioning="hive", partition_base_dir=str(folder))
        partition_fields = [f for f in found.schema if f.name not in unified.names]
        dataset = pads.dataset(names, schema=pa.schema(list(unified) + partition_fields), format="parquet",
                               partitioning="hive", partition_base_dir=str(folder))
        table = dataset.to_table()
    except Exception:
        for path in files:  # find the file that cannot be read, to name it
            try:
                pq.read_table(path)
            except Exception:
                raise _unreadable(path) from None
        raise ParseError(f"{folder}: its Parquet files could not be read as one table; "
                         f"write every file of the folder with the same columns and types.") from None
    return table.to_pandas()


__all__ = ["PARQUET_SUFFIXES", "folder_sha256", "parquet_files", "read_parquet_folder"]
