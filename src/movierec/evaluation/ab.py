"""The A/B report: per variant of an experiment, from its impressions and outcomes
(`movierec.data.ab_log`).

The person is the unit of randomisation, so every statistic treats people as the
independent draws: the rating rate of shown movies (ratings of shown movies / movies
shown) and the mean stars (stars / ratings) are ratios of per-person sums, with
delta-method standard errors (Deng, Knoblich and Lu, KDD 2018), 95% normal intervals and
a two-sided z-test of each variant's difference from the first (the control).

The sample-ratio-mismatch (SRM) check compares the people per variant with the shares
(chi-square goodness of fit); p < `SRM_ALPHA` flags broken bucketing or logging, and then
no difference should be trusted. An interleaved experiment credits each rated movie to the
variant that drafted it: per list, the variant with more credited ratings wins, and a
two-sided binomial (sign) test over the lists with a winner says whether one wins more often.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
from scipy import stats

from movierec.data.ab_log import AbLog, Impression, movie_key

#: SRM is flagged below this p-value (deliberately strict: the check runs on every report)
SRM_ALPHA = 0.001
#: the confidence of the intervals
CONFIDENCE = 0.95


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def ratio_estimate(numerator: np.ndarray, denominator: np.ndarray) -> dict[str, Any]:
    """sum(numerator) / sum(denominator) over people, with its delta-method standard error.

    Args:
        numerator, denominator: per-person sums, shape (n_people,).

    Returns:
        {"value", "se", "ci": [low, high]} (None where undefined: no denominator, or fewer
        than two people for the error).
    """
    x, y = np.asarray(numerator, dtype=float), np.asarray(denominator, dtype=float)
    n, total = len(x), float(y.sum())
    if n == 0 or total <= 0:
        return {"value": None, "se": None, "ci": [None, None]}
    ratio = float(x.sum()) / total
    if n < 2:
        return {"value": ratio, "se": None, "ci": [None, None]}
    residual = x - ratio * y
    se = math.sqrt(float(np.sum(residual**2)) / (n - 1) / n) / (total / n)
    z = float(stats.norm.ppf(0.5 + CONFIDENCE / 2))
    return {"value": ratio, "se": se, "ci": [ratio - z * se, ratio + z * se]}


def difference(treatment: dict[str, Any], control: dict[str, Any]) -> dict[str, Any]:
    """treatment - control of two `ratio_estimate`s: the difference, its 95% interval and a
    two-sided z-test's p-value (None where either is undefined)."""
    if treatment["se"] is None or control["se"] is None:
        return {"diff": None, "ci": [None, None], "p_value": None}
    diff = treatment["value"] - control["value"]
    se = math.hypot(treatment["se"], control["se"])
    z = float(stats.norm.ppf(0.5 + CONFIDENCE / 2))
    p = float(2 * stats.norm.sf(abs(diff) / se)) if se > 0 else (1.0 if diff == 0 else 0.0)
    return {"diff": diff, "ci": [diff - z * se, diff + z * se], "p_value": p}


def sample_ratio_check(people: Sequence[int], shares: Sequence[float]) -> dict[str, Any]:
    """Chi-square goodness of fit of the people per variant against the shares.

    Returns:
        {"chi2", "p_value", "flagged": p < SRM_ALPHA, "expected": people per variant}.
    """
    observed = np.asarray(people, dtype=float)
    total = observed.sum()
    expected = np.asarray(shares, dtype=float) / float(np.sum(shares)) * total
    if total == 0 or len(observed) < 2:
        return {"chi2": None, "p_value": None, "flagged": False, "expected": expected.tolist()}
    chi2, p = stats.chisquare(observed, expected)
    return {"chi2": float(chi2), "p_value": float(p), "flagged": bool(p < SRM_ALPHA), "expected": expected.tolist()}


def _per_person(impressions: Sequence[Impression]) -> dict[str, np.ndarray]:
    """Per person: impressions, movies shown, shown movies rated, their stars."""
    people: dict[str, list[float]] = {}
    for imp in impressions:
        row = people.setdefault(imp.person, [0.0, 0.0, 0.0, 0.0])
        row[0] += 1
        row[1] += len(imp.movies)
        row[2] += len(imp.ratings)
        row[3] += sum(imp.ratings.values())
    table = np.array(list(people.values()), dtype=float).reshape(-1, 4)
    return {"impressions": table[:, 0], "shown": table[:, 1], "rated": table[:, 2], "stars": table[:, 3]}


