"""`movierec movies search "star wars"`: find a movie's ID by (part of) its title.

The search itself is the library's (`movierec.data.catalog_search`); this command only
picks the catalog (a MovieLens dataset, your own movies file, a model folder or a
registry version), calls it and prints.
"""

from __future__ import annotations

from pathlib import Path

import typer

from movierec.cli.common import DATA_OPT, DATASET_OPT, JSON_OPT, app, load_dataset, out, print_json
from movierec.errors import ConfigError

movies_app = typer.Typer(help="Look up movies: find a movie's ID by its title.", no_args_is_help=True)
app.add_typer(movies_app, name="movies")


def _catalog(dataset: str | None, data: Path | None, movies: Path | None, model_dir: Path | None,
             registry: Path | None, name: str | None, version: str | None):
    """(catalog, item IdMap, ratings per item or None, where it came from) for exactly one source."""
    sources = [dataset is not None, data is not None or movies is not None, model_dir is not None,
               registry is not None]
    if sum(sources) != 1:
        raise ConfigError("Give exactly one of --dataset NAME, --movies FILE (optionally with --data), "
                          "--model-dir DIR or --registry DIR --name NAME.")
    if model_dir is not None or registry is not None:
        from movierec.answers import rating_counts
        from movierec.cli.sources import open_bundle

        bundle = open_bundle(model_dir, registry, name, version)
        where = str(model_dir) if model_dir is not None else f"{name} version {bundle.version}"
        return bundle.catalog, bundle.model.items_, rating_counts(bundle.model), where
    if name is not None or version is not None:
        raise ConfigError("--name and --version go with --registry.")
    if data is None and movies is not None:
        from movierec.data.dataset import Catalog
        from movierec.data.idmap import IdMap
        from movierec.data.movielens import read_movies

        frame = read_movies(movies)
        items = IdMap(frame["item_id"].to_numpy(), kind="movie")
        return Catalog.from_frame(items, frame), items, None, str(movies)
    options = {"movies": movies} if movies is not None else {}
    ds = load_dataset(dataset, data, **options)
    return ds.catalog, ds.items, ds.item_counts(), dataset or str(data)


@movies_app.command("search")
def search_cmd(
    query: str = typer.Argument(..., help='Words of the title, e.g. "star wars" or "the matrix".'),
    dataset: str = DATASET_OPT,
    data: Path = DATA_OPT,
    movies: Path = typer.Option(None, "--movies", help="Movies file (MovieLens movies.csv layout, or id,title,genres)."),
    model_dir: Path = typer.Option(None, "--model-dir", help="Model folder written by `movierec train --out`."),
    registry: Path = typer.Option(None, "--registry", help="Model registry folder (with --name)."),
    name: str = typer.Option(None, "--name", help="Model name in the registry."),
    version: str = typer.Option(None, "--version", help="Registry version (default: the current one)."),
    k: int = typer.Option(10, "-k", "--k", help="How many movies at most."),
    as_json: bool = JSON_OPT,
) -> None:
    """Movies whose title matches QUERY (any case, accents or leading article; close spellings too), with IDs."""
    from movierec.data.catalog_search import TitleIndex

    if k < 1:
        raise ConfigError(f"-k must be at least 1, got {k}.")
    catalog, items, counts, where = _catalog(dataset, data, movies, model_dir, registry, name, version)
    matches = TitleIndex(catalog, counts).search(query, k)
    raw = items.raw_ids
    rows = [{
        "movie_id": raw[m.index].item() if hasattr(raw[m.index], "item") else raw[m.index],
        "title": m.label,
        "genres": list(catalog.genres[m.index]),
        "ratings": None if counts is None else int(counts[m.index]),
        "match": m.tier,
    } for m in matches]
    if as_json:
        print_json({"query": query, "source": where, "k": k, "movies": rows})
        return
    if not rows:
        out.print(f"No movie in {where} matches {query!r}.")
        return
    from rich.table import Table

    table = Table(title=f"movies matching {query!r} in {where}")
    for col, justify in (("movie ID", "right"), ("title", "left"), ("genres", "left"), ("ratings", "right"),
                         ("match", "left")):
        table.add_column(col, justify=justify)
    for r in rows:
        table.add_row(str(r["movie_id"]), r["title"], ", ".join(r["genres"]),
                      "" if r["ratings"] is None else f"{r['ratings']:,}", r["match"])
    out.print(table)
