"""`movierec train | evaluate | recommend | similar | tune | plot ...`: parse -> call -> print.

The work is done by `movierec.experiments` (fit, evaluate, tune) and `movierec.artifacts`
(bundles, registry); these commands only parse options, call them and print. Heavy
modules are imported inside the commands so the CLI starts quickly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from movierec.cli.common import (
    app,
    CONFIG_OPT,
    DATA_OPT,
    DATASET_OPT,
    HOLDOUT_HELP,
    ITEM_COL_OPT,
    JSON_OPT,
    MOVIES_OPT,
    PARAM_OPT,
    PROTOCOLS_HELP,
    QUIET_OPT,
    RATING_COL_OPT,
    RATING_RANGE_OPT,
    SEED_OPT,
    SEP_OPT,
    TEST_OPT,
    TIME_COL_OPT,
    TRAIN_OPT,
    USER_COL_OPT,
    Steps,
    bars_on,
    console,
    load_dataset,
    model_and_params,
    out,
    parse_params,
    print_json,
    read_options,
)
from movierec.errors import ConfigError

plot_app = typer.Typer(help="Write PNG plots: learning curves, embedding maps, the long tail.", no_args_is_help=True)
app.add_typer(plot_app, name="plot")

MODEL_DIR_OPT = typer.Option(None, "--model-dir", help="Model folder written by `movierec train --out`.")
REGISTRY_OPT = typer.Option(None, "--registry", help="Model registry folder (with --name).")
NAME_OPT = typer.Option(None, "--name", help="Model name in the registry.")
VERSION_OPT = typer.Option(None, "--version", help="Registry version (default: the current one).")
INDEX_KINDS = ("auto", "exact", "ivf", "hnsw")  # movierec.retrieval.KINDS (not imported: faiss loads slowly)


def _check_index_kind(kind: str | None) -> None:
    if kind is not None and kind not in INDEX_KINDS:
        raise ConfigError(f"--index takes one of {', '.join(INDEX_KINDS)}; got {kind!r}.")


# -- helpers ---------------------------------------------------------------------------
def _bundle(model_dir: Path | None, registry: Path | None, name: str | None, version: str | None):
    """The bundle named by --model-dir, or by --registry/--name/--version."""
    from movierec.artifacts import ModelRegistry, load_bundle

    if (model_dir is None) == (registry is None):
        raise ConfigError("Give either --model-dir DIR or --registry DIR --name NAME.")
    if model_dir is not None:
        if name is not None or version is not None:
            raise ConfigError("--name and --version go with --registry, not --model-dir.")
        return load_bundle(model_dir)
    if name is None:
        raise ConfigError("--registry needs --name NAME (see `movierec models list`).")
    return ModelRegistry(registry).load(name, version)


def _rec_rows(bundle, rec) -> list[dict]:
    rows = []
    if len(rec) == 0:
        return rows
    items = rec.items_of(0)
    idx = bundle.model.items_.lookup(items)
    for rank, (movie, j, score) in enumerate(zip(items, idx, rec.scores[0]), start=1):
        rows.append({
            "rank": rank,
            "movie_id": movie.item() if hasattr(movie, "item") else movie,
            "title": bundle.catalog.label(int(j)),
            "genres": list(bundle.catalog.genres[int(j)]),
            "score": float(score),
        })
    return rows


def _print_rows(title: str, rows: list[dict], score_label: str) -> None:
    from rich.table import Table

    table = Table(title=title)
    table.add_column("#", justify="right")
    table.add_column("movie", justify="right")
    table.add_column("title")
    table.add_column("genres", style="dim")
    table.add_column(score_label, justify="right")
    for r in rows:
        table.add_row(str(r["rank"]), str(r["movie_id"]), r["title"], ", ".join(r["genres"]), f"{r['score']:.3f}")
    out.print(table)


def _raw_id(model_map, value: str):
    """A raw ID typed on the command line, as the map's dtype."""
    if model_map.raw_ids.dtype.kind in "iu":
        try:
            return int(value)
        except ValueError:
            pass
    return value


def _check_k(k: int) -> None:
    if k < 1:
        raise ConfigError(f"-k must be at least 1, got {k}.")


