"""sha256 of files, the one helper the fetcher, data sources, Parquet folders and bundles share.

A module of its own (no movierec imports) so any data module can use it without a cycle.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

CHUNK = 1 << 20


def file_sha256(path: str | Path) -> str:
    """sha256 of a file's bytes, read in chunks (archives, bundle files, recorded data)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


__all__ = ["file_sha256"]
