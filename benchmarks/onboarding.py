"""What onboarding is worth: NDCG@10 of the first list after picking taste groups (issue 18, item 6).

For ML-100K, in one run, per model of ``--models`` (side by side):

1. A seeded user holdout in ``--folds`` folds: the users are dealt into folds (seed
   ``--seed``); for each fold, its users are new people and the model is trained on the
   other users' ratings only (`movierec.artifacts.train`). Every user is new once.
2. Each new person's ratings, in time order, are cut in two: the first ``--history``
   share is what they know and like (their history), the rest is held out. Relevant:
   held-out movies rated >= ``--threshold``. People with nothing relevant held out are
   left out (NDCG is undefined for them).
3. The person picks taste groups as they would on the page: the groups
   (`Answerer.groups(--groups)`, what GET /onboarding shows) whose shown movies they rated
   highly in their history (more rated >= threshold than below it), best first, at most
   ``--max-picks``. Someone for whom no group is like that picks one group by its label:
   the one whose label's genres most of their liked history movies have.
4. Three first lists of 10, each through the answer layer the page uses, every one with
   the person's history denied (`Filters(deny=...)`, the all-unrated-movies protocol: a
   movie rated before the cut is never held out):
   * ``popularity``: a person who gave nothing (`NewPerson()`: the page before any pick);
   * ``onboarding``: `Answerer.picked_groups(picks, ...)` (POST /onboarding's path: the
     picked groups' movies folded in as liked);
   * ``history``: `NewPerson(rated=history)` (every rating of the history folded in): an
     upper reference, what the page answers once the person has rated all of it.
5. NDCG@10 and HR@10 per person; mean with a bootstrap 95% CI; paired t-test and
   Wilcoxon of onboarding against popularity.

Not a timing benchmark: the figures do not depend on the machine (the load average is
printed for the record only).

Run:  .venv/bin/python benchmarks/onboarding.py
      .venv/bin/python benchmarks/onboarding.py --models ease --groups 8 --max-picks 2 --out /tmp/onboarding.json
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("MOVIEREC_MIRROR", str(Path(__file__).resolve().parents[2] / "shared" / "datasets"))

import numpy as np  # noqa: E402

from movierec.answers import MAX_GIVEN, Answerer, Filters, NewPerson, Query  # noqa: E402
from movierec.artifacts.train import train  # noqa: E402
from movierec.data import load_movielens  # noqa: E402
from movierec.data.dataset import Dataset  # noqa: E402
from movierec.evaluation.metrics import hit_rate_at_k, ndcg_at_k  # noqa: E402
from movierec.evaluation.stats import bootstrap_ci, paired_ttest, wilcoxon_test  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from render import write_results  # noqa: E402

METHODS = ("popularity", "onboarding", "history")
K = 10


@dataclass(frozen=True)
class Person:
    """One held-out user: history (what they tell) and held-out relevant movies, item indices."""

    user_id: int
    history_idx: np.ndarray
    history_rating: np.ndarray
    relevant_idx: np.ndarray


def holdout(ds: Dataset, folds: int, fold: int, history: float, threshold: float,
            seed: int) -> tuple[Dataset, list[Person]]:
    """The training data (every rating of the other users) and the held-out people of one fold.

    Args:
        ds: the whole dataset.
        folds: the users are dealt into this many folds (a seeded permutation of the user
            indices); every user is held out in exactly one fold.
        fold: which fold is held out, 0..folds-1.
        history: share of each held-out user's ratings, earliest first, kept as history.
        threshold: held-out ratings at or above it are relevant.
        seed: the permutation's seed.
    """
    order = np.random.default_rng(seed).permutation(ds.n_users)
    test_users = np.sort(order[fold::folds])
    is_test = np.isin(ds.user_idx, test_users)
    people = []
    for u in test_users.tolist():
        rows = np.flatnonzero(ds.user_idx == u)
        rows = rows[np.lexsort((ds.item_idx[rows], ds.timestamp[rows]))]  # time order, ties by movie
        cut = max(1, int(np.ceil(history * len(rows))))
        past, future = rows[:cut][-MAX_GIVEN:], rows[cut:]
        relevant = ds.item_idx[future][ds.rating[future] >= threshold]
        if len(relevant) == 0:
            continue
        people.append(Person(int(ds.users.raw_ids[u]), ds.item_idx[past].astype(np.int64),
                             ds.rating[past].astype(np.float64), np.unique(relevant).astype(np.int64)))
    return ds.subset(~is_test, name=f"{ds.name} without fold {fold}'s users"), people


def pick_groups(answerer: Answerer, groups, person: Person, threshold: float, max_picks: int) -> tuple[list[int], str]:
    """The taste groups a person picks, and how: "movies" (more of its shown movies rated
    >= threshold than below it in their history; the most such movies first) or "label"
    (no group like that: the one group whose label's genres most of their liked history
    movies have)."""
    rated = dict(zip(person.history_idx.tolist(), person.history_rating.tolist()))
    scored = []
    for g in groups:
        stars = [rated[i] for i in g.movie_idx.tolist() if i in rated]
        liked = sum(s >= threshold for s in stars)
        if liked > len(stars) - liked:
            scored.append((-(2 * liked - len(stars)), -liked, g.group_id))
    if scored:
        return [gid for *_, gid in sorted(scored)[:max_picks]], "movies"
    liked_idx = person.history_idx[person.history_rating >= threshold]
    if len(liked_idx) == 0:
        liked_idx = person.history_idx
    genre_matrix = np.asarray(answerer.catalog.genre_matrix)
    column = {name: j for j, name in enumerate(answerer.catalog.genre_names)}
    share = []
    for g in groups:  # the genres the label names ("Children's & Animation"; none in "Like <title>")
        cols = [column[name] for name in g.label.split(" & ") if name in column]
        have = genre_matrix[liked_idx][:, cols].all(axis=1).mean() if cols else 0.0
        share.append((-float(have), g.group_id))
    return [min(share)[1]], "label"


def first_lists(answerer: Answerer, groups, people: list[Person], n_groups: int, threshold: float,
                max_picks: int) -> tuple[dict[str, np.ndarray], dict[str, int], list[list[int]]]:
    """Per method, the first K movies (item indices, shape (n_people, K), -1 pads), how
    the picks were made, and the picks."""
    index_of = {movie: i for i, movie in enumerate(answerer.item_ids.tolist())}
    lists = {m: np.full((len(people), K), -1, dtype=np.int64) for m in METHODS}
    how = {"movies": 0, "label": 0}
    picks_all = []
    for row, person in enumerate(people):
        history_ids = tuple(answerer.item_ids[person.history_idx].tolist())
        deny = Filters(deny=history_ids)
        picks, by = pick_groups(answerer, groups, person, threshold, max_picks)
        how[by] += 1
        picks_all.append(picks)
        answers = {
            "popularity": answerer.answer(Query(NewPerson(), k=K, filters=deny)),
            "onboarding": answerer.picked_groups(picks, n_groups, k=K, filters=deny),
            "history": answerer.answer(Query(NewPerson(rated=tuple(zip(history_ids, person.history_rating.tolist()))),
                                             k=K, filters=deny)),
        }
        for method, answer in answers.items():
            ids = [index_of[r.movie.movie_id] for r in answer.rows][:K]
            lists[method][row, : len(ids)] = ids
    return lists, how, picks_all


def run_model(name: str, ds: Dataset, args, log) -> dict:
    """Every fold for one model: per-person figures pooled over the folds."""
    relevant, lists, how, picks, folds = [], {m: [] for m in METHODS}, {"movies": 0, "label": 0}, [], []
    for fold in range(args.folds):
        train_ds, people = holdout(ds, args.folds, fold, args.history, args.threshold, args.seed)
        t0 = time.perf_counter()
        answerer = Answerer(train(name, train_ds, seed=args.seed))
        fit_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        groups = answerer.groups(args.groups)
        groups_s = time.perf_counter() - t0
        log(f"  {name}, fold {fold}: {len(people)} people, trained in {fit_s:.1f}s, {len(groups)} groups in "
            f"{groups_s:.2f}s: " + "; ".join(g.label for g in groups))
        fold_lists, fold_how, fold_picks = first_lists(answerer, groups, people, args.groups, args.threshold,
                                                       args.max_picks)
        for m in METHODS:
            lists[m].append(fold_lists[m])
        for by, n in fold_how.items():
            how[by] += n
        picks += fold_picks
        relevant += [set(p.relevant_idx.tolist()) for p in people]
        folds.append({"fold": fold, "people": len(people), "fit_s": fit_s, "groups_s": groups_s,
                      "groups": [{"group_id": g.group_id, "label": g.label, "genres": g.genres,
                                  "movies": [answerer.movies[i].title for i in g.movie_idx.tolist()]}
                                 for g in groups]})
    per_user = {}
    for m in METHODS:
        ranked = np.concatenate(lists[m])
        per_user[m] = {"ndcg": ndcg_at_k(ranked, relevant, K), "hr": hit_rate_at_k(ranked, relevant, K)}
    summary = {}
    for m in METHODS:
        summary[m] = {}
        for metric, values in per_user[m].items():
            mean, low, high = bootstrap_ci(values, seed=args.seed)
            summary[m][f"{metric}@{K}"] = {"mean": mean, "ci95": [low, high]}
    tests = {}
    for metric in ("ndcg", "hr"):
        a, b = per_user["onboarding"][metric], per_user["popularity"][metric]
        tests[f"{metric}@{K}"] = {"t_p": paired_ttest(a, b)[1], "wilcoxon_p": wilcoxon_test(a, b)[1],
                                  "better": int((a > b).sum()), "worse": int((a < b).sum())}
    return {"model": name, "n_people": len(relevant), "picked_by": how,
            "mean_picks": float(np.mean([len(p) for p in picks])), "summary": summary,
            "onboarding_vs_popularity": tests, "folds": folds}


def table(results: list[dict]) -> str:
    """The methods as rows, the models side by side."""
    head = "| method | " + " | ".join(f"{r['model']} NDCG@{K} [95% CI] | {r['model']} HR@{K}" for r in results) + " |"
    lines = [head, "| --- |" + " ---: | ---: |" * len(results)]
    for m in METHODS:
        cells = []
        for r in results:
            nd, hr = r["summary"][m][f"ndcg@{K}"], r["summary"][m][f"hr@{K}"]
            cells.append(f"{nd['mean']:.4f} [{nd['ci95'][0]:.4f}, {nd['ci95'][1]:.4f}] | {hr['mean']:.3f}")
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    ratios = []
    for r in results:
        s, t = r["summary"], r["onboarding_vs_popularity"][f"ndcg@{K}"]
        pop, onb, hist = (s[m][f"ndcg@{K}"]["mean"] for m in METHODS)
        gap = (onb - pop) / (hist - pop) if hist != pop else float("nan")
        ratios.append(f"{r['model']}: onboarding / popularity {onb / pop:.2f}x (paired t p={t['t_p']:.1e}, "
                      f"Wilcoxon p={t['wilcoxon_p']:.1e}; better for {t['better']}, worse for {t['worse']}); "
                      f"{100 * gap:.0f}% of the way from popularity to the whole history; "
                      f"picks: {r['picked_by']['movies']} by movies, {r['picked_by']['label']} by label, "
                      f"{r['mean_picks']:.2f} groups each")
    return "\n".join(lines) + "\n\n" + "\n".join(ratios)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="ml-100k")
    ap.add_argument("--models", default="ease,als", help="comma-separated registry names (models that fold in)")
    ap.add_argument("--folds", type=int, default=5, help="the users are dealt into this many folds (seeded); "
                                                        "each fold is held out once, the model trained without it")
    ap.add_argument("--history", type=float, default=0.5, help="share of each held-out user's ratings, earliest first, "
                                                              "they tell; the rest is held out")
    ap.add_argument("--threshold", type=float, default=4.0, help="stars at or above it: liked / relevant")
    ap.add_argument("--groups", type=int, default=8, help="taste groups shown (the page shows 8)")
    ap.add_argument("--max-picks", type=int, default=3, help="most groups a person picks")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="results file (default benchmarks/results/onboarding.json)")
    args = ap.parse_args(argv)
    if args.folds < 2:
        ap.error("--folds must be at least 2")
    if not 0 < args.history < 1:
        ap.error("--history must lie strictly between 0 and 1")
    if args.max_picks < 1:
        ap.error("--max-picks must be at least 1")
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    load = os.getloadavg()
    print(f"load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} ({os.cpu_count()} CPUs)", flush=True)
    t0 = time.perf_counter()
    ds = load_movielens(args.dataset)
    results = [run_model(name.strip(), ds, args, log) for name in args.models.split(",") if name.strip()]
    n_people = results[0]["n_people"] if results else 0
    print(f"\n**{args.dataset}, onboarding** ({n_people} held-out users in {args.folds} folds, seed {args.seed}; "
          f"history: the first {args.history:.0%} of their ratings in time; "
          f"relevant: later ratings >= {args.threshold:g}; {args.groups} groups, at most {args.max_picks} picked)\n")
    print(table(results))
    total = time.perf_counter() - t0
    load = os.getloadavg()
    print(f"\nload average at end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; total {total:.0f}s", flush=True)
    figures = {"dataset": args.dataset, "k": K, "n_people": n_people, "seed": args.seed, "folds": args.folds,
               "history": args.history, "threshold": args.threshold, "groups": args.groups,
               "max_picks": args.max_picks, "results": results, "total_seconds": total}
    path = write_results("onboarding", figures, args.out)
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
