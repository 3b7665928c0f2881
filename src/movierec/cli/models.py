"""`movierec train | evaluate | tune | plot ...`: parse -> call -> print (`recommend` and `similar` live in `cli.recommend`).

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
    DEVICE_OPT,
    THREADS_OPT,
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
    console,
    load_dataset,
    model_and_params,
    out,
    parse_params,
    print_json,
    read_options,
    runtime_from_options,
)
from movierec.cli.sources import MODEL_DIR_OPT, NAME_OPT, REGISTRY_OPT, VERSION_OPT, check_index_kind, open_bundle
from movierec.errors import ConfigError

plot_app = typer.Typer(help="Write PNG plots: learning curves, embedding maps, the long tail.", no_args_is_help=True)
app.add_typer(plot_app, name="plot")

# -- helpers ---------------------------------------------------------------------------
# -- train -----------------------------------------------------------------------------
def _check_out(path: Path, overwrite: bool = False) -> None:
    """Refuse, before any training, a --out that is not a new or empty folder (or, with
    --overwrite, a model folder to replace)."""
    from movierec.artifacts import is_bundle_dir

    resolved, cwd = path.resolve(), Path.cwd().resolve()
    if resolved == cwd or resolved in cwd.parents:
        raise ConfigError(f"Refusing to write the model into {path}: it is the working folder or holds it; "
                          f"name a new folder.")
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        raise ConfigError(f"Refusing to write the model over {path}: it is a file, not a model folder.")
    if path.is_dir() and any(path.iterdir()):
        if not is_bundle_dir(path):
            raise ConfigError(f"Refusing to replace {path}: it holds files but is not a movierec model folder; "
                              f"name a new folder.")
        if not overwrite:
            raise ConfigError(f"{path} already holds a model; give --overwrite to replace it, or name a new folder.")


def _check_model_params(name: str, params: dict) -> None:
    """Unknown or malformed hyperparameters: one sentence before any data is loaded or
    anything is trained."""
    from movierec.experiments.models import check_params

    check_params(name, params)


def _refuse_runtime_params(name: str, param: list[str] | None) -> None:
    """A runtime option given as --param (e.g. -p seed=3 to mf): one sentence naming its
    flag. (Such keys in an older tuned config are dropped instead: see `build_model`.)"""
    from movierec.experiments.models import model_class
    from movierec.training.options import LEGACY_RUNTIME_KEYS

    flags = {"seed": "--seed", "device": "--device", "num_threads": "--threads", "progress": "a terminal"}
    given = [k for k in parse_params(param) if k in LEGACY_RUNTIME_KEYS and k not in model_class(name).default_params()]
    if given:
        raise ConfigError(f"{given[0]} is a runtime option, not a hyperparameter of {name!r}; give it with "
                          f"{flags[given[0]]} instead of --param.")


def _distributed_role(name: str) -> bool:
    """Whether this process takes part in the command under torchrun (always when alone).

    A torch model trains on every rank (DDP, `movierec.training.distributed`); any other
    model trains in rank 0 alone, and the other ranks leave at once (exit 0). Ranks other
    than 0 print nothing and write nothing (see `main`)."""
    from movierec.experiments.models import model_class
    from movierec.models._torch_base import TorchRecommender
    from movierec.training import distributed

    if not distributed.launched():
        return True
    return issubclass(model_class(name), TorchRecommender) or distributed.is_main_process()


def _check_fits_before_loading(name: str, params: dict[str, Any], dataset: str | None, data: Path | None) -> None:
    """Refuse a fit too big for the machine before the data is fetched or read, where its
    size is known without reading it (a MovieLens name, a synthetic file's metadata; see
    `movierec.experiments.data.known_shape`). Under torchrun every rank that trains checks
    the same estimate, so they leave alike."""
    from movierec.experiments.data import check_fits_before_loading
    from movierec.experiments.models import build_model

    check_fits_before_loading(build_model(name, params), dataset, data)


def _runtime_for(name: str, seed: int | None, device: str, threads: int):
    """The fit's RuntimeOptions; a model other than a torch model trains alone under torchrun."""
    from dataclasses import replace

    from movierec.experiments.models import model_class
    from movierec.models._torch_base import TorchRecommender

    runtime = runtime_from_options(seed, device, threads)
    return runtime if issubclass(model_class(name), TorchRecommender) else replace(runtime, distributed=False)


