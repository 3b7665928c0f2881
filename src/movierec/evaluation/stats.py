"""Statistics over per-user metric values: paired tests, Holm correction, bootstrap CIs.

Models evaluated on the same split have one value per test user each; comparisons are
paired by user. Tests come from scipy.stats (paired t-test `ttest_rel`, Wilcoxon
signed-rank `wilcoxon`); p-values of a family of comparisons are Holm-corrected;
confidence intervals are seeded percentile bootstraps of the mean.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats as sps


def _paired(a, b) -> tuple[np.ndarray, np.ndarray]:
    """Align two per-user series (by index when both are pandas) and drop NaN pairs."""
    if isinstance(a, pd.Series) and isinstance(b, pd.Series):
        a, b = a.align(b, join="inner")
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError("paired samples must have the same length")
    ok = np.isfinite(a) & np.isfinite(b)
    return a[ok], b[ok]


def paired_ttest(a, b) -> tuple[float, float]:
    """Paired t-test of mean(a - b) != 0.

    Args:
        a, b: per-user values of two models, same users (pandas Series are aligned by
            index; NaN pairs are dropped).

    Returns:
        (t statistic, two-sided p-value); p = 1 when all differences are 0, NaN with
        fewer than two pairs.
    """
    x, y = _paired(a, b)
    if len(x) < 2:
        return float("nan"), float("nan")
    d = x - y
    if np.allclose(d, 0):
        return 0.0, 1.0
    if np.allclose(d, d[0]):  # constant non-zero difference: infinitely significant
        return float(np.sign(d[0]) * np.inf), 0.0
    res = sps.ttest_rel(x, y)
    return float(res.statistic), float(res.pvalue)


def wilcoxon_test(a, b) -> tuple[float, float]:
    """Wilcoxon signed-rank test of the paired differences (zero differences dropped,
    "wilcox" convention).

    Returns:
        (statistic, two-sided p-value); p = 1 when all differences are 0, NaN with
        fewer than two pairs.
    """
    x, y = _paired(a, b)
    if len(x) < 2:
        return float("nan"), float("nan")
    d = x - y
    if np.all(d == 0):
        return 0.0, 1.0
    res = sps.wilcoxon(x, y, zero_method="wilcox")
    return float(res.statistic), float(res.pvalue)


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm-Bonferroni step-down adjusted p-values (same order as given; NaN stays NaN).

    Reject hypothesis i at level alpha when adjusted[i] <= alpha; this controls the
    family-wise error rate over all the given comparisons.
    """
    p = np.asarray(pvalues, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    m = len(ok)
    if m == 0:
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    adj = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out[order] = np.minimum(adj, 1.0)
    return out


def bootstrap_ci(values, confidence: float = 0.95, n_resamples: int = 1000, seed: int = 0) -> tuple[float, float, float]:
    """Mean and percentile-bootstrap confidence interval of the mean over users.

    Args:
        values: per-user values, shape (n,); NaNs are dropped.
        confidence: e.g. 0.95 for a 95% interval.
        n_resamples: bootstrap resamples.
        seed: resampling seed (same seed, same interval).

    Returns:
        (mean, low, high); (nan, nan, nan) for no values, (v, v, v) for one value.
    """
    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return float("nan"), float("nan"), float("nan")
    mean = float(x.mean())
    if len(x) == 1 or np.all(x == x[0]):
        return mean, mean, mean
    res = sps.bootstrap((x,), np.mean, confidence_level=confidence, n_resamples=n_resamples,
                        method="percentile", vectorized=True, rng=np.random.default_rng(seed),
                        batch=max(1, min(n_resamples, 20_000_000 // max(len(x), 1))))
    return mean, float(res.confidence_interval.low), float(res.confidence_interval.high)


def confidence_intervals(per_user: Mapping[str, pd.DataFrame], columns: Sequence[str], confidence: float = 0.95,
                         n_resamples: int = 1000, seed: int = 0) -> dict[str, dict[str, list[float]]]:
    """Bootstrap CIs for several models and metrics.

    Returns:
        model -> metric -> [low, high].
    """
    out: dict[str, dict[str, list[float]]] = {}
    for name, frame in per_user.items():
        out[name] = {}
        for c in columns:
            if c in frame:
                _, lo, hi = bootstrap_ci(frame[c].to_numpy(), confidence, n_resamples, seed)
                out[name][c] = [lo, hi]
    return out


def compare_to_reference(per_user: Mapping[str, pd.DataFrame], reference: str, columns: Sequence[str],
                         alpha: float = 0.05) -> pd.DataFrame:
    """Paired tests of every model against `reference` on every metric column.

    Holm correction is applied over the whole family (all models x all columns) for
    each test separately.

    Returns:
        one row per (model, metric): model, reference, metric, mean, reference_mean,
        diff, n_users, t, p_t, p_t_holm, wilcoxon, p_w, p_w_holm, significant (both
        Holm-corrected p-values <= alpha), better (diff > 0).
    """
    if reference not in per_user:
        raise KeyError(f"reference model {reference!r} is not among the results")
    rows = []
    ref = per_user[reference]
    for name, frame in per_user.items():
        if name == reference:
            continue
        for c in columns:
            if c not in frame or c not in ref:
                continue
            a, b = _paired(frame[c], ref[c])
            t, pt = paired_ttest(frame[c], ref[c])
            w, pw = wilcoxon_test(frame[c], ref[c])
            rows.append({"model": name, "reference": reference, "metric": c,
                         "mean": float(a.mean()) if len(a) else np.nan,
                         "reference_mean": float(b.mean()) if len(b) else np.nan,
                         "diff": float((a - b).mean()) if len(a) else np.nan, "n_users": int(len(a)),
                         "t": t, "p_t": pt, "wilcoxon": w, "p_w": pw})
    cols = ["model", "reference", "metric", "mean", "reference_mean", "diff", "n_users", "t", "p_t",
            "p_t_holm", "wilcoxon", "p_w", "p_w_holm", "significant", "better"]
    if not rows:
        return pd.DataFrame(columns=cols)
    frame = pd.DataFrame(rows)
    frame["p_t_holm"] = holm(frame["p_t"].to_numpy())
    frame["p_w_holm"] = holm(frame["p_w"].to_numpy())
    frame["significant"] = (frame["p_t_holm"] <= alpha) & (frame["p_w_holm"] <= alpha)
    frame["better"] = frame["diff"] > 0
    return frame[cols]


__all__ = ["paired_ttest", "wilcoxon_test", "holm", "bootstrap_ci", "confidence_intervals", "compare_to_reference"]
