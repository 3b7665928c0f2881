"""How much memory this process may still use, so a model too big to fit can say so up front.

`available_memory()` is the smaller of the container's memory limit minus what it already
uses (cgroup v2 `memory.max`/`memory.current`, else cgroup v1
`memory.limit_in_bytes`/`memory.usage_in_bytes`, page cache that can be reclaimed not
counted as used) and the kernel's `MemAvailable` (`/proc/meminfo`). `$MOVIEREC_MEMORY_LIMIT`
overrides both (bytes, or a number with a unit: "20G", "512M", "1.5GiB"), so tests and
benchmarks can run under a fixed cap. Models compare it with their own estimate
(`Recommender.check_fits`) and raise `ResourceError` before allocating anything.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from movierec.errors import ConfigError

MEMORY_LIMIT_ENV = "MOVIEREC_MEMORY_LIMIT"

#: what is assumed free where no limit can be read (not Linux, no /proc): effectively unlimited
UNKNOWN_MEMORY = 1 << 62

_CGROUP = Path("/sys/fs/cgroup")
_MEMINFO = Path("/proc/meminfo")
#: a cgroup "limit" at or above this is no limit (v1 writes 2^63 rounded down to a page)
_NO_LIMIT = 1 << 60

_UNITS = {"": 1, "B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:I?B)?\s*$", re.IGNORECASE)


def parse_bytes(text: str) -> int:
    """A memory size as bytes: "1073741824", "20G", "512M", "1.5GiB" (binary units).

    Raises:
        ConfigError: when `text` is not a positive size.
    """
    match = _SIZE.match(str(text))
    value = float(match.group(1)) * _UNITS[match.group(2).upper()] if match else 0.0
    if value < 1:
        raise ConfigError(f"{MEMORY_LIMIT_ENV} must be a positive number of bytes such as 20G or 512M, "
                          f"got {text!r}.")
    return int(value)


def format_bytes(n: float) -> str:
    """A byte count for a sentence: "13.0 GiB", "512.0 MiB", "800 B"."""
    n = float(n)
    for unit, size in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if abs(n) >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} B"


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None  # "max" (v2 without a limit) -> None


def _stat(path: Path, key: str) -> int:
    """One counter of a cgroup `memory.stat` file, 0 when absent."""
    try:
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key and value.strip().isdigit():
                return int(value)
    except OSError:
        pass
    return 0


def _cgroup_free(root: Path = _CGROUP) -> int | None:
    """The cgroup's limit minus its usage (reclaimable page cache not counted), or None
    without a limit."""
    v2_limit = _read_int(root / "memory.max")
    if v2_limit is not None:
        used = _read_int(root / "memory.current") or 0
        used -= _stat(root / "memory.stat", "inactive_file")
        limit = v2_limit
    else:
        v1 = root / "memory"
        limit = _read_int(v1 / "memory.limit_in_bytes")
        if limit is None:
            return None
        used = _read_int(v1 / "memory.usage_in_bytes") or 0
        used -= _stat(v1 / "memory.stat", "total_inactive_file")
    if limit >= _NO_LIMIT:
        return None
    return max(limit - max(used, 0), 0)


def _meminfo_available(path: Path = _MEMINFO) -> int | None:
    """`MemAvailable` of /proc/meminfo in bytes, or None where it cannot be read."""
    try:
        for line in path.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024  # the kernel writes kB (KiB)
    except (OSError, ValueError, IndexError):
        pass
    return None


def available_memory() -> int:
    """Bytes this process can still allocate: `$MOVIEREC_MEMORY_LIMIT` when set, else the
    smaller of the cgroup's free memory and `MemAvailable` (`UNKNOWN_MEMORY` when neither
    can be read).

    Raises:
        ConfigError: when `$MOVIEREC_MEMORY_LIMIT` is set but is not a size.
    """
    override = os.environ.get(MEMORY_LIMIT_ENV, "").strip()
    if override:
        return parse_bytes(override)
    known = [v for v in (_cgroup_free(), _meminfo_available()) if v is not None]
    return min(known) if known else UNKNOWN_MEMORY


__all__ = ["available_memory", "format_bytes", "parse_bytes", "MEMORY_LIMIT_ENV", "UNKNOWN_MEMORY"]
