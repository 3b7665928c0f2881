"""Synthetic MovieLens-like ratings from planted low-rank tastes, for tests and scale benchmarks.

The generator plants a biased matrix-factorisation model

    score[u, i] = mu + b_user[u] + b_item[i] + p[u] . q[i]        (p, q of length `dim`)

and observes `score + noise * N(0, 1)`, rounded to the rating scale (half stars 0.5..5 or
whole stars 1..5) and clipped. Which movies a user rates follows a Zipf popularity law over
items (popularity rank independent of movieId); how many they rate follows a lognormal activity
law (at least one each, never more than the catalog). Each user's ratings fall in a window of
plausible Unix timestamps inside the span, and rows are sorted by (userId, timestamp).

IDs are MovieLens-style raw IDs: userId 1..n_users, movieId 1..n_items. The noise-only RMSE
floor (the planted score without noise, rounded and clipped as the ratings are, against the
written ratings) is returned in the metadata: no model can be expected to beat it by much.

Generation runs in blocks of users, each with its own random stream, so the output depends
only on the parameters and the seed, and a 25M-rating file is written without holding it whole.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd

from movierec.data.atomic import default_permissions, atomic_write
from movierec.errors import ConfigError

GENERATOR_VERSION = 1
# ml-25m's span: the first and the last rating's day (Unix seconds)
DEFAULT_START = 789_652_009  # 1995-01-09
DEFAULT_END = 1_574_327_703  # 2019-11-21
_BLOCK_RATINGS = 1 << 20  # ratings per generation block (fixed: part of the output's definition)
_SCALES = {"half": (0.5, 5.0, 0.5), "int": (1.0, 5.0, 1.0)}
CSV_HEADER = b"userId,movieId,rating,timestamp\n"


@dataclass(frozen=True)
class SynthParams:
    """All parameters of one synthetic dataset (recorded in the metadata)."""

    n_users: int
    n_items: int
    n_ratings: int
    seed: int = 0
    noise: float = 0.5
    dim: int = 8
    scale: str = "half"
    zipf: float = 1.0
    user_sigma: float = 1.2
    mean: float = 3.5
    user_bias_sd: float = 0.35
    item_bias_sd: float = 0.3
    taste_sd: float = 0.7
    start: int = DEFAULT_START
    end: int = DEFAULT_END

    def validate(self) -> None:
        """Raise ConfigError (one sentence) for impossible or out-of-range parameters."""
        for name in ("n_users", "n_items", "n_ratings"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
                what = name[2:]
                raise ConfigError(f"The number of {what} must be a positive whole number, got {value!r}.")
        if self.n_ratings > self.n_users * self.n_items:
            raise ConfigError(
                f"{self.n_ratings:,} ratings cannot fit in {self.n_users:,} users x {self.n_items:,} movies "
                f"without duplicates; ask for at most {self.n_users * self.n_items:,}."
            )
        if self.n_ratings < self.n_users:
            raise ConfigError(
                f"Every user rates at least one movie, so {self.n_users:,} users need at least "
                f"{self.n_users:,} ratings (got {self.n_ratings:,})."
            )
        if self.n_users > 2**31 - 1 or self.n_items > 2**31 - 1:
            raise ConfigError("At most 2,147,483,647 users and movies are supported.")
        if not (isinstance(self.seed, (int, np.integer)) and self.seed >= 0):
            raise ConfigError(f"The seed must be a non-negative whole number, got {self.seed!r}.")
        if not (isinstance(self.dim, (int, np.integer)) and self.dim >= 1):
            raise ConfigError(f"The taste dimension must be at least 1, got {self.dim!r}.")
        for name in ("noise", "zipf", "user_sigma", "user_bias_sd", "item_bias_sd", "taste_sd"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ConfigError(f"{name.replace('_', ' ').capitalize()} must be a finite number >= 0, got {value!r}.")
        if self.scale not in _SCALES:
            raise ConfigError(f"The rating scale must be 'half' (0.5-5 stars) or 'int' (1-5 stars), got {self.scale!r}.")
        if not self.start < self.end:
            raise ConfigError(f"The time span must start before it ends (start {self.start}, end {self.end}).")

    @property
    def rating_range(self) -> tuple[float, float]:
        low, high, _ = _SCALES[self.scale]
        return low, high


@dataclass
class _Plant:
    """The planted model and per-user plan shared by every block."""

    counts: np.ndarray  # ratings per user, shape (n_users,), int64
    user_bias: np.ndarray  # (n_users,) float32
    item_bias: np.ndarray  # (n_items,) float32, by item index (movieId - 1)
    user_factors: np.ndarray  # (n_users, dim) float32
    item_factors: np.ndarray  # (n_items, dim) float32
    threshold: np.ndarray  # alias-method thresholds over item indices, (n_items,) float64
    alias: np.ndarray  # alias-method partners, (n_items,) int32
    item_log_p: np.ndarray  # log popularity, (n_items,)
    draws_needed: np.ndarray  # (n_users,) with-replacement draws expected to give counts[u] distinct items
    t_start: np.ndarray  # (n_users,) int64 first possible timestamp
    t_len: np.ndarray  # (n_users,) int64 length of the user's active window, seconds
    blocks: list[tuple[int, int]]  # [user_lo, user_hi) ranges


# -- planning ----------------------------------------------------------------------------
def _allocate_counts(weights: np.ndarray, total: int, cap: int) -> np.ndarray:
    """Integer counts >= 1 summing to `total`, proportional to `weights`, none above `cap`."""
    n = len(weights)
    counts = np.ones(n, dtype=np.int64)
    remaining = total - n
    room = np.full(n, cap - 1, dtype=np.int64)
    share = np.zeros(n, dtype=np.float64)
    active = room > 0
    # water-filling: give proportional shares, pin users that overflow their room, repeat
    while remaining > 0 and active.any():
        w = np.where(active, weights, 0.0)
        alloc = w / w.sum() * remaining
        over = active & (alloc >= room)
        if not over.any():
            share += alloc
            remaining = 0
            break
        share[over] = room[over]
        remaining -= int(room[over].sum())
        active &= ~over
    floor = np.minimum(np.floor(share).astype(np.int64), room)
    counts += floor
    left = total - int(counts.sum())
    if left > 0:  # largest remainders first, among users with room left
        frac = np.where(counts < cap, share - floor, -1.0)
        top = np.argsort(-frac, kind="stable")[:left]
        counts[top] += 1
    left = total - int(counts.sum())
    while left != 0:  # float rounding safety net; touches at most a handful of users
        step = 1 if left > 0 else -1
        ok = np.flatnonzero(counts < cap) if step > 0 else np.flatnonzero(counts > 1)
        k = min(abs(left), len(ok))
        counts[ok[:k]] += step
        left -= step * k
    return counts


def _draws_for_distinct(p: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """With-replacement draws expected to yield `counts` distinct items under popularity `p`.

    Uses E[distinct after n draws] = sum_i 1 - (1 - p_i)^n on a log grid of n, inverted by
    interpolation; returns +inf where the target needs more than 8 * n_items draws.
    """
    n_items = len(p)
    top = 8.0 * n_items
    grid = np.unique(np.concatenate([np.arange(1, 65), np.geomspace(64, top, 160)]))
    # group items with similar p to keep this cheap for large catalogs
    if n_items > 4096:
        order = np.sort(p)
        edges = np.linspace(0, n_items, 4097).astype(int)
        reps = np.array([order[a:b].mean() for a, b in zip(edges[:-1], edges[1:])])
        sizes = np.diff(edges).astype(np.float64)
    else:
        reps, sizes = p, np.ones(n_items)
    log1m = np.log1p(-np.minimum(reps, 1 - 1e-12))
    expected = np.array([(sizes * -np.expm1(n * log1m)).sum() for n in grid])
    expected = np.maximum.accumulate(expected)
    need = np.interp(counts.astype(np.float64), expected, grid, right=np.inf)
    need[counts > expected[-1]] = np.inf
    return need


def _plan(params: SynthParams) -> _Plant:
    rng = np.random.default_rng(np.random.SeedSequence([params.seed, 0]))
    U, M, D = params.n_users, params.n_items, params.dim
    weights = rng.lognormal(0.0, params.user_sigma, U) if params.user_sigma > 0 else np.ones(U)
    counts = _allocate_counts(weights, params.n_ratings, M)
    # Zipf popularity by rank; ranks are a random permutation of the movieIds
    rank = rng.permutation(M)
    p = 1.0 / np.power(rank + 1.0, params.zipf)
    p /= p.sum()
    threshold, alias = _alias_table(p)
    # planted tastes: p.q has standard deviation taste_sd
    factor_sd = (params.taste_sd**2 / D) ** 0.25 if params.taste_sd > 0 else 0.0
    user_factors = (rng.standard_normal((U, D), dtype=np.float32) * factor_sd).astype(np.float32)
    item_factors = (rng.standard_normal((M, D), dtype=np.float32) * factor_sd).astype(np.float32)
    user_bias = (rng.standard_normal(U, dtype=np.float32) * params.user_bias_sd).astype(np.float32)
    item_bias = (rng.standard_normal(M, dtype=np.float32) * params.item_bias_sd).astype(np.float32)
    # activity windows: lognormal length (median two days), placed uniformly in the span
    span = params.end - params.start
    t_len = np.minimum(rng.lognormal(math.log(2 * 86400), 2.0, U), span).astype(np.int64)
    t_start = params.start + (rng.random(U) * (span - t_len + 1)).astype(np.int64)
    # blocks of users holding about _BLOCK_RATINGS ratings each
    ends = np.cumsum(counts)
    cuts = np.searchsorted(ends, np.arange(_BLOCK_RATINGS, params.n_ratings, _BLOCK_RATINGS), side="left") + 1
    bounds = np.unique(np.concatenate([[0], cuts, [U]]))
    blocks = [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
    return _Plant(
        counts=counts, user_bias=user_bias, item_bias=item_bias, user_factors=user_factors,
        item_factors=item_factors, threshold=threshold, alias=alias, item_log_p=np.log(p), draws_needed=_draws_for_distinct(p, counts),
        t_start=t_start, t_len=t_len, blocks=blocks,
    )


# -- sampling ----------------------------------------------------------------------------
def _alias_table(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Walker/Vose alias table for O(1) draws from the discrete distribution `p`.

    Returns (threshold, alias): draw a slot j uniformly and u ~ U(0, 1); the item is j when
    u < threshold[j], else alias[j].
    """
    n = len(p)
    scaled = p * n
    threshold = np.ones(n, dtype=np.float64)
    alias = np.arange(n, dtype=np.int32)
    small = [int(j) for j in np.flatnonzero(scaled < 1.0)]
    large = [int(j) for j in np.flatnonzero(scaled >= 1.0)]
    sc = scaled.tolist()
    while small and large:
        s, g = small.pop(), large[-1]
        threshold[s] = sc[s]
        alias[s] = g
        sc[g] = sc[g] + sc[s] - 1.0
        if sc[g] < 1.0:
            large.pop()
            small.append(g)
    return threshold, alias


