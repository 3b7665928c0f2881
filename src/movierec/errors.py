"""Typed errors. Each carries one sentence a user can act on; the CLI and API show it as is."""

from __future__ import annotations


class MovierecError(Exception):
    """Base class of every error movierec raises on purpose."""


class DatasetError(MovierecError):
    """A dataset could not be found, fetched, verified or parsed."""


class FetchError(DatasetError):
    """Downloading or extracting a dataset archive failed."""


class ParseError(DatasetError):
    """A ratings, movies or users file is malformed."""


class SplitError(MovierecError):
    """A split could not be made (bad fractions, too little data, missing timestamps)."""


class ConfigError(MovierecError):
    """A parameter is out of range or names something unknown."""


class CapabilityError(MovierecError):
    """The model cannot do what was asked (e.g. fold in a new person, give embeddings)."""


class NotFittedError(MovierecError):
    """A model was queried before `fit` was called."""


class UnknownIdError(MovierecError, KeyError):
    """Raw IDs that the model or dataset has never seen."""

    def __str__(self) -> str:  # KeyError would quote the message otherwise
        return str(self.args[0]) if self.args else ""


class UnknownUserError(UnknownIdError):
    """A user ID that is not in the training data."""


class UnknownItemError(UnknownIdError):
    """A movie ID that is not in the training data."""


class BundleError(MovierecError):
    """A saved model folder is missing, corrupt or of an unknown format."""


class RegistryError(BundleError):
    """A model registry has no such name or version, or its pointer cannot be moved."""


class NoLikedMoviesError(ConfigError):
    """A new person gave only movies they dislike, and the model learns only from liked movies."""


class ResourceError(ConfigError):
    """A model would need more memory than this machine has free (checked before fitting)."""
