"""Shared by the text-ID service tests: a person's own data as it comes, served as it is.

`own_ratings(folder, ml100k)` writes ML-100K's real ratings as someone's own files: IMDb-style
movie IDs (movie i -> "tt%07d"), names as user IDs (user 1 "alice", 2 "bob", ... 11
"alice1", ...) and ten stars (r -> 2r on a 1-10 scale), with a movies file of titles and
genres. `own_registry(root, ml100k)` trains EASE on it (a second) and stores it as "own";
its manifest maps two feedback profiles to users, as `movierec retrain` does (PROFILES, UNTIL).
"""

from __future__ import annotations

import csv
from pathlib import Path

NAME = "own"
NAMES = ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy")
STAR_WARS, JEDI, FARGO, TOY_STORY, EMPIRE = "tt0000050", "tt0000181", "tt0000100", "tt0000001", "tt0000172"
#: the newest feedback rating the served version was trained on (Unix seconds)
UNTIL = 1_000
#: profiles the served version was retrained from -> the users they became
PROFILES = {"retrained-alice-01": "alice", "retrained-bob-0001": "bob"}


def user_name(user: int) -> str:
    """ML-100K user 1 -> "alice", 2 -> "bob", ..., 11 -> "alice1"."""
    return NAMES[(user - 1) % len(NAMES)] + (str((user - 1) // len(NAMES)) if user > len(NAMES) else "")


def movie_tt(movie: int) -> str:
    """ML-100K movie 50 -> "tt0000050"."""
    return f"tt{movie:07d}"


def own_ratings(folder: Path, ml100k) -> tuple[Path, Path]:
    """ML-100K's ratings and movies as a person's own files (text IDs, 1-10 stars): (ratings, movies)."""
    folder.mkdir(parents=True, exist_ok=True)
    ratings, movies = folder / "ratings.csv", folder / "movies.csv"
    users = ml100k.users.raw_ids[ml100k.user_idx].tolist()
    items = ml100k.items.raw_ids[ml100k.item_idx].tolist()
    with open(ratings, "w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(["userId", "movieId", "rating", "timestamp"])
        for u, i, r, t in zip(users, items, ml100k.rating.tolist(), ml100k.timestamp.tolist()):
            out.writerow([user_name(u), movie_tt(i), f"{2 * r:g}", int(t)])
    catalog = ml100k.catalog
    with open(movies, "w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(["movieId", "title", "genres"])
        for j, i in enumerate(ml100k.items.raw_ids.tolist()):
            year, title = int(catalog.years[j]), str(catalog.titles[j])
            out.writerow([movie_tt(i), f"{title} ({year})" if year > 0 else title, "|".join(catalog.genres[j])])
    return ratings, movies


def own_bundle(folder: Path, ml100k):
    """EASE trained on the own files, with the retrained profiles in its manifest."""
    from movierec.artifacts.train import train
    from movierec.data import load_ratings

    ratings, movies = own_ratings(folder, ml100k)
    data = load_ratings(ratings, movies=movies, rating_range=(1, 10))
    bundle = train("ease", data, seed=0)
    bundle.manifest["feedback"] = {"db": str(folder / "feedback.sqlite3"), "profiles": dict(PROFILES),
                                   "until": UNTIL, "n_ratings": 3}
    return bundle


def own_registry(root: Path, ml100k):
    """A registry holding the own-data model as "own" version 1: (registry folder, bundle)."""
    from movierec.artifacts import ModelRegistry

    bundle = own_bundle(root.parent / f"{root.name}-data", ml100k)
    ModelRegistry(root).add(bundle, NAME)
    return root, ModelRegistry(root).load(NAME)
