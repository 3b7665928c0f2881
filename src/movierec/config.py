"""Settings read from the environment: where datasets are cached and where they come from."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "MOVIEREC_CACHE"
MIRROR_ENV = "MOVIEREC_MIRROR"


def cache_dir() -> Path:
    """Folder for fetched datasets: `$MOVIEREC_CACHE`, else `$XDG_CACHE_HOME/movierec`,
    else `~/.cache/movierec`."""
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "movierec"


def mirror() -> str | None:
    """`$MOVIEREC_MIRROR`: a folder, `file://` URL or http(s) URL holding `<name>.zip`."""
    value = os.environ.get(MIRROR_ENV, "").strip()
    return value or None
