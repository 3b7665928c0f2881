"""`movierec data ...`: fetch, describe."""

from __future__ import annotations

from pathlib import Path

import typer

from movierec.cli.common import DATA_OPT, DATASET_OPT, data_app, fetch_progress, load_dataset, out, parse_range, print_json


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
    name: str = typer.Argument(None, help="MovieLens dataset name (or use --data)."),
    data: Path = DATA_OPT,
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    plots: Path = typer.Option(None, "--plots", help="Write PNG plots into this folder."),
    user_col: str = typer.Option(None, "--user-col"),
    item_col: str = typer.Option(None, "--item-col"),
    rating_col: str = typer.Option(None, "--rating-col"),
    time_col: str = typer.Option(None, "--time-col"),
    rating_range: str = typer.Option(None, "--rating-range", help="Valid ratings, e.g. 1,5."),
) -> None:
    """Summary statistics (and plots) of a dataset."""
    from movierec.data.describe import describe

    ds = load_dataset(name, data, user_col=user_col, item_col=item_col, rating_col=rating_col,
                      time_col=time_col, rating_range=parse_range(rating_range))
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
