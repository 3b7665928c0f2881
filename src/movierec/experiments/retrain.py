"""Training data plus people's feedback, and a fair comparison of two training recipes.

`movierec retrain` (see `movierec.artifacts.retrain`) builds on three steps kept here:

1. `feedback_rows` reads the ratings of the service's feedback database and checks them
   against the model (its movie IDs and its rating scale);
2. `with_feedback` adds them to the base data, each profile becoming a user;
3. `compare_recipes` holds out one slice (each profile's most recent rating plus the most
   recent rating of a seeded sample of base users), fits the current recipe and the new
   one on the rest with the same hyperparameters and seed, and scores both on the slice
   as the service would answer: a known user from the model, anyone else (a profile the
   current version never saw) folded in from their other ratings.

Neither fit sees the held-out answers, so the figures compare like with like.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import numpy as np

from movierec.data.dataset import Dataset
from movierec.data.idmap import IdMap
from movierec.errors import ConfigError, MovierecError, UnknownUserError

#: list length of the slice's metrics
K = 10
#: base users whose most recent rating joins the held-out slice (at most)
BASE_SLICE_USERS = 200
#: the metric `if-better` promotion compares (higher is better)
PRIMARY = f"ndcg@{K}"


@dataclass(frozen=True)
class Feedback:
    """People's ratings, ready to join the base data.

    Attributes:
        profile: profile token per rating, shape (n,).
        movie: raw movie ID per rating (all known to the base data), shape (n,).
        rating: stars on the model's scale, float32, shape (n,).
        timestamp: Unix seconds, int64, shape (n,).
        ignored: ratings left out because the base data does not know their movie.
    """

    profile: np.ndarray
    movie: np.ndarray
    rating: np.ndarray
    timestamp: np.ndarray
    ignored: int = 0

    def __len__(self) -> int:
        return len(self.profile)

    @property
    def profiles(self) -> list[str]:
        """Profiles in order of their first rating."""
        return list(dict.fromkeys(self.profile.tolist()))


def feedback_rows(rows: Iterable[tuple[str, Any, float, int]], base: Dataset, *, where: str = "the feedback database",
                  scale: tuple[float, float] | None = None) -> Feedback:
    """Check (profile, movie ID, rating, timestamp) rows against the base data.

    Raises:
        ConfigError: no rows; a rating off the scale (naming the profile and movie); rows
            whose movies are mostly unknown to the base data (another model's IDs).
    """
    rows = list(rows)
    if not rows:
        raise ConfigError(f"{where} holds no ratings yet; there is nothing to retrain on.")
    scale = scale or base.rating_scale
    for profile, movie, rating, _ in rows:
        value = float(rating)
        if not math.isfinite(value) or (scale and not scale[0] <= value <= scale[1]):
            raise ConfigError(f"Profile {profile} rated movie {movie} {value:g}, outside the model's scale "
                              f"[{scale[0]:g}, {scale[1]:g}]; remove it from {where} or retrain a model on that scale.")
    movies = np.asarray([_as_kind(r[1], base.items) for r in rows], dtype=object)
    pos = base.items.lookup(movies, missing="mask") if len(movies) else np.zeros(0, np.int64)
    known = pos >= 0
    if known.sum() * 2 < len(rows):
        shown = ", ".join(str(m) for m in list(dict.fromkeys(movies[~known].tolist()))[:3])
        raise ConfigError(f"{where} does not fit this model: {int((~known).sum())} of its {len(rows)} ratings are of "
                          f"movies the model's data does not have (e.g. {shown}); it belongs to another model.")
    keep = np.flatnonzero(known)
    return Feedback(
        profile=np.asarray([rows[i][0] for i in keep], dtype=object),
        movie=base.items.raw_ids[pos[keep]],
        rating=np.asarray([float(rows[i][2]) for i in keep], dtype=np.float32),
        timestamp=np.asarray([int(rows[i][3]) for i in keep], dtype=np.int64),
        ignored=int((~known).sum()),
    )


def _as_kind(value: Any, idmap: IdMap) -> Any:
    """A raw ID as the IdMap's kind (int IDs stored as text still match)."""
    if _int_ids(idmap):
        try:
            return int(value)
        except (TypeError, ValueError):
            return value
    return str(value)


def _int_ids(idmap: IdMap) -> bool:
    return np.asarray(idmap.raw_ids).dtype.kind in "iu"


def profile_users(base: Dataset, profiles: list[str], previous: dict[str, Any] | None = None) -> dict[str, Any]:
    """A raw user ID for each profile: the one an earlier retrain gave it, else a new one.

    Whole-number user IDs continue after the largest one in use; text user IDs are
    "profile:<token>". Never an ID of a base user.
    """
    previous = dict(previous or {})
    users: dict[str, Any] = {}
    if _int_ids(base.users):
        taken = set(np.asarray(base.users.raw_ids).tolist())
        nxt = max([int(np.max(base.users.raw_ids))] + [int(v) for v in previous.values()]) + 1
        for p in profiles:
            old = previous.get(p)
            if old is not None and int(old) not in taken:
                users[p] = int(old)
            else:
                users[p], nxt = nxt, nxt + 1
        return users
    for p in profiles:
        uid = f"profile:{p}"
        if uid in base.users:
            raise ConfigError(f"The data already has a user {uid!r}; rename that user before retraining.")
        users[p] = uid
    return users


def with_feedback(base: Dataset, feedback: Feedback, users: dict[str, Any], name: str | None = None) -> Dataset:
    """The base data plus the feedback (each profile as the user `users[profile]`); same
    movies, catalog and rating scale. The result has no source: it is built, not read."""
    base_users = base.users.raw(base.user_idx)
    fb_users = np.asarray([users[p] for p in feedback.profile.tolist()], dtype=base_users.dtype if
                          _int_ids(base.users) else object)
    raw_users = np.concatenate([base_users.astype(object) if fb_users.dtype == object else base_users, fb_users])
    if not _int_ids(base.users):
        raw_users = raw_users.astype(str)
    user_map, user_idx = IdMap.from_values(raw_users, kind="user", error=UnknownUserError)
    item_idx = np.concatenate([base.item_idx, base.items.lookup(feedback.movie).astype(np.int32)])
    return Dataset(
        name=name or f"{base.name}+feedback",
        users=user_map,
        items=base.items,
        user_idx=user_idx.astype(np.int32),
        item_idx=item_idx.astype(np.int32),
        rating=np.concatenate([base.rating, feedback.rating]).astype(np.float32),
        timestamp=np.concatenate([base.timestamp, feedback.timestamp]).astype(np.int64),
        catalog=base.catalog,
        has_timestamps=base.has_timestamps or len(feedback) > 0,
        rating_scale=base.rating_scale,
    )


def _latest_rows(user_idx: np.ndarray, timestamp: np.ndarray, rows: np.ndarray) -> dict[int, int]:
    """user index -> the position (in `rows`) of that user's most recent rating (ties: the
    later row)."""
    order = np.lexsort((rows, timestamp[rows]))  # by time, then by position
    latest: dict[int, int] = {}
    for pos in rows[order].tolist():
        latest[int(user_idx[pos])] = pos
    return latest


def held_out_slice(data: Dataset, n_base: int, seed: int, *, base_users: int = BASE_SLICE_USERS) -> np.ndarray:
    """Boolean mask over `data`'s ratings: the held-out slice.

    `data` is `with_feedback(...)` output: its first `n_base` ratings are the base data,
    the rest feedback. The slice holds each profile's most recent rating (profiles with at
    least 2 ratings, so one is left to fold in from) and the most recent rating of
    `base_users` base users with at least 5 ratings, drawn with `seed`.
    """
    n = len(data.user_idx)
    mask = np.zeros(n, dtype=bool)
    fb_rows = np.arange(n_base, n)
    counts = np.bincount(data.user_idx[fb_rows], minlength=data.n_users) if len(fb_rows) else np.zeros(data.n_users)
    for user, pos in _latest_rows(data.user_idx, data.timestamp, fb_rows).items():
        if counts[user] >= 2:
            mask[pos] = True
    base_rows = np.arange(n_base)
    base_counts = np.bincount(data.user_idx[base_rows], minlength=data.n_users)
    fb_users = np.unique(data.user_idx[fb_rows])
    eligible = np.setdiff1d(np.flatnonzero(base_counts >= 5), fb_users)
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(eligible, size=min(base_users, len(eligible)), replace=False)) if len(eligible) else []
    chosen_set = set(np.asarray(chosen).tolist())
    pick = base_rows[np.isin(data.user_idx[base_rows], list(chosen_set))] if chosen_set else np.zeros(0, np.int64)
    for _, pos in _latest_rows(data.user_idx, data.timestamp, pick).items():
        mask[pos] = True
    return mask


