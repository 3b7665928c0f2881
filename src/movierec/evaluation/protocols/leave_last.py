"""The ``leave-last`` protocol: per user, the latest interaction(s) test and the ones just
before validate (``holdout=1`` for the last item, ``holdout=0.2`` for each user's last 20%).

Its `config_key` is the one place that names the folders of its tuned configurations
("loo", "last20", "leave-last-3").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from movierec.errors import ConfigError, SplitError
from movierec.evaluation.protocols.base import Protocol, register_protocol

if TYPE_CHECKING:
    from movierec.data.dataset import Dataset
    from movierec.data.split import Split


@register_protocol
class LeaveLast(Protocol):
    """Each user's latest interactions are tested, the ones just before validate.

    ``holdout``: a whole number of last items per user (default 1) or a fraction in
    (0, 1) of each user's history. Tunes on the validation part `compare` uses.
    """

    name = "leave-last"
    help = ("leave-last: each user's latest ratings are tested (holdout: 1 = the last one, 3 = the last three, "
            "0.2 = the last 20%; default 1; tuning validates on each user's ratings just before them)")

    def split(self, ds: Dataset, holdout: float | None, seed: int, *, validation: bool) -> Split:
        from movierec.data.split import leave_last_k_split

        k: int | float = 1 if holdout is None else holdout
        if isinstance(k, float) and k.is_integer():
            k = int(k)
        if isinstance(k, float) and not 0 < k < 1:
            raise ConfigError(f"The holdout of leave-last is a whole number of items or a fraction in (0, 1), got {holdout!r}.")
        try:
            return leave_last_k_split(ds, k=k, validation_k=k if validation else 0)
        except SplitError as exc:
            raise ConfigError(str(exc)) from None

    def config_key(self, holdout: float | None = None) -> str:
        """"loo" for the last item (holdout 1 or None), "leave-last-<k>" for k > 1 items,
        "last<percent>" for a fraction (0.2 -> "last20")."""
        h = 1.0 if holdout is None else float(holdout)
        if h.is_integer():
            return "loo" if int(h) == 1 else f"leave-last-{int(h)}"
        return f"last{round(h * 100)}"

    def label(self, summary: Mapping[str, Any] | None = None) -> str:
        summary = summary or {}
        holdout = summary.get("holdout")
        if holdout is None:
            holdout = summary.get("k")
        if holdout is None:
            return self.name
        h = float(holdout)
        if h.is_integer():
            what = "last item" if int(h) == 1 else f"last {int(h)} items"
        else:
            what = f"last {h:.0%}"
        return f"{self.name} ({what} per user)"

    def tuning_split(self, ds: Dataset, holdout: float | None = None, seed: int = 42,
                     validation_fraction: float = 0.1) -> Split:
        """The split `compare` makes (validation = each user's interactions just before
        the test ones); `validation_fraction` does not apply."""
        return self.own_validation_split(ds, holdout, seed)
