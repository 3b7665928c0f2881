"""The ``ml100k-folds`` protocol: the five canonical ML-100K folds (u1..u5); no
validation part. A comparison uses fold u1; rating evaluation all five."""

from __future__ import annotations

from typing import TYPE_CHECKING

from movierec.errors import ConfigError
from movierec.evaluation.protocols.base import Protocol, register_protocol

if TYPE_CHECKING:
    from movierec.data.dataset import Dataset
    from movierec.data.split import Split


@register_protocol
class ML100KFolds(Protocol):
    """The five canonical ML-100K folds u1..u5 (ml-100k only); `holdout` and `seed` do not apply."""

    name = "ml100k-folds"
    help = "ml100k-folds: the five canonical ML-100K folds u1..u5 (ml-100k only; a comparison and tuning use u1)"

    def build(self, ds: Dataset, holdout: float | None, seed: int, *, validation: bool,
              drop_unseen_test: bool) -> list[Split]:
        from movierec.data.split import drop_unseen, ml100k_folds

        if ds.name != "ml-100k":
            raise ConfigError(f"The ml100k-folds protocol needs the ml-100k dataset, not {ds.name!r}; "
                              "use the random or temporal protocol for other data.")
        splits = list(ml100k_folds(ds))
        return [drop_unseen(s) for s in splits] if drop_unseen_test else splits
