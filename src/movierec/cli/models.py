"""`movierec train | evaluate | recommend | similar | tune | plot ...`: models from the command line.

Every command works with any registered model (`movierec.models.available()`); rating
commands (`evaluate`, rating `tune`) need a model that predicts ratings.
"""

from __future__ import annotations

import inspect
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import typer

from movierec.cli import app
from movierec.cli.common import DATA_OPT, DATASET_OPT, console, load_dataset, out, print_json
from movierec.errors import ConfigError

plot_app = typer.Typer(help="Write PNG plots: learning curves, embedding maps, the long tail.", no_args_is_help=True)
app.add_typer(plot_app, name="plot")

PROTOCOLS = ("ml100k-folds", "random", "temporal")
PARAM_OPT = typer.Option(None, "--param", "-p", help="Model hyperparameter key=value (repeatable), e.g. dim=64.")
CONFIG_OPT = typer.Option(None, "--config", help="JSON file of hyperparameters, e.g. written by `movierec tune`.")


# -- helpers ---------------------------------------------------------------------------
def _parse_value(text: str) -> Any:
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def model_params(config: Path | None, params: list[str] | None) -> tuple[str | None, dict]:
    """Hyperparameters from --config (a tune result {"model", "params"} or a plain dict),
    overridden by --param key=value. Returns (model named in the config or None, params)."""
    named, merged = None, {}
    if config is not None:
        if not Path(config).is_file():
            raise ConfigError(f"Config file {config} does not exist.")
        try:
            data = json.loads(Path(config).read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ConfigError(f"Config file {config} is not valid JSON.") from None
        if not isinstance(data, dict):
            raise ConfigError(f"Config file {config} must hold a JSON object.")
        if "params" in data:
            named, data = data.get("model"), data["params"]
        merged.update(data)
    for item in params or []:
        if "=" not in item:
            raise ConfigError(f"--param takes key=value, got {item!r}.")
        key, value = item.split("=", 1)
        merged[key.strip()] = _parse_value(value)
    return named, merged


def build_model(name: str | None, config: Path | None, params: list[str] | None, seed: int | None = None):
    """A registered model with hyperparameters from --config / --param (and --seed when it has one)."""
    from movierec.models import create, get_class

    named, merged = model_params(config, params)
    name = name or named
    if name is None:
        raise ConfigError("Name a model with --model (or give a --config written by `movierec tune`).")
    if named is not None and named != name:
        raise ConfigError(f"The config {config} is for model {named!r}, not {name!r}.")
    cls = get_class(name)
    if seed is not None and "seed" in inspect.signature(cls.__init__).parameters and "seed" not in merged:
        merged["seed"] = seed
    return create(name, **merged), merged


def _rating_metrics(model, test) -> dict:
    from movierec.evaluation.metrics import mae, rmse

    pred = model._predict(test.user_idx.astype(np.int64), test.item_idx.astype(np.int64))
    return {"rmse": rmse(pred, test.rating), "mae": mae(pred, test.rating), "n_test": int(test.n_ratings)}


def _unseen_counts(split) -> dict:
    seen_u = split.train.user_counts() > 0
    seen_i = split.train.item_counts() > 0
    return {
        "test_ratings_unseen_user": int((~seen_u[split.test.user_idx]).sum()),
        "test_ratings_unseen_movie": int((~seen_i[split.test.item_idx]).sum()),
    }


def make_splits(protocol: str, dataset: str | None, data: Path | None, train: Path | None, test: Path | None,
                test_fraction: float, seed: int, validation_fraction: float = 0.0):
    """(description, list of Splits) for a protocol; validation carved from training data when asked."""
    from movierec.data.split import files_split, ml100k_folds, random_split, temporal_split

    if (train is None) != (test is None):
        raise ConfigError("Give both --train and --test (or neither).")
    if train is not None:
        if dataset is not None or data is not None:
            raise ConfigError("Give either --train/--test or one of --dataset/--data, not both.")
        return f"{train} -> {test}", "files", [files_split(train, test)]
    if protocol not in PROTOCOLS:
        raise ConfigError(f"Unknown protocol {protocol!r}; choose one of: {', '.join(PROTOCOLS)}.")
    ds = load_dataset(dataset, data)
    if protocol == "ml100k-folds":
        if dataset != "ml-100k":
            raise ConfigError("The ml100k-folds protocol needs --dataset ml-100k; use --protocol random or temporal for other data.")
        return ds.name, protocol, list(ml100k_folds(ds))
    if not 0 < test_fraction < 1:
        raise ConfigError(f"--test-fraction must be between 0 and 1, got {test_fraction}.")
    if protocol == "random":
        return ds.name, protocol, [random_split(ds, test_fraction=test_fraction, seed=seed)]
    return ds.name, protocol, [temporal_split(ds, train=1 - test_fraction, validation=0.0, test=test_fraction)]


def carve_validation(train, fraction: float, seed: int, temporal: bool = False):
    """(fit part, validation part) of a training Dataset: a seeded random share, or the latest share."""
    n = train.n_ratings
    n_val = max(1, int(round(n * fraction)))
    if temporal and train.has_timestamps:
        order = np.argsort(train.timestamp, kind="stable")
    else:
        order = np.random.default_rng(seed).permutation(n)
    hold = np.zeros(n, dtype=bool)
    hold[order[-n_val:] if temporal else order[:n_val]] = True
    return train.subset(~hold, name=f"{train.name}:fit"), train.subset(hold, name=f"{train.name}:validation")


def _load(model_dir: Path):
    from movierec.models.base import Recommender

    return Recommender.load(model_dir)


def _rec_rows(model, rec) -> list[dict]:
    rows = []
    if rec.item_ids.size == 0:
        return rows
    idx = model.items_.lookup(rec.item_ids[0])
    for rank, (movie, j, score) in enumerate(zip(rec.item_ids[0], idx, rec.scores[0]), start=1):
        rows.append({
            "rank": rank,
            "movie_id": movie.item() if hasattr(movie, "item") else movie,
            "title": model.catalog_.label(int(j)),
            "genres": list(model.catalog_.genres[int(j)]),
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


# -- train -----------------------------------------------------------------------------
@app.command("train")
def train_cmd(
    model: str = typer.Option(None, "--model", "-m", help="Registered model name, e.g. mf."),
    out_dir: Path = typer.Option(..., "--out", "-o", help="Model folder to write."),
    dataset: str = DATASET_OPT,
    data: Path = DATA_OPT,
    param: list[str] = PARAM_OPT,
    config: Path = CONFIG_OPT,
    seed: int = typer.Option(None, "--seed", help="Seed for models that take one."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Fit a model on a whole dataset and write a model folder that `recommend` can load."""
    ds = load_dataset(dataset, data)
    rec, params = build_model(model, config, param, seed)
    with console.status(f"training {rec.name} on {ds.name} ({ds.n_ratings:,} ratings)"):
        start = time.perf_counter()
        rec.fit(ds)
        seconds = time.perf_counter() - start
    metrics: dict[str, Any] = {"fit_seconds": seconds, "n_ratings": ds.n_ratings, "dataset": ds.name}
    if rec.predicts_ratings:
        metrics["train_rmse"] = _rating_metrics(rec, ds)["rmse"]
    history = getattr(rec, "history_", None)
    if history is not None:
        metrics["best_epoch"] = history.best_epoch
        metrics["best_validation"] = history.best_value
        metrics["epochs_run"] = len(history.records)
    path = rec.save(out_dir, metrics=metrics)
    result = {"model": rec.name, "params": rec.get_params(), "out": str(path), "metrics": metrics}
    if as_json:
        print_json(result)
        return
    out.print(f"trained {rec.name} on {ds.name} in {seconds:.1f}s; model folder: {path}")
    for key in ("train_rmse", "best_epoch", "best_validation"):
        if metrics.get(key) is not None:
            value = metrics[key]
            out.print(f"  {key}: {value:.4f}" if isinstance(value, float) else f"  {key}: {value}")


# -- evaluate --------------------------------------------------------------------------
@app.command("evaluate")
def evaluate_cmd(
    model: str = typer.Option(None, "--model", "-m", help="Registered rating model, e.g. mf, bias."),
    dataset: str = DATASET_OPT,
    data: Path = DATA_OPT,
    train: Path = typer.Option(None, "--train", help="Training ratings file (with --test)."),
    test: Path = typer.Option(None, "--test", help="Test ratings file (with --train)."),
    protocol: str = typer.Option("random", "--protocol", help="ml100k-folds, random or temporal."),
    test_fraction: float = typer.Option(0.2, "--test-fraction", help="Share of ratings tested (random, temporal)."),
    seed: int = typer.Option(42, "--seed", help="Seeds the random split and the model."),
    param: list[str] = PARAM_OPT,
    config: Path = CONFIG_OPT,
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Rating prediction accuracy (RMSE, MAE) and fit time of a model under a protocol."""
    probe, params = build_model(model, config, param, seed)
    if not probe.predicts_ratings:
        raise ConfigError(f"Model {probe.name!r} ranks movies and does not predict ratings, so RMSE does not apply.")
    name, protocol, splits = make_splits(protocol, dataset, data, train, test, test_fraction, seed)
    folds = []
    for split in splits:
        rec, _ = build_model(probe.name, config, param, seed)
        with console.status(f"fitting {rec.name} on {split.train.name} ({split.train.n_ratings:,} ratings)"):
            start = time.perf_counter()
            rec.fit(split.train)
            seconds = time.perf_counter() - start
        row = {"fold": split.info.get("fold", split.info.get("protocol")), **_rating_metrics(rec, split.test),
               "fit_seconds": seconds, "n_train": int(split.train.n_ratings), **_unseen_counts(split)}
        folds.append(row)
    result = {
        "model": probe.name,
        "params": probe.get_params(),
        "dataset": name,
        "protocol": protocol,
        "rmse": float(np.mean([f["rmse"] for f in folds])),
        "mae": float(np.mean([f["mae"] for f in folds])),
        "fit_seconds": float(np.mean([f["fit_seconds"] for f in folds])),
        "n_test": int(sum(f["n_test"] for f in folds)),
    }
    if protocol in ("random",):
        result.update({"seed": seed, "test_fraction": test_fraction})
    if protocol == "temporal":
        result["test_fraction"] = test_fraction
    if len(folds) > 1:
        result["rmse_std"] = float(np.std([f["rmse"] for f in folds], ddof=1))
    result["folds"] = folds
    if as_json:
        print_json(result)
        return
    from rich.table import Table

    table = Table(title=f"{probe.name} on {name} ({protocol})")
    for col in ("fold", "RMSE", "MAE", "fit s", "train", "test"):
        table.add_column(col, justify="right")
    for f in folds:
        table.add_row(str(f["fold"]), f"{f['rmse']:.4f}", f"{f['mae']:.4f}", f"{f['fit_seconds']:.2f}",
                      f"{f['n_train']:,}", f"{f['n_test']:,}")
    if len(folds) > 1:
        table.add_row("mean", f"{result['rmse']:.4f}", f"{result['mae']:.4f}", f"{result['fit_seconds']:.2f}", "", "",
                      style="bold")
    out.print(table)


# -- recommend / similar ---------------------------------------------------------------
@app.command("recommend")
def recommend_cmd(
    model_dir: Path = typer.Option(..., "--model-dir", help="Model folder written by `movierec train`."),
    user: str = typer.Option(..., "--user", "-u", help="Raw user ID."),
    k: int = typer.Option(10, "-k", "--k", help="How many movies."),
    include_seen: bool = typer.Option(False, "--include-seen", help="Also list movies the user already rated."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Top-k movies for a user of a saved model, with titles."""
    if k < 1:
        raise ConfigError(f"-k must be at least 1, got {k}.")
    rec = _load(model_dir)
    uid = _raw_id(rec.users_, user)
    result = rec.recommend([uid], k=k, exclude_seen=not include_seen)
    rows = _rec_rows(rec, result)
    if as_json:
        print_json({"user": uid, "model": rec.name, "k": k, "items": rows})
        return
    _print_rows(f"{rec.name}: top {k} for user {uid}", rows, "score")


@app.command("similar")
def similar_cmd(
    model_dir: Path = typer.Option(..., "--model-dir", help="Model folder written by `movierec train`."),
    movie: str = typer.Option(..., "--movie", help="Raw movie ID."),
    k: int = typer.Option(10, "-k", "--k", help="How many movies."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Movies most similar to a movie (cosine similarity of item embeddings), with titles."""
    if k < 1:
        raise ConfigError(f"-k must be at least 1, got {k}.")
    rec = _load(model_dir)
    mid = _raw_id(rec.items_, movie)
    result = rec.similar_items([mid], k=k)
    rows = _rec_rows(rec, result)
    label = rec.catalog_.label(rec.items_.index_of(mid))
    if as_json:
        print_json({"movie": mid, "title": label, "model": rec.name, "k": k, "items": rows})
        return
    _print_rows(f"{rec.name}: movies like {label}", rows, "cosine")


# -- tune ------------------------------------------------------------------------------
def _tune_rating(model_name: str, fit_part, validation, n_trials: int, seed: int, fixed: dict) -> dict:
    import optuna

    from movierec.models import create, get_class

    cls = get_class(model_name)
    if not hasattr(cls, "suggest_params"):
        raise ConfigError(f"Model {model_name!r} has no search space (suggest_params), so it cannot be tuned.")
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def objective(trial) -> float:
        params = {**cls.suggest_params(trial), **fixed}
        # fitted exactly as `evaluate` fits (models that early-stop carve their own hold-out
        # from fit_part), so the validation part only scores the trial
        model = create(model_name, **params).fit(fit_part)
        metrics = _rating_metrics(model, validation)
        trial.set_user_attr("mae", metrics["mae"])
        if getattr(model, "best_epoch_", None):
            trial.set_user_attr("best_epoch", int(model.best_epoch_))
        console.print(f"trial {trial.number}: validation RMSE {metrics['rmse']:.4f}  {params}", highlight=False,
                      soft_wrap=True)
        return metrics["rmse"]

    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(objective, n_trials=n_trials)
    best = study.best_trial
    return {
        "params": {**best.params, **fixed},
        "validation": {"rmse": best.value, "mae": best.user_attrs.get("mae"), "best_epoch": best.user_attrs.get("best_epoch"),
                       "n_trials": n_trials, "seed": seed, "n_fit": int(fit_part.n_ratings),
                       "n_validation": int(validation.n_ratings), "best_trial": best.number},
    }


@app.command("tune")
def tune_cmd(
    model: str = typer.Option(..., "--model", "-m", help="Registered model name, e.g. mf."),
    dataset: str = DATASET_OPT,
    data: Path = DATA_OPT,
    protocol: str = typer.Option("random", "--protocol", help="ml100k-folds (tunes inside u1.base), random, temporal, or leave-last (per user, as `compare` splits)."),
    test_fraction: float = typer.Option(0.2, "--test-fraction", help="Test share of the protocol's split (never looked at)."),
    holdout: float = typer.Option(1.0, "--holdout", help="leave-last: 1 = each user's last item, 0.2 = last 20% (validation: the same amount just before)."),
    validation_fraction: float = typer.Option(0.1, "--validation-fraction", help="Share of the training part used to validate."),
    trials: int = typer.Option(30, "--trials", "-n", help="Optuna trials."),
    seed: int = typer.Option(42, "--seed", help="Seeds the splits, the sampler and the models."),
    param: list[str] = typer.Option(None, "--param", "-p", help="Fixed hyperparameter key=value (not searched)."),
    out_path: Path = typer.Option(None, "--out", "-o", help="JSON to write; default configs/tuned/<dataset>/<protocol>/<model>.json."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Search hyperparameters with Optuna on a validation split carved from the training data only."""
    from movierec.models import get_class

    if trials < 1:
        raise ConfigError(f"--trials must be at least 1, got {trials}.")
    if not 0 < validation_fraction < 0.5:
        raise ConfigError(f"--validation-fraction must be in (0, 0.5), got {validation_fraction}.")
    cls = get_class(model)
    _, fixed = model_params(None, param)
    folder = protocol
    if protocol == "leave-last":
        # the same split `compare --protocol leave-last --holdout H` makes; tuned on its
        # validation part (the interactions just before each user's test part)
        from movierec.evaluation.protocols import build_split

        ds = load_dataset(dataset, data)
        split = build_split(ds, "leave-last", holdout=holdout, seed=seed)
        name, fit_part, validation = ds.name, split.train, split.validation
        folder = "loo" if float(holdout) == 1 else f"last{round(float(holdout) * 100)}"
        if validation is None or validation.n_ratings == 0:
            raise ConfigError(f"The leave-last split of {name} has no validation part to tune on.")
    else:
        name, protocol, splits = make_splits(protocol, dataset, data, None, None, test_fraction, seed)
        split = splits[0]  # ml100k-folds: u1; its test part is never used here
        fit_part, validation = carve_validation(split.train, validation_fraction, seed, temporal=protocol == "temporal")
    if cls.predicts_ratings:
        result = _tune_rating(model, fit_part, validation, trials, seed, fixed)
    else:
        try:
            from movierec.models.tune_ranking import tune_ranking
        except ImportError:
            raise ConfigError(
                f"Model {model!r} ranks movies; tuning it needs movierec.models.tune_ranking, which this build lacks."
            ) from None
        from dataclasses import replace

        inner = replace(split, train=fit_part, validation=validation, test=split.test)
        found = tune_ranking(model, inner, trials, seed, fixed_params=fixed or None)
        if isinstance(found, tuple):  # (best_params, optuna study)
            params, study = found
            result = {"params": dict(params),
                      "validation": {"ndcg@10": study.best_value, "n_trials": trials, "seed": seed,
                                     "n_fit": int(fit_part.n_ratings), "n_validation": int(validation.n_ratings),
                                     "best_trial": study.best_trial.number}}
        else:
            result = dict(found) if isinstance(found, dict) and "params" in found else {"params": dict(found)}
            result.setdefault("validation", {})
    saved = {"model": model, "params": result["params"], "validation": result.get("validation", {}),
             "dataset": name, "protocol": protocol, **({"holdout": holdout} if protocol == "leave-last" else {}),
             "split": {"test_fraction": test_fraction if protocol != "ml100k-folds" else None,
                       "fold": split.info.get("fold"), "validation_fraction": validation_fraction, "seed": seed}}
    if out_path is None:
        out_path = Path("configs") / "tuned" / name / folder / f"{model}.json"
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(f".{out_path.name}.tmp")
    tmp.write_text(json.dumps(saved, indent=2, default=float) + "\n")
    tmp.replace(out_path)
    saved["out"] = str(out_path)
    if as_json:
        print_json(saved)
        return
    out.print(f"best validation {saved['validation'].get('rmse', saved['validation'])} with {saved['params']}")
    out.print(f"saved to {out_path}")


# -- plots -----------------------------------------------------------------------------
@plot_app.command("learning-curve")
def plot_learning_curve_cmd(
    model_dir: Path = typer.Option(..., "--model-dir", help="Model folder of a model trained with a history (e.g. mf)."),
    out_png: Path = typer.Option(..., "--out", "-o", help="PNG to write."),
) -> None:
    """Training and validation RMSE per epoch of a saved model."""
    from movierec.viz import plot_learning_curve

    rec = _load(model_dir)
    history = getattr(rec, "history_", None)
    if history is None or not history.records:
        raise ConfigError(f"The model in {model_dir} has no training history to plot.")
    out.print(str(plot_learning_curve(history, out_png, title=f"{rec.name}: learning curve")))


@plot_app.command("tsne")
def plot_tsne_cmd(
    model_dir: Path = typer.Option(..., "--model-dir", help="Model folder of an embedding model."),
    out_png: Path = typer.Option(..., "--out", "-o", help="PNG to write."),
    min_ratings: int = typer.Option(50, "--min-ratings", help="Map only movies with this many training ratings."),
    seed: int = typer.Option(0, "--seed"),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object (path and genre agreement)."),
) -> None:
    """t-SNE map of movie embeddings coloured by genre, and the genre agreement of neighbours."""
    from movierec.evaluation.embedding import genre_agreement
    from movierec.viz import plot_item_embedding_map

    rec = _load(model_dir)
    path = plot_item_embedding_map(rec, out_png, min_ratings=min_ratings, seed=seed)
    agreement = genre_agreement(rec, k=10, seed=seed, min_ratings=min(min_ratings, 20))
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
    out_png: Path = typer.Option(..., "--out", "-o", help="PNG to write."),
) -> None:
    """Ratings per movie against popularity rank (log-log)."""
    from movierec.viz import plot_long_tail

    out.print(str(plot_long_tail(load_dataset(dataset, data), out_png)))