def score_slice(model, train: Dataset, known: Dataset, test: Dataset, is_feedback: np.ndarray, liked_threshold: float | None) -> dict:
    """NDCG@10 and hit@10 of `model` on `test`'s liked ratings (held-out ratings at or
    above `liked_threshold`), overall and per part ("feedback", "base").

    A user the model learned from (one with ratings in `train`, its training data) is
    answered from the model (the movies it saw them rate excluded); anyone else is folded in from their ratings in `known` (everything but the
    slice: what the service would have stored for them; those movies excluded), as the
    service answers a profile it was not trained on. A person the model cannot fold in
    counts as a miss. Ties count against the held-out movie.
    """
    threshold = liked_threshold if liked_threshold is not None else -np.inf
    known_csr = known.to_csr()
    trained = train.user_counts() > 0  # splits share the IdMap: every user is *in* it
    parts: dict[str, list[float]] = {"all": [], "feedback": [], "base": []}
    hits: dict[str, list[float]] = {"all": [], "feedback": [], "base": []}
    folded = 0
    for row in range(len(test.user_idx)):
        if float(test.rating[row]) < threshold:
            continue
        raw_user = test.users.raw(np.asarray([test.user_idx[row]]))[0]
        target = int(test.item_idx[row])  # test shares the item IdMap with the model's data
        model_items = model.items_
        target_idx = int(model_items.lookup(np.asarray([test.items.raw_ids[target]]))[0])
        try:
            if trained[int(test.user_idx[row])]:
                uidx = model.user_index(np.asarray([raw_user]))
                scores = np.asarray(model.score_indices(uidx), dtype=np.float64).reshape(-1)
                exclude = model.seen_[int(uidx[0])].indices
            else:
                u_known = int(known.users.lookup(np.asarray([raw_user]))[0])
                row_slice = known_csr[u_known]
                items = known.items.raw_ids[row_slice.indices]
                person = model.fold_in(items, row_slice.data.astype(np.float64))
                folded += 1
                scores = np.asarray(person.scores, dtype=np.float64)
                exclude = person.item_idx
        except MovierecError:
            rank = math.inf
        else:
            scores = scores.copy()
            scores[np.asarray(exclude, dtype=np.int64)] = -np.inf
            target_score = scores[target_idx]
            others = np.delete(scores, target_idx)
            # ties count against the held-out movie: no credit for a flat score
            rank = int((others >= target_score).sum()) if np.isfinite(target_score) else math.inf
        gain = 1.0 / math.log2(rank + 2) if rank < K else 0.0
        part = "feedback" if is_feedback[row] else "base"
        for key in ("all", part):
            parts[key].append(gain)
            hits[key].append(1.0 if rank < K else 0.0)
    out: dict[str, float] = {}
    for key in ("all", "feedback", "base"):
        suffix = "" if key == "all" else f" ({key})"
        out[f"{PRIMARY}{suffix}"] = float(np.mean(parts[key])) if parts[key] else float("nan")
        out[f"hit@{K}{suffix}"] = float(np.mean(hits[key])) if hits[key] else float("nan")
        out[f"n{suffix}"] = len(parts[key])
    out["folded in"] = folded
    return out


