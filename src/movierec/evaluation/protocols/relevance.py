"""Which test ratings count as relevant: the one parser of "auto" / "none" / a number, and
its resolution against a dataset's rating scale (used by `compare`, `tune` and the CLI)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from movierec.errors import ConfigError

if TYPE_CHECKING:
    from movierec.data.dataset import Dataset

#: words meaning "every test interaction is relevant"
NO_THRESHOLD = ("none", "off", "all")


def default_relevance_threshold(ds: Dataset) -> float | None:
    """The default "relevant" cut for explicit ratings: low + 0.75 * (high - low) of the
    rating scale, i.e. 4 on a 1-5 scale and 3.875 (so >= 4) on 0.5-5. None for implicit
    data (a single rating value), where every interaction is relevant."""
    scale = ds.rating_scale
    if scale is None or not math.isfinite(scale[0]) or scale[1] <= scale[0]:
        return None
    low, high = float(scale[0]), float(scale[1])
    return low + 0.75 * (high - low)


def parse_relevance_threshold(value: str | float | None, default: str | float | None = "auto"
                              ) -> str | float | None:
    """A relevance threshold as given (a command-line word or a number), not yet resolved.

    Args:
        value: "auto" (the dataset's default, see `default_relevance_threshold`), "none" /
            "off" / "all" (every test interaction relevant), a number or its text, or None
            (not given: `default`).
        default: what None stands for ("auto" for comparisons, None for tuning).

    Returns:
        "auto", None or a float.

    Raises:
        ConfigError: text that is none of these.
    """
    if value is None:
        return default
    if isinstance(value, str):
        low = value.strip().lower()
        if low == "auto":
            return "auto"
        if low in NO_THRESHOLD:
            return None
        try:
            return float(value)
        except ValueError:
            raise ConfigError(f"The relevance threshold is a number, 'auto' or 'none'; got {value!r}.") from None
    return float(value)


def resolve_relevance_threshold(value: str | float | None, ds: Dataset) -> float | None:
    """The threshold a run uses: "auto" -> `default_relevance_threshold(ds)`; "none" or None
    -> None (every test interaction relevant); a number (or its text) -> itself as a float.

    Raises:
        ConfigError: text that is not "auto", "none" or a number.
    """
    parsed = parse_relevance_threshold(value, default=None)
    return default_relevance_threshold(ds) if parsed == "auto" else parsed


__all__ = ["NO_THRESHOLD", "default_relevance_threshold", "parse_relevance_threshold",
           "resolve_relevance_threshold"]