@app.command("train")
def train_cmd(
    model: str = typer.Option(None, "--model", "-m", help="Registered model name, e.g. mf."),
    out_dir: Path = typer.Option(None, "--out", "-o",
                                 help="Model folder to write: a new or empty folder (a model folder only with "
                                      "--overwrite); anything else is refused."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace the model folder --out names."),
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
    seed: int = typer.Option(None, "--seed", help="Seed of the fit (torch models) and of models that take one "
                                                  "(default: the model's own, 42 for torch models)."),
    device: str = DEVICE_OPT,
    threads: int = THREADS_OPT,
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
    _refuse_runtime_params(name, param)
    if out_dir is None and registry is None:
        raise ConfigError("Say where the model goes: --out DIR and/or --registry DIR.")
    _check_model_params(name, params)
    check_index_kind(index)
    if index is not None:
        from movierec.errors import CapabilityError
        from movierec.experiments.models import model_class

        if not model_class(name).capabilities.embeddings:
            raise CapabilityError(f"Model {name!r} gives no embeddings, so it cannot have a retrieval index; "
                                  f"leave out --index.")
    runtime = _runtime_for(name, seed, device, threads)
    if not _distributed_role(name):
        return
    if out_dir is not None:
        _check_out(out_dir, overwrite)
    if registry is not None:
        ModelRegistry(registry).check_writable(name)
    _check_fits_before_loading(name, params, dataset, data)
    ds = load_dataset(dataset, data, quiet, **read_options(movies, user_col, item_col, rating_col, time_col, sep,
                                                           rating_range))
    if not ds.catalog.has_titles() and not quiet:
        console.print("[yellow]note:[/yellow] these movies have no titles, so search and the web page will show "
                      "movie IDs only; give --movies FILE for titles and genres.", highlight=False, soft_wrap=True)
    # the fit's own loops (epochs, sweeps) show as bars under this one, or as log lines
    with Steps(f"training {name} on {ds.name} ({ds.n_ratings:,} ratings)", None, quiet=quiet):
        bundle = train(name, ds, params=params, seed=seed, runtime=runtime)
    from movierec.training.distributed import is_main_process

    if not is_main_process():  # under torchrun, rank 0 alone writes and prints
        return
    result: dict[str, Any] = {"model": bundle.name, "params": bundle.model.get_params(), "config": config_path,
                              "metrics": bundle.metrics}
    if index is not None:
        from movierec.retrieval import ModelIndex, store_index

        with Steps(f"building a retrieval index ({index})", None, quiet=quiet):
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
    holdout: float = typer.Option(None, "--holdout", "--test-fraction",
                                  help=HOLDOUT_HELP + " Rating evaluation makes no validation part."),
    seed: int = SEED_OPT,
    device: str = DEVICE_OPT,
    threads: int = THREADS_OPT,
    param: list[str] = PARAM_OPT,
    config: Path = CONFIG_OPT,
    quiet: bool = QUIET_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Rating prediction accuracy (RMSE, MAE) and fit time of a model under a protocol."""
    from movierec.evaluation.protocols import get_protocol, protocol_label
    from movierec.experiments import evaluate_ratings, rating_splits
    from movierec.experiments.models import build_model

    name, params, config_path = model_and_params(model, config, param)
    _refuse_runtime_params(name, param)
    build_model(name, params)  # unknown model or bad parameters: fail before loading data
    _check_model_params(name, params)
    get_protocol(protocol)  # an unknown protocol, too
    runtime = _runtime_for(name, seed, device, threads)
    if not _distributed_role(name):
        return
    if (train is None) != (test is None):
        raise ConfigError("Give both --train and --test (or neither).")
    if train is not None:
        if dataset is not None or data is not None:
            raise ConfigError("Give either --train/--test or one of --dataset/--data, not both.")
        splits = rating_splits(None, "files", files=(train, test))
        label = f"{train} -> {test}"
    else:
        _check_fits_before_loading(name, params, dataset, data)
        ds = load_dataset(dataset, data, quiet, **read_options(movies, user_col, item_col, rating_col, time_col,
                                                               sep, rating_range))
        splits = rating_splits(ds, protocol, holdout, seed)
        label = ds.name
    info = {"seed": seed, "holdout": holdout, "config": config_path}
    with Steps("evaluating", len(splits), quiet=quiet, unit="fold") as steps:
        result = evaluate_ratings(name, splits, params=params, seed=seed, info=info, progress=steps.start,
                                  runtime=runtime)
    from movierec.training.distributed import is_main_process

    if not is_main_process():  # under torchrun, rank 0 alone prints
        return
    result.dataset = label
    doc = result.to_json()
    if as_json:
        print_json(doc)
        return
    from rich.table import Table

    table = Table(title=f"{name} on {label} ({protocol_label(result.protocol, splits[0].info)})")
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
                                 help=PROTOCOLS_HELP + ". Tuning never looks at the test part."),
    holdout: float = typer.Option(None, "--holdout", "--test-fraction", help=HOLDOUT_HELP + " Never looked at."),
    validation_fraction: float = typer.Option(0.1, "--validation-fraction",
                                              help="Share of the training part used to validate (protocols that "
                                                   "tune on a validation part of their own ignore it)."),
    trials: int = typer.Option(20, "--trials", "-n", help="Optuna trials."),
    metric: str = typer.Option(None, "--metric", help="rmse (rating models' default), or e.g. ndcg@10 (the others')."),
    relevance_threshold: str = typer.Option(None, "--relevance-threshold",
                                            help="Ranking metrics: validation ratings >= this are relevant; "
                                                 "'auto' = 4 on a 1-5 scale; default: all."),
    seed: int = SEED_OPT,
    device: str = DEVICE_OPT,
    threads: int = THREADS_OPT,
    param: list[str] = typer.Option(None, "--param", "-p", help="Fixed hyperparameter key=value (not searched)."),
    out_path: Path = typer.Option(None, "--out", "-o",
                                  help="JSON to write; default <project>/configs/tuned/<dataset>/<protocol key>/<model>.json."),
    quiet: bool = QUIET_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Search hyperparameters with Optuna on validation data carved from the training data only."""
    from movierec.evaluation.protocols import get_protocol, parse_relevance_threshold, resolve_relevance_threshold
    from movierec.experiments import tune, tuning_split
    from movierec.experiments.models import model_class

    if trials < 1:
        raise ConfigError(f"--trials must be at least 1, got {trials}.")
    if not 0 < validation_fraction < 0.5:
        raise ConfigError(f"--validation-fraction must be in (0, 0.5), got {validation_fraction}.")
    model_class(model)
    _refuse_runtime_params(model, param)
    fixed = parse_params(param)
    _check_model_params(model, fixed)
    chosen = get_protocol(protocol)  # unknown protocol or threshold: fail before loading data
    given_threshold = parse_relevance_threshold(relevance_threshold, default=None)
    runtime = _runtime_for(model, seed, device, threads)
    if not _distributed_role(model):
        return
    _check_fits_before_loading(model, fixed, dataset, data)
    ds = load_dataset(dataset, data, quiet, **read_options(movies, user_col, item_col, rating_col, time_col, sep,
                                                           rating_range))
    split = tuning_split(ds, protocol, holdout, seed, validation_fraction)
    threshold = resolve_relevance_threshold(given_threshold, ds)
    key = chosen.config_key(holdout)

    with Steps(f"tuning {model}", trials, quiet=quiet, unit="trial") as steps:
        def progress(number: int, value: float, params: dict) -> None:
            steps.note(f"trial {number}: validation {value:.4f}  {params}")
            steps.advance()

        tuned = tune(model, split, metric=metric, trials=trials, seed=seed, fixed=fixed,
                     relevance_threshold=threshold, progress=progress, dataset=ds.name.split(":")[0], protocol=key,
                     runtime=runtime)
    from movierec.training.distributed import is_main_process

    if not is_main_process():  # under torchrun, rank 0 alone writes and prints
        return
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

    bundle = open_bundle(model_dir, registry, name, version)
    history = bundle.model.history_
    if history is None or not history.records:
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

    bundle = open_bundle(model_dir, registry, name, version)
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