@dataclass
class Comparison:
    """The current and the new recipe scored on one held-out slice."""

    current: dict[str, float]
    new: dict[str, float]
    slice: dict[str, int]

    def not_worse(self) -> bool:
        """The new recipe's NDCG@10 on the slice is at least the current one's (a
        slice without liked ratings proves nothing, so the new one is not worse)."""
        a, b = self.current.get(PRIMARY), self.new.get(PRIMARY)
        if a is None or b is None or math.isnan(a) or math.isnan(b):
            return True
        return b >= a - 1e-12


def compare_recipes(model_name: str, params: dict[str, Any], data: Dataset, n_base: int, current_rows: np.ndarray,
                    *, seed: int, liked_threshold: float | None = None,
                    progress: Callable[[str], None] | None = None) -> Comparison:
    """Fit the current and the new recipe without the held-out slice and score both on it.

    Args:
        model_name, params: the model and its hyperparameters (both recipes use them).
        data: base data plus all feedback (`with_feedback`); its first `n_base` ratings are the base data.
        n_base: how many of `data`'s ratings are the base data.
        current_rows: boolean mask over `data`: the ratings the current version learned from.
        seed: seeds the slice's base users and the fits.
        liked_threshold: a held-out rating at or above it counts (None: the model's default).
        progress: called with a line before each fit.
    """
    from movierec.experiments.train import fit_model

    test_mask = held_out_slice(data, n_base, seed)
    is_feedback = np.arange(len(data.user_idx)) >= n_base
    test = data.subset(test_mask, name=f"{data.name}:slice")
    known = data.subset(~test_mask, name=f"{data.name}:known")
    results = {}
    for label, rows in (("current", current_rows), ("new", np.ones(len(data.user_idx), dtype=bool))):
        train = data.subset(rows & ~test_mask, name=f"{data.name}:{label}")
        if progress is not None:
            progress(f"fitting the {label} recipe without the held-out slice ({train.n_ratings:,} ratings)")
        model = fit_model(model_name, train, params=params, seed=seed).model
        threshold = liked_threshold if liked_threshold is not None else model.liked_threshold()
        results[label] = score_slice(model, train, known, test, is_feedback[test_mask], threshold)
    sizes = {"ratings": int(test_mask.sum()), "feedback": int((test_mask & is_feedback).sum()),
             "base": int((test_mask & ~is_feedback).sum())}
    return Comparison(current=results["current"], new=results["new"], slice=sizes)


__all__ = ["BASE_SLICE_USERS", "Comparison", "Feedback", "K", "PRIMARY", "compare_recipes", "feedback_rows",
           "held_out_slice", "profile_users", "score_slice", "with_feedback"]