def _parse_threshold(value: str | None) -> Any:
    if value is None:
        return None
    low = value.lower()
    if low in ("auto", "none", "off", "all"):
        return "auto" if low == "auto" else None
    try:
        return float(value)
    except ValueError:
        raise ConfigError(f"--relevance-threshold takes a number, 'auto' or 'none'; got {value!r}.") from None


# -- train -----------------------------------------------------------------------------
def _check_out(path: Path) -> None:
    """Refuse, before any training, a --out that is not a new, empty or model folder."""
    from movierec.artifacts import is_bundle_dir

    resolved, cwd = path.resolve(), Path.cwd().resolve()
    if resolved == cwd or resolved in cwd.parents:
        raise ConfigError(f"Refusing to write the model into {path}: it is the working folder or holds it; "
                          f"name a new folder.")
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        raise ConfigError(f"Refusing to write the model over {path}: it is a file, not a model folder.")
    if path.is_dir() and any(path.iterdir()) and not is_bundle_dir(path):
        raise ConfigError(f"Refusing to replace {path}: it holds files but is not a movierec model folder; "
                          f"name a new folder.")


def _check_model_params(name: str, params: dict) -> None:
    """Unknown or malformed hyperparameters, or a device this machine lacks: one sentence
    before any data is loaded or anything is trained."""
    from movierec.experiments.models import check_params

    check_params(name, params)
    if isinstance(params.get("device"), str):
        from movierec.training.options import resolve_device

        resolve_device(params["device"])


def _runtime_progress(name: str, params: dict, quiet: bool) -> bool:
    """Turn on a torch model's per-epoch bar (its `progress` runtime option) when bars are
    on and the user did not set it; True when it was turned on here."""
    from movierec.experiments.models import model_class

    if "progress" in params or "progress" not in model_class(name).default_params() or not bars_on(quiet):
        return False
    params["progress"] = True
    return True


