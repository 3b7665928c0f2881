"""The ``cold-movies`` protocol: a seeded share of the movies (``holdout``, default 0.1)
held out of training entirely; every test user ranks only those cold movies. The split and
the candidate masks live in `movierec.evaluation.cold_movies`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from movierec.evaluation.protocols.base import Protocol, check_part, register_protocol

if TYPE_CHECKING:
    import numpy as np

    from movierec.data.dataset import Dataset
    from movierec.data.split import Split


@register_protocol
class ColdMovies(Protocol):
    """Movies no model has seen a rating of: rankings hold only them.

    ``holdout``: the share of the rated movies that are cold, in (0, 0.5) (default 0.1).
    With a validation part, a second, disjoint share of movies validates; tuning ranks
    only those. Tuned configurations live under "cold" whatever the share.
    """

    name = "cold-movies"
    help = ("cold-movies: a seeded share of the movies is held out of training and only they are ranked "
            "(holdout: that share, default 0.1; tuning validates on a second share of held-out movies)")

    def build(self, ds: Dataset, holdout: float | None, seed: int, *, validation: bool,
              drop_unseen_test: bool) -> list[Split]:
        from movierec.evaluation.cold_movies import DEFAULT_FRACTION, cold_movie_split

        frac = DEFAULT_FRACTION if holdout is None else float(holdout)
        # cold movies are unseen in train by design: only users without history are dropped
        return [cold_movie_split(ds, frac, seed=seed, validation=validation, drop_unseen_users=drop_unseen_test)]

    def config_key(self, holdout: float | None = None) -> str:
        return "cold"

    def label(self, summary: Mapping[str, Any] | None = None) -> str:
        summary = summary or {}
        if summary.get("n_cold_items") is not None:
            return f"{self.name} ({summary['n_cold_items']} movies held out of training)"
        if summary.get("holdout") is not None:
            return f"{self.name} ({float(summary['holdout']):.0%} of the movies held out of training)"
        return self.name

    def tuning_split(self, ds: Dataset, holdout: float | None = None, seed: int = 42,
                     validation_fraction: float = 0.1) -> Split:
        """The split `compare` makes (validation = the ratings of a second share of movies,
        held out of the fit part); `validation_fraction` does not apply."""
        return self.own_validation_split(ds, holdout, seed)

    def candidates(self, split: Split, part: str = "test") -> np.ndarray:
        """The test cold movies (part "test") or the validation cold movies (part
        "validation") as a boolean mask over movie indices, shape (n_items,).

        Raises:
            ConfigError: an unknown part, or a split without those cold movies.
        """
        from movierec.evaluation.cold_movies import cold_candidates, validation_candidates

        check_part(part)
        return cold_candidates(split) if part == "test" else validation_candidates(split)
