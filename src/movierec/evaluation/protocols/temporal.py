"""The ``temporal`` protocol: one global cut in time (the default for comparisons).

The earliest 80% of interactions train, the next 10% validate, the latest 10% test. No
model ever sees an interaction from after the test period starts (leave-one-out per
user leaks the future across users: user A's "last" rating may predate user B's
training ratings).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from movierec.evaluation.protocols.base import Protocol, holdout_share, register_protocol, share_label

if TYPE_CHECKING:
    from movierec.data.dataset import Dataset
    from movierec.data.split import Split


@register_protocol
class Temporal(Protocol):
    """A global cut in time: validation and test are the latest shares of all interactions.

    ``holdout``: the test share (default 0.1 with a validation part of the same share just
    before it; 0.2 without one).
    """

    name = "temporal"
    help = ("temporal: one global cut in time, the latest ratings are tested (holdout: the test share, "
            "default 0.1; 0.2 without a validation part; tuning validates on the latest share of the training part)")
    validation_in_time = True

    def split(self, ds: Dataset, holdout: float | None, seed: int, *, validation: bool) -> Split:
        from movierec.data.split import temporal_split

        if validation:
            frac = holdout_share(self.name, holdout, 0.1, 0.5)
            return temporal_split(ds, train=1 - 2 * frac, validation=frac, test=frac)
        frac = holdout_share(self.name, holdout, 0.2, 1.0)
        return temporal_split(ds, train=1 - frac, validation=0.0, test=frac)

    def label(self, summary: Mapping[str, Any] | None = None) -> str:
        summary = summary or {}
        fractions = summary.get("fractions")
        return share_label(self.name, summary, float(fractions[-1]) if fractions else None)