@app.command("train")
def train_cmd(
    model: str = typer.Option(None, "--model", "-m", help="Registered model name, e.g. mf."),
    out_dir: Path = typer.Option(None, "--out", "-o",
                                 help="Model folder to write: a new or empty folder, or an older model folder "
                                      "(replaced); anything else is refused."),
    registry: Path = typer.Option(None, "--registry", help="Add the model as a new version to this registry folder."),
    dataset: str = DATASET_OPT,
    data: Path = DATA_OPT,
    movies: Path = MOVIES_OPT,
    user_col: str = USER_COL_OPT,
    item_col: str = ITEM_COL_OPT,
    rating_col: str = RATING_COL_OPT,
    time_col: str = TIME_COL_OPT,
    sep: str = SEP_OPT,
    rating_range: str = RATING_RANGE_OPT,
    param: list[str] = PARAM_OPT,
    config: Path = CONFIG_OPT,
    seed: int = typer.Option(None, "--seed", help="Seed for models that take one (default: the model's own)."),
    index: str = typer.Option(None, "--index",
                              help="Also build a retrieval index over the model's embeddings and store it in "
                                   "the model folder: auto, exact, ivf or hnsw."),
    quiet: bool = QUIET_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Fit a model on a whole dataset; write a model folder (--out) and/or a registry version (--registry)."""
    from movierec.artifacts import ModelRegistry, save_bundle
    from movierec.artifacts.train import train

    name, params, config_path = model_and_params(model, config, param)
    if out_dir is None and registry is None:
        raise ConfigError("Say where the model goes: --out DIR and/or --registry DIR.")
    _check_model_params(name, params)
    _check_index_kind(index)
    if index is not None:
        from movierec.errors import CapabilityError
        from movierec.experiments.models import model_class

        if not model_class(name).capabilities.embeddings:
            raise CapabilityError(f"Model {name!r} gives no embeddings, so it cannot have a retrieval index; "
                                  f"leave out --index.")
    if out_dir is not None:
        _check_out(out_dir)
    if registry is not None:
        ModelRegistry(registry).check_writable(name)
    ds = load_dataset(dataset, data, quiet, **read_options(movies, user_col, item_col, rating_col, time_col, sep,
                                                           rating_range))
    switched = _runtime_progress(name, params, quiet)
    label = f"training {name} on {ds.name} ({ds.n_ratings:,} ratings)"
    if switched or not bars_on(quiet):
        if not quiet and not switched:
            console.print(f"[dim]{label}[/dim]", highlight=False)
        bundle = train(name, ds, params=params, seed=seed)
    else:
        with console.status(label):
            bundle = train(name, ds, params=params, seed=seed)
    if switched:
        bundle.model.progress = False  # only displayed; the saved parameters say what was asked for
    result: dict[str, Any] = {"model": bundle.name, "params": bundle.model.get_params(), "config": config_path,
                              "metrics": bundle.metrics}
    if index is not None:
        from movierec.retrieval import ModelIndex, store_index

        built = ModelIndex.build(bundle.model, index)
        store_index(bundle, built)
        result["index"] = {"kind": built.kind, **built.index.header}
    if out_dir is not None:
        result["out"] = str(save_bundle(bundle, out_dir, overwrite=True))
    if registry is not None:
        version = ModelRegistry(registry).add(bundle)
        result["registry"] = {"root": str(registry), "name": version.name, "version": version.version,
                              "path": str(version.path), "current": version.current}
    if as_json:
        print_json(result)
        return
    out.print(f"trained {bundle.name} on {ds.name} in {bundle.metrics['fit_seconds']:.1f}s")
    if "out" in result:
        out.print(f"  model folder: {result['out']}")
    if "registry" in result:
        reg = result["registry"]
        out.print(f"  registry: {reg['name']} version {reg['version']}{' (current)' if reg['current'] else ''}")
    for key in ("train_rmse", "best_epoch", "best_validation"):
        value = bundle.metrics.get(key)
        if value is not None:
            out.print(f"  {key}: {value:.4f}" if isinstance(value, float) else f"  {key}: {value}")
    if "index" in result:
        info = result["index"]
        tuned = f", tuned recall {info['tuned']['recall']:.3f}" if info.get("tuned") else ""
        out.print(f"  index: {info['kind']} over {info['n_items']:,} movies (dim {info['dim']}{tuned})")


# -- evaluate --------------------------------------------------------------------------
@app.command("evaluate")
def evaluate_cmd(
    model: str = typer.Option(None, "--model", "-m", help="Registered rating model, e.g. mf, bias."),
    dataset: str = DATASET_OPT,
    data: Path = DATA_OPT,
    movies: Path = MOVIES_OPT,
    user_col: str = USER_COL_OPT,
    item_col: str = ITEM_COL_OPT,
    rating_col: str = RATING_COL_OPT,
    time_col: str = TIME_COL_OPT,
    sep: str = SEP_OPT,
    rating_range: str = RATING_RANGE_OPT,
    train: Path = TRAIN_OPT,
    test: Path = TEST_OPT,
    protocol: str = typer.Option("random", "--protocol", help=PROTOCOLS_HELP + "."),
    holdout: float = typer.Option(None, "--holdout", "--test-fraction", help=HOLDOUT_HELP + " Default 0.2 / 1."),
    seed: int = SEED_OPT,
    param: list[str] = PARAM_OPT,
    config: Path = CONFIG_OPT,
    quiet: bool = QUIET_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Rating prediction accuracy (RMSE, MAE) and fit time of a model under a protocol."""
    from movierec.experiments import evaluate_ratings, rating_splits
    from movierec.experiments.models import build_model

    name, params, config_path = model_and_params(model, config, param)
    build_model(name, params)  # unknown model or bad parameters: fail before loading data
    _check_model_params(name, params)
    if (train is None) != (test is None):
        raise ConfigError("Give both --train and --test (or neither).")
    if train is not None:
        if dataset is not None or data is not None:
            raise ConfigError("Give either --train/--test or one of --dataset/--data, not both.")
        splits = rating_splits(None, "files", files=(train, test))
        label = f"{train} -> {test}"
    else:
        ds = load_dataset(dataset, data, quiet, **read_options(movies, user_col, item_col, rating_col, time_col,
                                                               sep, rating_range))
        splits = rating_splits(ds, protocol, holdout, seed)
        label = ds.name
    info = {"seed": seed, "holdout": holdout, "config": config_path}
    switched = _runtime_progress(name, params, quiet)
    with Steps("evaluating", len(splits), quiet=quiet, live=not switched) as steps:
        result = evaluate_ratings(name, splits, params=params, seed=seed, info=info, progress=steps.start)
    if switched:
        result.params["progress"] = False  # only displayed; results never depend on the terminal
    result.dataset = label
    doc = result.to_json()
    if as_json:
        print_json(doc)
        return
    from rich.table import Table

    table = Table(title=f"{name} on {label} ({result.protocol})")
    for col in ("fold", "RMSE", "MAE", "fit s", "train", "test"):
        table.add_column(col, justify="right")
    for f in result.folds:
        table.add_row(str(f["fold"]), f"{f['rmse']:.4f}", f"{f['mae']:.4f}", f"{f['fit_seconds']:.2f}",
                      f"{f['n_train']:,}", f"{f['n_test']:,}")
    if len(result.folds) > 1:
        table.add_row("mean", f"{doc['rmse']:.4f}", f"{doc['mae']:.4f}", f"{doc['fit_seconds']:.2f}", "", "",
                      style="bold")
    out.print(table)
    out.print(f"params: {doc['params']}" + (f" (from {config_path})" if config_path else ""))


# -- recommend / similar ---------------------------------------------------------------
def _split_list(text: str) -> list[str]:
    return [part.strip() for part in text.replace(";", ",").split(",") if part.strip()]


def _new_person(bundle, rated: str | None, liked: str | None, ratings_file: Path | None) -> tuple[list, list | None]:
    """(raw movie IDs, ratings or None) of a new person from --rated, --liked or --ratings-file."""
    items = bundle.model.items_
    if rated is not None:
        pairs = _split_list(rated)
        if not pairs:
            raise ConfigError("--rated needs movie=rating pairs, like --rated 50=5,172=4.")
        ids, ratings = [], []
        for pair in pairs:
            movie, eq, value = pair.partition("=")
            if not eq or not movie.strip():
                raise ConfigError(f"--rated takes movie=rating pairs like 50=5,172=4; {pair!r} is not one.")
            try:
                ratings.append(float(value))
            except ValueError:
                raise ConfigError(f"--rated: the rating in {pair!r} is not a number.") from None
            ids.append(_raw_id(items, movie.strip()))
        return ids, ratings
    if liked is not None:
        ids = [_raw_id(items, part) for part in _split_list(liked)]
        if not ids:
            raise ConfigError("--liked needs at least one movie ID, like --liked 1,71,95.")
        return ids, None
    from movierec.data.readers import read_new_user

    raw, ratings = read_new_user(ratings_file)
    return [_raw_id(items, str(r)) for r in raw], (None if ratings is None else ratings.tolist())


def _fold_in_models() -> list[str]:
    """Registered models that can recommend for a new person (declared capability)."""
    from movierec.models.registry import available, get_class

    return [n for n in available() if get_class(n).capabilities.fold_in]


def _popular_enough(model, min_ratings: int):
    """Raw IDs of the movies with at least `min_ratings` training ratings (None: no filter)."""
    if min_ratings <= 0:
        return None
    import numpy as np

    counts = np.asarray(model.seen_.getnnz(axis=0)).ravel()
    keep = counts >= min_ratings
    if not keep.any():
        raise ConfigError(f"No movie has {min_ratings} training ratings (the most rated has {int(counts.max())}); "
                          f"lower --min-ratings.")
    return model.items_.raw_ids[keep]


@app.command("recommend")
def recommend_cmd(
    model_dir: Path = MODEL_DIR_OPT,
    registry: Path = REGISTRY_OPT,
    name: str = NAME_OPT,
    version: str = VERSION_OPT,
    user: str = typer.Option(None, "--user", "-u", help="Raw user ID of a user the model was trained on."),
    rated: str = typer.Option(None, "--rated", help="A new person's ratings, movie=rating pairs, e.g. 50=5,172=4."),
    liked: str = typer.Option(None, "--liked", help="A new person's liked movies, e.g. 1,71,95."),
    ratings_file: Path = typer.Option(None, "--ratings-file",
                                      help="A new person's movies as CSV: movie ID and rating columns, "
                                           "or movie IDs only (liked movies)."),
    k: int = typer.Option(10, "-k", "--k", help="How many movies."),
    min_ratings: int = typer.Option(0, "--min-ratings",
                                    help="Only recommend movies with at least this many training ratings."),
    include_seen: bool = typer.Option(False, "--include-seen",
                                      help="Also list movies the user already rated (or the new person gave)."),
    index: str = typer.Option(None, "--index",
                              help="Answer through a retrieval index over the model's embeddings: auto, exact, "
                                   "ivf or hnsw (the one stored in the model folder when its kind matches, "
                                   "else one built in memory)."),
    as_json: bool = JSON_OPT,
) -> None:
    """Top-k movies, with titles, from a saved model (a model folder or a registry version):
    for a known user (--user), or for a new person from their ratings or liked movies
    (--rated, --liked or --ratings-file), without retraining."""
    _check_k(k)
    _check_index_kind(index)
    given = [flag for flag, value in (("--user", user), ("--rated", rated), ("--liked", liked),
                                      ("--ratings-file", ratings_file)) if value is not None]
    if len(given) != 1:
        raise ConfigError("Give one of --user ID (a user the model knows) or a new person's --rated, --liked "
                          f"or --ratings-file{'' if not given else ', not ' + ' and '.join(given) + ' together'}.")
    if min_ratings < 0:
        raise ConfigError(f"--min-ratings must be 0 or more, got {min_ratings}.")
    bundle = _bundle(model_dir, registry, name, version)
    model = bundle.model
    candidates = _popular_enough(model, min_ratings)
    doc: dict[str, Any] = {"model": bundle.name, "version": bundle.version, "k": k, "min_ratings": min_ratings}
    answer = model
    if index is not None:
        from movierec.retrieval import index_for_bundle

        answer, built = index_for_bundle(bundle, index)
        doc["index"] = answer.kind
        if built:
            console.print(f"[dim]built a {answer.kind} index in memory: the model folder holds none of that kind "
                          f"(`movierec train --index {index}` stores one)[/dim]", highlight=False)
    if user is not None:
        uid = _raw_id(model.users_, user)
        if uid not in model.users_:
            from movierec.errors import UnknownUserError

            hint = "; for someone new, give the movies they liked (--liked) or rated (--rated)" if (
                model.capabilities.fold_in) else ""
            raise UnknownUserError(f"Unknown user ID: {uid!r} (not one of the {len(model.users_):,} users the "
                                   f"model was trained on){hint}.")
        rec = answer.recommend([uid], k=k, exclude_seen=not include_seen, candidates=candidates)
        doc["user"] = uid
        title = f"{bundle.name}: top {int(rec.lengths[0])} for user {uid}"
    else:
        if not model.capabilities.fold_in:
            from movierec.errors import CapabilityError

            raise CapabilityError(f"Model {bundle.name!r} cannot recommend for a new person without retraining; "
                                  f"models that can: {', '.join(_fold_in_models())}.")
        ids, ratings = _new_person(bundle, rated, liked, ratings_file)
        rec = answer.recommend_new(ids, ratings, k=k, exclude_given=not include_seen, candidates=candidates)
        idx = model.items_.lookup(ids)
        doc["new_user"] = [{"movie_id": _plain(m), "title": bundle.catalog.label(int(j)),
                            **({"rating": r} if ratings is not None else {})}
                           for m, j, r in zip(ids, idx, ratings if ratings is not None else [None] * len(ids))]
        title = (f"{bundle.name}: top {int(rec.lengths[0])} for a new person who "
                 f"{'rated' if ratings is not None else 'liked'} {len(ids)} movie{'s' if len(ids) > 1 else ''}")
    rows = _rec_rows(bundle, rec)
    if as_json:
        print_json({**doc, "items": rows})
        return
    if "new_user" in doc:
        given_movies = [f"{g['title']}" + (f" = {g['rating']:g}" if "rating" in g else "") for g in doc["new_user"]]
        out.print("from: " + "; ".join(given_movies), highlight=False)
    _print_rows(title + (f" (movies with {min_ratings}+ ratings)" if min_ratings else ""), rows, "score")


def _plain(value):
    """A numpy scalar as a plain Python value (for JSON)."""
    return value.item() if hasattr(value, "item") else value


@app.command("similar")
def similar_cmd(
    model_dir: Path = MODEL_DIR_OPT,
    registry: Path = REGISTRY_OPT,
    name: str = NAME_OPT,
    version: str = VERSION_OPT,
    movie: str = typer.Option(..., "--movie", help="Raw movie ID."),
    k: int = typer.Option(10, "-k", "--k", help="How many movies."),
    as_json: bool = JSON_OPT,
) -> None:
    """Movies most similar to a movie (the model's own movie-to-movie similarity), with titles."""
    _check_k(k)
    bundle = _bundle(model_dir, registry, name, version)
    mid = _raw_id(bundle.model.items_, movie)
    rows = _rec_rows(bundle, bundle.model.similar_items([mid], k=k))
    label = bundle.catalog.label(int(bundle.model.items_.lookup([mid])[0]))
    if as_json:
        print_json({"movie": mid, "title": label, "model": bundle.name, "k": k, "items": rows})
        return
    _print_rows(f"{bundle.name}: movies like {label}", rows, "similarity")


# -- tune ------------------------------------------------------------------------------
@app.command("tune")
def tune_cmd(
    model: str = typer.Option(..., "--model", "-m", help="Registered model name, e.g. mf."),
    dataset: str = DATASET_OPT,
    data: Path = DATA_OPT,
    movies: Path = MOVIES_OPT,
    user_col: str = USER_COL_OPT,
    item_col: str = ITEM_COL_OPT,
    rating_col: str = RATING_COL_OPT,
    time_col: str = TIME_COL_OPT,
    sep: str = SEP_OPT,
    rating_range: str = RATING_RANGE_OPT,
    protocol: str = typer.Option("random", "--protocol",
                                 help="leave-last (tunes on the validation part `compare` uses), ml100k-folds "
                                      "(inside u1.base), random or temporal (validation carved from training)."),
    holdout: float = typer.Option(None, "--holdout", "--test-fraction", help=HOLDOUT_HELP + " Never looked at."),
    validation_fraction: float = typer.Option(0.1, "--validation-fraction",
                                              help="Share of the training part used to validate (not leave-last)."),
    trials: int = typer.Option(20, "--trials", "-n", help="Optuna trials."),
    metric: str = typer.Option(None, "--metric", help="rmse (rating models' default), or e.g. ndcg@10 (the others')."),
    relevance_threshold: str = typer.Option(None, "--relevance-threshold",
                                            help="Ranking metrics: validation ratings >= this are relevant; "
                                                 "'auto' = 4 on a 1-5 scale; default: all."),
    seed: int = SEED_OPT,
    param: list[str] = typer.Option(None, "--param", "-p", help="Fixed hyperparameter key=value (not searched)."),
    out_path: Path = typer.Option(None, "--out", "-o",
                                  help="JSON to write; default <project>/configs/tuned/<dataset>/<protocol key>/<model>.json."),
    quiet: bool = QUIET_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Search hyperparameters with Optuna on validation data carved from the training data only."""
    from movierec.experiments import protocol_key, tune, tuning_split
    from movierec.experiments.compare import resolve_threshold
    from movierec.experiments.models import model_class

    if trials < 1:
        raise ConfigError(f"--trials must be at least 1, got {trials}.")
    if not 0 < validation_fraction < 0.5:
        raise ConfigError(f"--validation-fraction must be in (0, 0.5), got {validation_fraction}.")
    model_class(model)
    fixed = parse_params(param)
    _check_model_params(model, fixed)
    ds = load_dataset(dataset, data, quiet, **read_options(movies, user_col, item_col, rating_col, time_col, sep,
                                                           rating_range))
    split = tuning_split(ds, protocol, holdout, seed, validation_fraction)
    threshold = resolve_threshold(_parse_threshold(relevance_threshold), ds)
    key = protocol_key(protocol, holdout)

    with Steps(f"tuning {model}", trials, quiet=quiet) as steps:
        def progress(number: int, value: float, params: dict) -> None:
            steps.note(f"trial {number}: validation {value:.4f}  {params}")
            steps.advance(f"trial {number + 1}/{trials}")

        tuned = tune(model, split, metric=metric, trials=trials, seed=seed, fixed=fixed,
                     relevance_threshold=threshold, progress=progress, dataset=ds.name.split(":")[0], protocol=key)
    path = tuned.save(out_path)
    doc = {**tuned.to_dict(), "out": str(path)}
    if as_json:
        print_json(doc)
        return
    out.print(f"best validation {tuned.validation['metric']} {tuned.validation[tuned.validation['metric']]:.4f} "
              f"with {tuned.params}")
    out.print(f"saved to {path}")


# -- plots -----------------------------------------------------------------------------
@plot_app.command("learning-curve")
def plot_learning_curve_cmd(
    model_dir: Path = MODEL_DIR_OPT,
    registry: Path = REGISTRY_OPT,
    name: str = NAME_OPT,
    version: str = VERSION_OPT,
    out_png: Path = typer.Option(..., "--out", "-o", help="PNG to write."),
) -> None:
    """Training and validation RMSE per epoch of a saved model trained with a history (e.g. mf)."""
    from movierec.reporting.viz import plot_learning_curve

    bundle = _bundle(model_dir, registry, name, version)
    history = getattr(bundle.model, "history_", None)
    records = history.get("records") if isinstance(history, dict) else getattr(history, "records", None)
    if not records:
        raise ConfigError(f"The model {bundle.name!r} has no training history to plot.")
    out.print(str(plot_learning_curve(history, out_png, title=f"{bundle.name}: learning curve",
                                              dataset=bundle.manifest.get("metrics", {}).get("dataset"))))


@plot_app.command("tsne")
def plot_tsne_cmd(
    model_dir: Path = MODEL_DIR_OPT,
    registry: Path = REGISTRY_OPT,
    name: str = NAME_OPT,
    version: str = VERSION_OPT,
    out_png: Path = typer.Option(..., "--out", "-o", help="PNG to write."),
    min_ratings: int = typer.Option(50, "--min-ratings", help="Map only movies with this many training ratings."),
    seed: int = typer.Option(0, "--seed", help="Seeds the t-SNE layout and the shuffled-genre comparison."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object (path and genre agreement)."),
) -> None:
    """t-SNE map of movie vectors coloured by genre, and the genre agreement of neighbours."""
    from movierec.evaluation.embedding import genre_agreement
    from movierec.reporting.viz import plot_item_embedding_map

    bundle = _bundle(model_dir, registry, name, version)
    path = plot_item_embedding_map(bundle.model, bundle.catalog, out_png, min_ratings=min_ratings, seed=seed,
                                   dataset=bundle.manifest.get("metrics", {}).get("dataset"))
    agreement = genre_agreement(bundle.model, bundle.catalog, k=10, seed=seed, min_ratings=min_ratings)
    if as_json:
        print_json({"out": str(path), "genre_agreement": agreement})
        return
    out.print(str(path))
    out.print(f"genre agreement of 10 nearest neighbours: {agreement['agreement']:.3f} "
              f"(shuffled genres: {agreement['shuffled']:.3f}, {agreement['n_movies']} movies)")


@plot_app.command("long-tail")
def plot_long_tail_cmd(
    dataset: str = DATASET_OPT,
    data: Path = DATA_OPT,
    user_col: str = USER_COL_OPT,
    item_col: str = ITEM_COL_OPT,
    rating_col: str = RATING_COL_OPT,
    time_col: str = TIME_COL_OPT,
    sep: str = SEP_OPT,
    rating_range: str = RATING_RANGE_OPT,
    out_png: Path = typer.Option(..., "--out", "-o", help="PNG to write."),
) -> None:
    """Ratings per movie against popularity rank (log-log)."""
    from movierec.reporting.viz import plot_long_tail

    ds = load_dataset(dataset, data, **read_options(None, user_col, item_col, rating_col, time_col, sep, rating_range))
    out.print(str(plot_long_tail(ds, out_png)))
