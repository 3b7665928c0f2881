"""The ``random`` protocol: a seeded uniform holdout of interactions (test share
``holdout``, default 0.1, and the same share for validation)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from movierec.evaluation.protocols.base import Protocol, holdout_share, register_protocol, share_label

if TYPE_CHECKING:
    from movierec.data.dataset import Dataset
    from movierec.data.split import Split


@register_protocol
class RandomHoldout(Protocol):
    """A seeded uniform share of the interactions is tested (and as much validates).

    ``holdout``: the test share (default 0.1 with a validation part, 0.2 without one).
    """

    name = "random"
    help = ("random: a seeded uniform share of the ratings is tested (holdout: the test share, default 0.1; "
            "0.2 without a validation part)")

    def split(self, ds: Dataset, holdout: float | None, seed: int, *, validation: bool) -> Split:
        from movierec.data.split import random_split

        if validation:
            frac = holdout_share(self.name, holdout, 0.1, 0.5)
            return random_split(ds, test_fraction=frac, validation_fraction=frac, seed=seed)
        frac = holdout_share(self.name, holdout, 0.2, 1.0)
        return random_split(ds, test_fraction=frac, seed=seed)

    def label(self, summary: Mapping[str, Any] | None = None) -> str:
        summary = summary or {}
        share = summary.get("test_fraction")
        return share_label(self.name, summary, float(share) if share is not None else None)
