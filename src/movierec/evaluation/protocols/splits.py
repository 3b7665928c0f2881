"""`build_splits` / `build_split`: the public split functions, thin calls to the
registered protocol of that name, and `split_summary`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from movierec.evaluation.protocols.base import get_protocol

if TYPE_CHECKING:
    from movierec.data.dataset import Dataset
    from movierec.data.split import Split


def build_splits(
    ds: Dataset | None,
    protocol: str = "temporal",
    holdout: float | None = None,
    seed: int = 42,
    *,
    validation: bool = True,
    drop_unseen_test: bool = True,
    files: tuple[str | Path, str | Path] | None = None,
) -> list[Split]:
    """Train/(validation)/test splits by protocol name (`get_protocol(protocol).splits`).

    Args:
        ds: the full Dataset (None for the ``files`` protocol).
        protocol: a registered protocol (`available_protocols()`): "temporal" (global cut
            in time), "leave-last" (per user), "random" (seeded uniform), "ml100k-folds"
            (the five canonical ML-100K folds u1..u5, needs the ml-100k Dataset), "files"
            (explicit train and test files, see `files`), "cold-movies" (held-out movies).
        holdout: temporal/random: the test share (default 0.1 with a validation part of
            the same share, 0.2 without one); leave-last: a whole number of last items
            (default 1) or a fraction of each user's history; cold-movies: the share of
            movies held out (default 0.1).
        seed: seed of the random and cold-movies protocols (the others are deterministic).
        validation: carve a validation part (same size as the test part, just before it
            in time for temporal/leave-last). Rating evaluation passes False: the
            training part then keeps those interactions.
        drop_unseen_test: drop validation/test interactions of users or items absent
            from train (counts in ``info["dropped"]``).
        files: (train path, test path); given, the ``files`` protocol is used whatever
            `protocol` says.

    Returns:
        A list of Splits: five for ml100k-folds, one otherwise.

    Raises:
        ConfigError: unknown protocol, bad holdout, or data that does not fit the protocol.
    """
    chosen = get_protocol("files") if files is not None else get_protocol(protocol)
    return chosen.splits(ds, holdout, seed, validation=validation, drop_unseen_test=drop_unseen_test, files=files)


def build_split(ds: Dataset | None, protocol: str = "temporal", holdout: float | None = None, seed: int = 42,
                drop_unseen_test: bool = True, validation: bool = True,
                files: tuple[str | Path, str | Path] | None = None) -> Split:
    """One train/validation/test split by protocol name (see `build_splits`; for
    ml100k-folds this is fold u1)."""
    return build_splits(ds, protocol, holdout, seed, validation=validation, drop_unseen_test=drop_unseen_test,
                        files=files)[0]


def split_summary(split: Split) -> dict:
    """JSON-ready description of a split: protocol, sizes, dropped counts, time cut."""
    out = {k: v for k, v in split.info.items()}
    for name, part in split.parts().items():
        out[f"n_{name}"] = int(part.n_ratings)
        out[f"n_{name}_users"] = int(len(part.active_users()))
    out["n_items"] = int(split.train.n_items)
    return out


__all__ = ["build_split", "build_splits", "split_summary"]
