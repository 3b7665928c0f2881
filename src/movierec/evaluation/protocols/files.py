"""The ``files`` protocol: explicit train and test files; nothing is split."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from movierec.errors import ConfigError
from movierec.evaluation.protocols.base import Protocol, register_protocol

if TYPE_CHECKING:
    from movierec.data.dataset import Dataset
    from movierec.data.split import Split


def files_protocol(train_path: str | Path, test_path: str | Path, drop_unseen_test: bool = True,
                   **read_options) -> Split:
    """Explicit train and test files (no validation part); unseen test users/items are
    dropped and counted as in `build_split` (when `drop_unseen_test`)."""
    from movierec.data.split import drop_unseen, files_split

    split = files_split(train_path, test_path, drop_unseen_test=False, **read_options)
    return drop_unseen(split) if drop_unseen_test else split


@register_protocol
class Files(Protocol):
    """A training file and a test file given as they are (`files`); no dataset is split."""

    name = "files"
    help = "files: explicit training and test files; nothing is split"

    def splits(self, ds: Dataset | None, holdout: float | None = None, seed: int = 42, *,
               validation: bool = True, drop_unseen_test: bool = True,
               files: tuple[str | Path, str | Path] | None = None) -> list[Split]:
        """The one split of `files` = (train path, test path); `ds`, `holdout`, `seed` and
        `validation` do not apply.

        Raises:
            ConfigError: no files given.
        """
        if files is None:
            raise ConfigError("The files protocol needs a training file and a test file.")
        return [files_protocol(files[0], files[1], drop_unseen_test=drop_unseen_test)]
