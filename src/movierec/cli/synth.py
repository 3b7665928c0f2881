"""`movierec data synth`: write a synthetic MovieLens-format ratings file from planted tastes."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from movierec.cli.common import data_app, out, print_json


@data_app.command("synth")
def synth_cmd(
    users: int = typer.Option(..., "--users", help="Number of users (userId 1..N); each rates at least one movie."),
    items: int = typer.Option(..., "--items", help="Number of movies in the catalog (movieId 1..M)."),
    ratings: int = typer.Option(..., "--ratings", help="Exact number of distinct (user, movie) ratings."),
    out_path: Path = typer.Option(..., "--out", help="Output file: CSV like ml-25m's ratings.csv, or .parquet."),
    seed: int = typer.Option(0, "--seed", help="Random seed; the file is a function of the options and the seed."),
    noise: float = typer.Option(0.5, "--noise", help="Standard deviation of the rating noise, in stars."),
    dim: int = typer.Option(8, "--dim", help="Rank of the planted user and movie tastes."),
    scale: str = typer.Option("half", "--scale", help="'half' for 0.5-5 half stars, 'int' for 1-5 whole stars."),
    zipf: float = typer.Option(1.0, "--zipf", help="Zipf exponent of movie popularity (0 = uniform)."),
    user_sigma: float = typer.Option(1.2, "--user-sigma", help="Lognormal sigma of user activity (0 = equal)."),
    as_json: bool = typer.Option(False, "--json", help="Print the metadata as one JSON object."),
) -> None:
    """Generate planted low-rank ratings (Zipf popularity, skewed activity, timestamps) into a
    MovieLens-format file, with parameters and the noise-only RMSE floor in PATH.meta.json."""
    from movierec.data.synthetic import write_synthetic

    started = time.perf_counter()
    meta = write_synthetic(out_path, users, items, ratings, seed=seed, noise=noise, dim=dim,
                           scale=scale, zipf=zipf, user_sigma=user_sigma)
    seconds = time.perf_counter() - started
    if as_json:
        print_json({**meta, "out": str(out_path), "seconds": round(seconds, 3)})
        return
    out.print(
        f"wrote {meta['n_ratings']:,} ratings by {meta['n_users']:,} users of {meta['n_items_rated']:,} movies "
        f"to {out_path} in {seconds:.1f}s; noise-only RMSE floor {meta['rmse_floor']:.4f} "
        f"(noise {meta['noise']:g}); metadata in {out_path}.meta.json"
    )
