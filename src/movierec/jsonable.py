"""The one JSON `default=` encoder for the values movierec writes: numpy scalars and arrays,
paths and sets.

`json.dumps(obj, default=json_default)` writes what the standard library cannot: numpy
integers, floats and booleans as Python numbers, numpy arrays as (nested) lists, paths as
strings, sets as lists. `json_default_finite` does the same but writes a non-finite numpy
float (NaN, +-inf) as null, for documents read by tools that reject NaN.

A bottom-layer module (next to `errors` and `config`): it imports nothing from movierec
and never imports numpy itself (a numpy value can only exist once numpy is loaded), so the
CLI can use it without paying for numpy at start-up.
"""

from __future__ import annotations

import math
import sys
from pathlib import PurePath
from typing import Any


def json_default(value: Any) -> Any:
    """A JSON-ready stand-in for `value`, for ``json.dumps(..., default=json_default)``.

    numpy integer -> int, numpy float -> float (NaN stays NaN), numpy bool -> bool, numpy
    array -> ``tolist()``, path -> str, set/frozenset -> list.

    Raises:
        TypeError: any other type (what `json.dumps` expects from a default function).
    """
    np = sys.modules.get("numpy")
    if np is not None:
        if isinstance(value, np.integer):
            return int(value)
        if isinstance(value, np.floating):
            return float(value)
        if isinstance(value, np.bool_):
            return bool(value)
        if isinstance(value, np.ndarray):
            return value.tolist()
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, (set, frozenset)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def json_default_finite(value: Any) -> Any:
    """As `json_default`, but a non-finite numpy float (NaN, +-inf) becomes None (null)."""
    out = json_default(value)
    if isinstance(out, float) and not math.isfinite(out):
        return None
    return out


__all__ = ["json_default", "json_default_finite"]
