"""`movierec data ...`: fetch, describe."""

from __future__ import annotations

from pathlib import Path

import typer

from movierec.cli.common import (
    DATA_OPT,
    DATASET_OPT,
    ITEM_COL_OPT,
    JSON_OPT,
    MOVIES_OPT,
    RATING_COL_OPT,
    RATING_RANGE_OPT,
    SEP_OPT,
    TIME_COL_OPT,
    USER_COL_OPT,
    data_app,
    fetch_progress,
    load_dataset,
    out,
    print_json,
    read_options,
)
from movierec.errors import ConfigError


@data_app.command("fetch")
def fetch_cmd(
    name: str = typer.Argument(..., help="ml-100k, ml-latest-small, ml-1m, ml-10m, ml-20m, ml-25m or ml-32m."),
    force: bool = typer.Option(False, "--force", help="Download again even if cached."),
) -> None:
    """Download, verify and cache a MovieLens dataset (honours MOVIEREC_MIRROR, MOVIEREC_CACHE)."""
    from movierec.data.fetch import fetch

    with fetch_progress(name) as progress:
        folder = fetch(name, progress=progress, force=force)
    out.print(f"{name} is ready in {folder}")


@data_app.command("describe")
def describe_cmd(
    name: str = typer.Argument(None, help="MovieLens dataset name (or use --dataset, or --data)."),
    dataset: str = DATASET_OPT,
    data: Path = DATA_OPT,
    movies: Path = MOVIES_OPT,
    user_col: str = USER_COL_OPT,
    item_col: str = ITEM_COL_OPT,
    rating_col: str = RATING_COL_OPT,
    time_col: str = TIME_COL_OPT,
    sep: str = SEP_OPT,
    rating_range: str = RATING_RANGE_OPT,
    as_json: bool = JSON_OPT,
    plots: Path = typer.Option(None, "--plots", help="Write PNG plots into this folder."),
) -> None:
    """Summary statistics (and plots) of a dataset."""
    from movierec.data.describe import describe

    if name is not None and dataset is not None and name != dataset:
        raise ConfigError(f"Name one dataset: {name!r} or --dataset {dataset!r}.")
    ds = load_dataset(name or dataset, data, **read_options(movies, user_col, item_col, rating_col, time_col, sep,
                                                           rating_range))
    stats = describe(ds)
    if plots is not None:
        from movierec.reporting.viz import plot_dataset

        stats["plots"] = [str(p) for p in plot_dataset(ds, plots)]
    if as_json:
        print_json(stats)
        return
    _print_stats(stats)


def _print_stats(stats: dict) -> None:
    from rich.table import Table

    table = Table(title=f"{stats['name']}", show_header=False)
    table.add_column("", style="bold")
    table.add_column("")
    table.add_row("ratings", f"{stats['n_ratings']:,}")
    table.add_row("users", f"{stats['n_users']:,}")
    table.add_row("movies", f"{stats['n_items']:,}")
    table.add_row("density", f"{stats['density']:.4%}")
    table.add_row("rating range", f"{stats['rating_min']:g} .. {stats['rating_max']:g} (mean {stats['rating_mean']:.3f})")
    if stats["rating_histogram"]:
        table.add_row("histogram", "  ".join(f"{k}: {v:,}" for k, v in stats["rating_histogram"].items()))
    for key, label in (("ratings_per_user", "ratings per user"), ("ratings_per_item", "ratings per movie")):
        q = stats[key]
        table.add_row(label, f"min {q['p0']:g}  median {q['p50']:g}  p90 {q['p90']:g}  max {q['p100']:g}  mean {q['mean']:.1f}")
    table.add_row("long tail", f"top 20% of movies get {stats['long_tail_share_top20']:.1%} of ratings")
    if "time_first" in stats:
        table.add_row("time span", f"{stats['time_first'][:10]} .. {stats['time_last'][:10]} ({stats['time_span_days']:g} days)")
    for p in stats.get("plots", []):
        table.add_row("plot", p)
    out.print(table)
