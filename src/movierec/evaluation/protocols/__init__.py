"""Evaluation protocols: which split, which relevance threshold, which candidates.

A protocol is an object (`Protocol`) registered once under its name; every user (the
split functions, tuned-config keys, the tuner, `compare`, reports, plot titles and the
command line) finds it with `get_protocol(name)`. The built-in ones, one module each:

* ``temporal`` (default for comparisons): one global cut in time, the earliest 80% of
  interactions train, the next 10% validate, the latest 10% test. No model ever sees
  an interaction from after the test period starts (leave-one-out per user leaks the
  future across users: user A's "last" rating may predate user B's training ratings).
* ``leave-last``: per user, the latest interaction(s) test and the ones just before
  validate (``holdout=1`` for the last item, ``holdout=0.2`` for each user's last 20%).
* ``random``: a seeded uniform holdout of interactions (test share ``holdout``,
  default 0.1, and the same share for validation).
* ``ml100k-folds``: the five canonical ML-100K folds (u1..u5); no validation part.
* ``files``: explicit train and test files (``files_protocol``); nothing is split.
* ``cold-movies``: a seeded share of the movies (``holdout``, default 0.1) held out of
  training entirely; every test user ranks only those cold movies
  (`movierec.evaluation.cold_movies`).

Adding one is a `Protocol` subclass plus `register_protocol` (docs/architecture.md,
"Adding a protocol").

`build_splits` / `build_split` split by protocol name. Rating evaluation asks for no
validation part (`validation=False`) and keeps unseen test users and movies
(`drop_unseen_test=False`): rating models answer them from biases. Otherwise users and
items of the test (and validation) part that never occur in train are dropped
(`movierec.data.split.drop_unseen`): a personalised model has no history to rank for
such a user, and no model can have learned such an item. How many were dropped is
recorded in ``split.info["dropped"]``.

Relevance: `parse_relevance_threshold` ("auto", "none" or a number) and
`resolve_relevance_threshold` (against a dataset's rating scale).

Sampled-negative evaluation (rank each test item among N random unrated items instead
of the whole catalog) is available on request only, with fixed seeds and cached
negatives (`sample_negatives`): it is known to reorder models relative to full ranking.

Nothing here imports numpy or the data layer at import time (only inside the functions
that split or sample), so the command line can list the protocols in its help cheaply.
"""

from movierec.evaluation.protocols.base import (
    Protocol,
    available_protocols,
    get_protocol,
    holdout_share,
    protocol_label,
    protocol_of,
    register_protocol,
    share_label,
    unregister_protocol,
)

# the built-in protocols register themselves on import, in this order
from movierec.evaluation.protocols.temporal import Temporal
from movierec.evaluation.protocols.leave_last import LeaveLast
from movierec.evaluation.protocols.random_holdout import RandomHoldout
from movierec.evaluation.protocols.ml100k_folds import ML100KFolds
from movierec.evaluation.protocols.files import Files, files_protocol
from movierec.evaluation.protocols.cold_movies import ColdMovies

from movierec.evaluation.protocols.negatives import (
    DEFAULT_NEGATIVE_CACHE,
    SAMPLED_WARNING,
    NegativeCache,
    SampledEvaluationWarning,
    sample_negatives,
)
from movierec.evaluation.protocols.relevance import (
    default_relevance_threshold,
    parse_relevance_threshold,
    resolve_relevance_threshold,
)
from movierec.evaluation.protocols.splits import build_split, build_splits, split_summary

__all__ = [
    "ColdMovies",
    "DEFAULT_NEGATIVE_CACHE",
    "Files",
    "LeaveLast",
    "ML100KFolds",
    "NegativeCache",
    "Protocol",
    "RandomHoldout",
    "SAMPLED_WARNING",
    "SampledEvaluationWarning",
    "Temporal",
    "available_protocols",
    "build_split",
    "build_splits",
    "default_relevance_threshold",
    "files_protocol",
    "get_protocol",
    "holdout_share",
    "parse_relevance_threshold",
    "protocol_label",
    "protocol_of",
    "register_protocol",
    "resolve_relevance_threshold",
    "sample_negatives",
    "share_label",
    "split_summary",
    "unregister_protocol",
]