def _split_report(definition: dict[str, Any], impressions: Sequence[Impression]) -> dict[str, Any]:
    names = [v["name"] for v in definition["variants"]]
    shares = [float(v["share"]) for v in definition["variants"]]
    by_variant: dict[str, list[Impression]] = {name: [] for name in names}
    seen: dict[str, set[str]] = {}
    for imp in impressions:
        by_variant.setdefault(imp.variant, []).append(imp)
        seen.setdefault(imp.person, set()).add(imp.variant)
    rows = []
    control: dict[str, Any] | None = None
    for name in names:
        table = _per_person(by_variant[name])
        rate = ratio_estimate(table["rated"], table["shown"])
        stars = ratio_estimate(table["stars"], table["rated"])
        row = {"variant": name, "share": shares[names.index(name)], "people": int(len(table["shown"])),
               "impressions": int(table["impressions"].sum()), "shown": int(table["shown"].sum()),
               "rated": int(table["rated"].sum()), "rating_rate": rate, "mean_stars": stars}
        if control is None:
            control = row
        else:
            row["vs_control"] = {"rating_rate": difference(rate, control["rating_rate"]),
                                 "mean_stars": difference(stars, control["mean_stars"])}
        rows.append(row)
    srm = sample_ratio_check([r["people"] for r in rows], shares)
    return {"kind": "split", "control": names[0], "variants": rows, "srm": srm,
            "unknown_variants": sorted(set(by_variant) - set(names)),
            "switched_people": sum(1 for variants in seen.values() if len(variants) > 1)}


def _interleaved_report(definition: dict[str, Any], impressions: Sequence[Impression]) -> dict[str, Any]:
    names = [v["name"] for v in definition["variants"]]
    wins = [0, 0]
    ties = 0
    credited = [0, 0]
    stars: list[list[float]] = [[], []]
    for imp in impressions:
        teams = imp.teams or []
        got = [0, 0]
        for movie, team in zip(imp.movies, teams):
            given = imp.ratings.get(movie_key(movie))
            if given is None or team not in names:
                continue
            side = names.index(team)
            got[side] += 1
            stars[side].append(given)
        credited[0] += got[0]
        credited[1] += got[1]
        if got[0] > got[1]:
            wins[0] += 1
        elif got[1] > got[0]:
            wins[1] += 1
        elif got[0] > 0:
            ties += 1
    decided = wins[0] + wins[1]
    p = float(stats.binomtest(wins[1], decided, 0.5).pvalue) if decided else None
    return {"kind": "interleaved", "control": names[0],
            "people": len({imp.person for imp in impressions}), "impressions": len(impressions),
            "variants": [{"variant": names[i], "credited_ratings": credited[i], "wins": wins[i],
                          "mean_stars": _finite(float(np.mean(stars[i]))) if stars[i] else None}
                         for i in (0, 1)],
            "ties": ties, "p_value": p}


def experiment_report(name: str, definition: dict[str, Any], impressions: Sequence[Impression]) -> dict[str, Any]:
    """The report of one experiment (JSON-able): for a split, per variant people,
    impressions, movies shown and rated, `rating_rate` and `mean_stars` (each {"value",
    "se", "ci"}), `vs_control` (difference, interval, p-value), the SRM check and the people
    seen in more than one variant; for an interleaved experiment, credited ratings and wins
    per variant with a sign test."""
    body = (_interleaved_report if definition.get("interleave") else _split_report)(definition, impressions)
    return {"experiment": name, **body}


def ab_report(log: AbLog) -> list[dict[str, Any]]:
    """The report (`experiment_report`) of every experiment in `log`, by name."""
    return [experiment_report(name, definition, log.impressions(name))
            for name, definition in log.experiments().items()]


__all__ = ["ab_report", "experiment_report", "ratio_estimate", "difference", "sample_ratio_check", "SRM_ALPHA",
           "CONFIDENCE"]