def _draw_items(rng: np.random.Generator, plant: "_Plant", n: int) -> np.ndarray:
    """n item indices drawn with replacement by popularity (alias method), int32."""
    n_items = len(plant.alias)
    slot = rng.integers(0, n_items, n, dtype=np.int32)
    keep = rng.random(n) < plant.threshold[slot]
    return np.where(keep, slot, plant.alias[slot])


def _first_distinct(user: np.ndarray, item: np.ndarray, n_items: int) -> tuple[np.ndarray, np.ndarray]:
    """The distinct (user, item) pairs of a sequence of draws, first occurrences in draw order."""
    keys = user.astype(np.int64) * n_items + item
    first = ~pd.Series(keys, copy=False).duplicated(keep="first").to_numpy()
    return user[first], item[first]


def _take_first(user: np.ndarray, item: np.ndarray, want: np.ndarray, lo: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Keep at most want[u - lo] leading pairs of each user; also return each user's shortfall.

    `user` must be non-decreasing (each user's pairs contiguous).
    """
    n = len(want)
    local = user - lo
    have = np.bincount(local, minlength=n)
    starts = np.concatenate([[0], np.cumsum(have)[:-1]])
    rank = np.arange(len(user)) - np.repeat(starts, have)
    keep = rank < want[local]
    return user[keep], item[keep], np.maximum(want - have, 0)


def _sample_items(rng: np.random.Generator, plant: _Plant, lo: int, hi: int, n_items: int) -> tuple[np.ndarray, np.ndarray]:
    """Distinct items for users lo..hi-1, drawn successively by popularity without replacement.

    Returns (user index, item index) int32 arrays grouped by user, each user's items in the
    order drawn (popular ones tend to come first); user u gets counts[u] items.
    """
    want = plant.counts[lo:hi]
    need = plant.draws_needed[lo:hi]
    heavy = ~np.isfinite(need) | (need > 4 * n_items)
    users = np.arange(lo, hi, dtype=np.int32)
    parts_u: list[np.ndarray] = []
    parts_i: list[np.ndarray] = []
    # light users: draw with replacement (a little more than expected), keep the first distinct ones
    light = ~heavy
    if light.any():
        light_want = np.where(light, want, 0)
        n_draw = np.where(light, np.ceil(np.nan_to_num(need, posinf=0) * 1.08 + 4).astype(np.int64), 0)
        u = np.repeat(users, n_draw)
        u, i = _first_distinct(u, _draw_items(rng, plant, len(u)), n_items)
        u, i, short = _take_first(u, i, light_want, lo)
        while short.any():  # rare top-ups, appended after each user's draws so far
            extra = np.ceil(short * 1.5 + 8).astype(np.int64) * (short > 0)
            eu = np.repeat(users, extra)
            cu, ci = np.concatenate([u, eu]), np.concatenate([i, _draw_items(rng, plant, len(eu))])
            order = np.argsort(cu, kind="stable")
            u, i = _first_distinct(cu[order], ci[order], n_items)
            u, i, short = _take_first(u, i, light_want, lo)
        parts_u.append(u)
        parts_i.append(i)
    # heavy users (a large share of the catalog): Gumbel top-k, the same successive sampling, exact
    heavy_users = users[heavy]
    if len(heavy_users):
        rows = max(1, (4 << 20) // n_items)
        for a in range(0, len(heavy_users), rows):
            batch = heavy_users[a:a + rows]
            keys = plant.item_log_p[None, :] + rng.gumbel(size=(len(batch), n_items))
            order = np.argsort(-keys, axis=1, kind="stable")
            k = plant.counts[batch]
            mask = np.arange(n_items)[None, :] < k[:, None]
            parts_u.append(np.repeat(batch, k))
            parts_i.append(order[mask].astype(np.int32))
    u = np.concatenate(parts_u)
    i = np.concatenate(parts_i)
    if len(parts_u) > 1:
        order = np.argsort(u, kind="stable")
        u, i = u[order], i[order]
    return u, i


def _quantise(x: np.ndarray, scale: str) -> np.ndarray:
    low, high, step = _SCALES[scale]
    return np.clip(np.rint(x / step) * step, low, high).astype(np.float32)


def _sorted_times(rng: np.random.Generator, plant: _Plant, u: np.ndarray, lo: int) -> np.ndarray:
    """Uniform timestamps in each row's user window, increasing within each user's run of rows.

    `u` is non-decreasing; returns int64 Unix seconds, shape (len(u),).
    """
    offset = (rng.random(len(u)) * (plant.t_len[u] + 1)).astype(np.int64)
    width = int(plant.t_len.max()) + 1
    local = (u - lo).astype(np.int64)
    if (int(local[-1]) + 1) * width < 2**62:  # one int64 sort key: (user, offset)
        key = local * width + offset
        key.sort()
        offset = key - local * width
    else:  # pragma: no cover - astronomically long spans
        offset = offset[np.lexsort((offset, local))]
    return plant.t_start[u] + offset


def _blocks(params: SynthParams, plant: _Plant) -> Iterator[dict[str, np.ndarray]]:
    """Yield one block of rows at a time: userId, movieId (int32), rating (float32),
    timestamp (int64), score (float32, the planted noise-free score).

    Rows are sorted by (userId, timestamp); a user's movies come in the order they were drawn,
    so the earliest ratings lean to popular movies.
    """
    M = params.n_items
    for b, (lo, hi) in enumerate(plant.blocks):
        rng = np.random.default_rng(np.random.SeedSequence([params.seed, 1, b]))
        u, i = _sample_items(rng, plant, lo, hi, M)
        score = plant.user_bias[u] + plant.item_bias[i] + np.float32(params.mean)
        score += np.einsum("nd,nd->n", plant.user_factors[u], plant.item_factors[i])
        observed = score + rng.standard_normal(len(u), dtype=np.float32) * np.float32(params.noise)
        yield {
            "userId": u + 1,
            "movieId": i + 1,
            "rating": _quantise(observed, params.scale),
            "timestamp": _sorted_times(rng, plant, u, lo),
            "score": score,
        }


class _Stats:
    """Running sums for the metadata (floor RMSE, rating histogram, items seen)."""

    def __init__(self, params: SynthParams):
        self.params = params
        self.n = 0
        self.sse_floor = 0.0
        self.sse_clip = 0.0
        self.total = 0.0
        self.total_sq = 0.0
        self.item_seen = np.zeros(params.n_items, dtype=bool)
        self.hist: dict[float, int] = {}
        self.t_min, self.t_max = np.iinfo(np.int64).max, np.iinfo(np.int64).min

    def add(self, block: dict[str, np.ndarray]) -> None:
        r = block["rating"].astype(np.float64)
        s = block["score"].astype(np.float64)
        low, high = self.params.rating_range
        self.sse_floor += float(np.square(_quantise(s, self.params.scale) - r).sum())
        self.sse_clip += float(np.square(np.clip(s, low, high) - r).sum())
        self.n += len(r)
        self.total += float(r.sum())
        self.total_sq += float(np.square(r).sum())
        self.item_seen[block["movieId"] - 1] = True
        values, counts = np.unique(block["rating"], return_counts=True)
        for v, c in zip(values.tolist(), counts.tolist()):
            self.hist[v] = self.hist.get(v, 0) + c
        if len(r):
            self.t_min = min(self.t_min, int(block["timestamp"].min()))
            self.t_max = max(self.t_max, int(block["timestamp"].max()))

    def meta(self) -> dict:
        mean = self.total / self.n
        return {
            "generator": "movierec.data.synthetic",
            "generator_version": GENERATOR_VERSION,
            "params": asdict(self.params),
            "n_ratings": self.n,
            "n_users": self.params.n_users,
            "n_items": self.params.n_items,
            "n_items_rated": int(self.item_seen.sum()),
            "rating_scale": list(self.params.rating_range),
            "rating_mean": mean,
            "rating_std": math.sqrt(max(self.total_sq / self.n - mean * mean, 0.0)),
            "rating_histogram": {f"{k:g}": v for k, v in sorted(self.hist.items())},
            "time_first": self.t_min,
            "time_last": self.t_max,
            "noise": self.params.noise,
            "rmse_floor": math.sqrt(self.sse_floor / self.n),
            "rmse_floor_unrounded": math.sqrt(self.sse_clip / self.n),
            "rmse_floor_note": (
                "rmse_floor: RMSE of the noise-free planted score, rounded and clipped as the ratings are, "
                "against the written ratings; rmse_floor_unrounded: the same with the score only clipped."
            ),
        }


def _params(n_users, n_items, n_ratings, seed, noise, dim, **options) -> SynthParams:
    try:
        params = SynthParams(n_users=n_users, n_items=n_items, n_ratings=n_ratings, seed=seed,
                             noise=float(noise), dim=dim, **options)
    except TypeError as exc:
        raise ConfigError(f"Unknown synthetic-data option: {exc}.") from None
    params.validate()
    return params


def generate_ratings(
    n_users: int,
    n_items: int,
    n_ratings: int,
    seed: int = 0,
    noise: float = 0.5,
    dim: int = 8,
    **options,
) -> tuple[pd.DataFrame, dict]:
    """Generate planted low-rank ratings in memory.

    Args:
        n_users: users, raw userIds 1..n_users; each rates at least one movie.
        n_items: movies in the catalog, raw movieIds 1..n_items (tail movies may get no rating).
        n_ratings: exact number of (distinct) ratings, n_users <= n_ratings <= n_users * n_items.
        seed: the output is a function of the parameters and this seed.
        noise: standard deviation of the Gaussian noise added to the planted score.
        dim: rank of the planted tastes.
        **options: further SynthParams fields: scale ("half" 0.5..5 or "int" 1..5), zipf (item
            popularity exponent), user_sigma (lognormal activity spread), mean, user_bias_sd,
            item_bias_sd, taste_sd, start/end (Unix seconds).

    Returns:
        (frame, meta): frame has columns userId, movieId (int32), rating (float32), timestamp
        (int64), n_ratings rows sorted by (userId, timestamp); meta holds the parameters, the
        counts and `rmse_floor`.

    Raises:
        ConfigError: impossible or out-of-range parameters.
    """
    params = _params(n_users, n_items, n_ratings, seed, noise, dim, **options)
    plant = _plan(params)
    stats = _Stats(params)
    cols: dict[str, list[np.ndarray]] = {k: [] for k in ("userId", "movieId", "rating", "timestamp")}
    for block in _blocks(params, plant):
        stats.add(block)
        for k in cols:
            cols[k].append(block[k])
    frame = pd.DataFrame({k: np.concatenate(v) for k, v in cols.items()})
    return frame, stats.meta()


def _rating_strings(scale: str) -> tuple[np.ndarray, list[str]]:
    low, high, step = _SCALES[scale]
    values = np.arange(low, high + step / 2, step)
    labels = [f"{v:.1f}" if scale == "half" else f"{v:.0f}" for v in values]
    return values, labels


def write_synthetic(
    path: str | Path,
    n_users: int,
    n_items: int,
    n_ratings: int,
    seed: int = 0,
    noise: float = 0.5,
    dim: int = 8,
    **options,
) -> dict:
    """Generate planted ratings straight to a MovieLens-format file, block by block.

    Writes `userId,movieId,rating,timestamp` CSV like ml-25m's ratings.csv (half-star ratings
    as "4.0", "3.5"; whole stars as "4"), or Parquet when `path` ends with `.parquet`, and the
    metadata (parameters, seed, counts, `rmse_floor`) to `<path>.meta.json`. Both files are
    written to a temporary name and renamed, so a crash never leaves a partial file.

    Args: as generate_ratings, plus `path`, the output file. Missing parent folders are made.

    Returns:
        The metadata dict (also written beside the file).

    Raises:
        ConfigError: impossible or out-of-range parameters.
    """
    import pyarrow as pa

    params = _params(n_users, n_items, n_ratings, seed, noise, dim, **options)
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path} is a folder; give a file name such as {path / 'ratings.csv'}.")
    path.parent.mkdir(parents=True, exist_ok=True)
    parquet = path.suffix.lower() == ".parquet"
    plant = _plan(params)
    stats = _Stats(params)
    values, labels = _rating_strings(params.scale)
    low, _, step = _SCALES[params.scale]
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    default_permissions(tmp)
    try:
        if parquet:
            import pyarrow.parquet as pq

            schema = pa.schema([("userId", pa.int32()), ("movieId", pa.int32()),
                                ("rating", pa.float32()), ("timestamp", pa.int64())])
            with pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
                for block in _blocks(params, plant):
                    stats.add(block)
                    writer.write_table(pa.table({k: block[k] for k in schema.names}, schema=schema))
        else:
            import pyarrow.csv as pcsv

            dictionary = pa.array(labels)
            schema = pa.schema([("userId", pa.int32()), ("movieId", pa.int32()),
                                ("rating", pa.dictionary(pa.int8(), pa.string())), ("timestamp", pa.int64())])
            options_w = pcsv.WriteOptions(include_header=False, quoting_style="none", batch_size=1 << 16)
            with pa.OSFile(str(tmp), "wb") as sink:
                sink.write(CSV_HEADER)
                with pcsv.CSVWriter(sink, schema, write_options=options_w) as writer:
                    for block in _blocks(params, plant):
                        stats.add(block)
                        codes = np.rint((block["rating"] - low) / step).astype(np.int8)
                        rating = pa.DictionaryArray.from_arrays(pa.array(codes), dictionary)
                        writer.write_table(pa.table(
                            [pa.array(block["userId"]), pa.array(block["movieId"]), rating,
                             pa.array(block["timestamp"])], schema=schema))
        meta = stats.meta()
        meta["format"] = "parquet" if parquet else "csv"
        meta["path"] = path.name
        _write_json_atomic(Path(f"{path}.meta.json"), meta)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return meta


def _write_json_atomic(path: Path, obj: dict) -> None:
    with atomic_write(path) as fh:
        json.dump(obj, fh, indent=2)
        fh.write("\n")


def read_meta(path: str | Path) -> dict:
    """The metadata written beside a synthetic ratings file (`<path>.meta.json`)."""
    return json.loads(Path(f"{path}.meta.json").read_text(encoding="utf-8"))


__all__ = ["SynthParams", "generate_ratings", "write_synthetic", "read_meta", "GENERATOR_VERSION"]
