"""Compare several models on one leak-free split (the pipeline behind `movierec compare`).

Every model is fitted on the same data (train + validation; hyperparameters come from
tuned configurations chosen on validation), evaluated on the same test users with the
same candidates, and tested against the best baseline (paired t-test + Wilcoxon,
Holm-corrected) with bootstrap 95% CIs.

A re-ranker (`CompareSpec.rerank`, e.g. "mmr:0.3") re-ranks every model's lists before they
are measured; trade-off curves (`CompareSpec.rerank_curves`, e.g. ("mmr", "calibrated"))
evaluate every model again under each named re-ranker at each of `curve_weights`, recording
NDCG, intra-list diversity, calibration KL and coverage per weight (`rerank_curves`).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from movierec.data.dataset import Dataset
from movierec.errors import ConfigError
from movierec.evaluation.runner import Comparison
from movierec.evaluation.protocols import (
    SampledEvaluationWarning,
    get_protocol,
    resolve_relevance_threshold,
    sample_negatives,
    split_summary,
)
from movierec.experiments.configs import config_root, find_tuned
from movierec.experiments.data import dataset_name, known_shape, load_data
from movierec.experiments.models import build_model, check_params, model_class
from movierec.models.ranker import Ranker
from movierec.rerank import CURVE_WEIGHTS, RERANKERS, Reranker, parse_rerank
from movierec.training.options import RuntimeOptions, runtime_options


@dataclass
class CompareSpec:
    """What to compare, on which data and how.

    Attributes:
        dataset: MovieLens name (e.g. "ml-100k") or a Dataset; or give `data`, or
            `train` and `test` files.
        data: path of a ratings file.
        train, test: explicit training and test files (the "files" protocol).
        protocol: a registered protocol name ("temporal", "leave-last", "random",
            "ml100k-folds", "cold-movies" or one registered with
            `movierec.evaluation.protocols.register_protocol`); it splits the data,
            names the tuned configs' folder and picks the candidates (cold-movies ranks
            only the movies held out of training, for every test user).
        holdout: the protocol's test amount (leave-last: 1 = last item, 0.2 = last 20%).
        models: registered model names.
        ks: cut-offs, e.g. (10, 20).
        metrics: metric names (default: the runner's standard set).
        relevance_threshold: "auto" (4 on a 1-5 scale), None or "none" (every test
            item relevant) or a number (see
            `movierec.evaluation.protocols.resolve_relevance_threshold`).
        sampled_negatives: rank among this many sampled negatives instead of all movies
            (0 = full ranking, recommended).
        seed: seed of the split, the models and the bootstrap.
        config_root: root of tuned configurations (default `config_root()`).
        params: per-model hyperparameters overriding tuned ones, {model: {key: value}}.
        read_options: how to read `data` (movies file, column names ...; see
            `movierec.data.load_ratings`); with `train` and `test` only a movies file
            ({"movies": path}: titles and genres for genre metrics and genre features).
        rerank: a re-ranker, or its text form ("mmr:0.3", "calibrated:0.5"), applied to
            every model's lists before they are measured; None: the models' own lists.
        rerank_curves: re-rankers whose trade-off curves to compute, as their text form
            without the weight ("mmr", "calibrated", "mmr:genres"): every model evaluated
            under the re-ranker at each of `curve_weights`.
        curve_weights: the weights of the curves, each in [0, 1].
        runtime: how the torch models train (device, threads, ...; see
            `movierec.training.options`); its seed is replaced by `seed`.
    """

    dataset: str | Dataset | None = None
    data: str | Path | None = None
    train: str | Path | None = None
    test: str | Path | None = None
    protocol: str = "temporal"
    holdout: float | None = None
    models: Sequence[str] = ("random", "pop")
    ks: Sequence[int] = (10,)
    metrics: Sequence[str] | None = None
    relevance_threshold: float | str | None = "auto"
    sampled_negatives: int = 0
    seed: int = 42
    config_root: str | Path | None = None
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    read_options: dict[str, Any] = field(default_factory=dict)
    rerank: str | Reranker | None = None
    rerank_curves: Sequence[str] = ()
    curve_weights: Sequence[float] = CURVE_WEIGHTS
    runtime: RuntimeOptions | None = None


def curve_reranker(name: str, weight: float) -> Reranker:
    """The re-ranker of a trade-off curve at one weight: "mmr" -> mmr:W, "mmr:genres" ->
    mmr:W:genres, "calibrated" -> calibrated:W.

    Raises:
        ConfigError: an unknown re-ranker or similarity, a weight outside [0, 1].
    """
    head, _, tail = str(name).strip().partition(":")
    if head.strip().lower() not in RERANKERS:
        raise ConfigError(f"Unknown re-ranker {str(name)[:40]!r} for a trade-off curve; choose from: "
                          f"{', '.join(RERANKERS)} (mmr also as mmr:genres or mmr:vectors).")
    rerank = RERANKERS[head.strip().lower()](weight)  # the weight is checked here
    return parse_rerank(f"{head}:{float(rerank.weight)!r}" + (f":{tail}" if tail else ""))  # type: ignore[return-value]


def _check_rerank(spec: CompareSpec) -> tuple[Reranker | None, list[str], list[float]]:
    """The re-ranker, the curves' re-rankers (text without weight) and weights of `spec`, checked."""
    rerank = parse_rerank(spec.rerank) if isinstance(spec.rerank, str) or spec.rerank is None else spec.rerank
    curves = [str(n).strip().lower() for n in spec.rerank_curves if str(n).strip()]
    if len(set(curves)) != len(curves):
        raise ConfigError(f"A trade-off curve is asked for twice: {', '.join(curves)}.")
    try:
        weights = sorted({float(w) for w in spec.curve_weights}) if spec.curve_weights else []
    except (TypeError, ValueError):
        raise ConfigError(f"The trade-off curves' weights must be numbers from 0 to 1, got "
                          f"{list(spec.curve_weights)!r}.") from None
    if curves and not weights:
        raise ConfigError("Give at least one weight for the trade-off curves.")
    for name in curves:
        for weight in weights:
            curve_reranker(name, weight)
    return rerank, curves, weights


def rerank_curves(models: dict, train: Dataset, test: Dataset, names: Sequence[str], weights: Sequence[float],
                  k: int, relevance_threshold: float | None = None, candidates=None) -> dict:
    """Trade-off curves of re-ranking: every model evaluated under each named re-ranker at
    each weight (weight 0 is the model's own list).

    Args:
        models: name -> fitted Recommender (fitted on `train`'s Dataset).
        train, test, relevance_threshold, candidates: as `evaluation.runner.evaluate_ranking`.
        names: re-rankers as text without the weight ("mmr", "calibrated", "mmr:genres";
            see `curve_reranker`).
        weights: weights in [0, 1].
        k: the cut-off of the metrics.

    Returns:
        {"k": k, "metrics": [...], "points": [{"model", "rerank", "weight", "ndcg@k",
        "diversity_genre@k", "calibration_kl@k", "coverage@k"}, ...]} (JSON-ready).
    """
    from movierec.evaluation.runner import evaluate_ranking

    metrics = ("ndcg", "diversity_genre", "calibration_kl", "coverage")
    points = []
    for model_name, model in models.items():
        for name in names:
            for weight in weights:
                result = evaluate_ranking(model, train, test, ks=(k,), metrics=metrics,
                                          relevance_threshold=relevance_threshold, candidates=candidates,
                                          rerank=curve_reranker(name, weight))
                points.append({"model": model_name, "rerank": name, "weight": float(weight),
                               **{f"{m}@{k}": result.summary.get(f"{m}@{k}") for m in metrics}})
    return {"k": int(k), "metrics": [f"{m}@{k}" for m in metrics], "points": points}


def _check_spec(spec: CompareSpec) -> tuple[list[str], list[int], list[str] | None]:
    from movierec.evaluation.runner import ALL_METRICS

    names = list(spec.models)
    if not names:
        raise ConfigError("Name at least one model to compare.")
    if len(set(names)) != len(names):
        raise ConfigError(f"A model is listed twice: {', '.join(names)}.")
    ks = sorted({int(k) for k in spec.ks}) if spec.ks else []
    if not ks or any(k < 1 for k in ks):
        raise ConfigError(f"Cut-offs K must be positive whole numbers, got {list(spec.ks)!r}.")
    metrics = list(spec.metrics) if spec.metrics else None
    if metrics:
        bad = sorted(set(metrics) - set(ALL_METRICS))
        if bad:
            raise ConfigError(f"Unknown metric(s) {', '.join(bad)}; choose from: {', '.join(ALL_METRICS)}.")
    for name in names:
        model_class(name)  # fail fast, before loading data
    for name, params in spec.params.items():
        if name not in names:
            raise ConfigError(f"Hyperparameters are given for {name!r}, which is not among the compared models.")
        check_params(name, params)
    return names, ks, metrics


def model_settings(names: Sequence[str], dataset: str | None, key: str | None, seed: int,
                   root: str | Path | None = None, overrides: dict[str, dict[str, Any]] | None = None
                   ) -> dict[str, dict[str, Any]]:
    """For each model: {"params": tuned params overridden by `overrides`, "config": the
    tuned config file used or None} (tuned configs from `find_tuned`)."""
    out = {}
    for name in names:
        tuned = find_tuned(name, dataset, key, root)
        params = {**(tuned.params if tuned else {}), **(overrides or {}).get(name, {})}
        out[name] = {"params": params, "config": str(tuned.path) if tuned else None}
    return out


def _check_fits_before_loading(spec: CompareSpec, names: list[str], protocol) -> None:
    """Refuse, before the data is fetched or read, a hyperparameter out of range, and a
    model too big for the machine where the data's size is known without reading it (a
    MovieLens name with published counts, a synthetic file's metadata; see `known_shape`): each model with the
    parameters it would be fitted with (tuned config and overrides).

    Raises:
        ConfigError: a hyperparameter out of range.
        ResourceError: the first model that does not fit, in one sentence.
    """
    shape = known_shape(spec.dataset, spec.data)
    root = Path(spec.config_root) if spec.config_root is not None else config_root()
    name = None if spec.data is not None else (dataset_name(spec.dataset) if isinstance(spec.dataset, Dataset)
                                                else str(spec.dataset).split(":")[0])
    settings = model_settings(names, name, protocol.config_key(spec.holdout), spec.seed, root, spec.params)
    for model_name in names:
        model = build_model(model_name, settings[model_name]["params"], spec.seed)  # checks the ranges
        if shape is not None:
            model.check_fits(*shape)


def compare(spec: CompareSpec, log: Callable[[str], None] | None = None,
            download: Callable[[int, int | None], None] | None = None) -> Comparison:
    """Fit every model of `spec` on one split and compare them on its test part.

    Args:
        spec: see `CompareSpec`.
        log: called with progress lines ("fitting NAME ...", "evaluating ...", notes).
        download: called with (bytes done, bytes total or None) while a MovieLens
            dataset is downloaded (never for a cached one).

    Returns:
        Comparison; ``info["models_config"]`` records every model's full parameters and
        the tuned config file used (or None), ``info["warnings"]`` any warning (e.g. of
        sampled-negative evaluation).
    """
    from movierec.evaluation.runner import compare_models

    log = log or (lambda msg: None)
    names, ks, metrics = _check_spec(spec)
    reranker, curves, weights = _check_rerank(spec)
    if (spec.train is None) != (spec.test is None):
        raise ConfigError("Give both a training file and a test file (or neither).")
    if spec.train is not None:
        if spec.dataset is not None or spec.data is not None:
            raise ConfigError("Explicit training and test files replace the dataset; give one or the other.")
        other = sorted(set(spec.read_options) - {"movies"})
        if other:
            raise ConfigError(f"Reading options ({', '.join(other)}) apply to a ratings file to split; explicit "
                              f"training and test files take only a movies file.")
        protocol = get_protocol("files")
        split = protocol.splits(None, files=(spec.train, spec.test))[0]
        if spec.read_options.get("movies") is not None:
            _add_movies(split, spec.read_options["movies"])
        name = None
    else:
        protocol = get_protocol(spec.protocol)  # an unknown name fails before any data is read
        _check_fits_before_loading(spec, names, protocol)
        ds = load_data(spec.dataset, spec.data, progress=download, **spec.read_options)
        split = protocol.splits(ds, spec.holdout, spec.seed)[0]
        # tuned configs are per MovieLens dataset; a ratings file only uses root-level ones
        name = dataset_name(ds) if spec.data is None else None
    summary = split_summary(split)
    dropped = summary.get("dropped", {})
    if dropped.get("test_unseen_users"):
        log(f"dropped {dropped['test_unseen_users']} test users with no training history "
            f"({dropped['test_unseen_user_ratings']} ratings)")
    threshold = resolve_relevance_threshold(spec.relevance_threshold, split.train)
    history = split.train_full()
    candidates, messages = protocol.candidates(split, "test"), []
    if spec.sampled_negatives:
        if candidates is not None:
            raise ConfigError(f"The {protocol.name} protocol ranks its own candidate movies only; "
                              f"it takes no sampled negatives.")
        from movierec.config import cache_dir

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", SampledEvaluationWarning)
            candidates = sample_negatives(history, split.test, n_negatives=spec.sampled_negatives, seed=spec.seed,
                                          cache_dir=cache_dir() / "negatives")
        messages += [str(w.message) for w in caught if issubclass(w.category, SampledEvaluationWarning)]

    root = Path(spec.config_root) if spec.config_root is not None else config_root()
    settings = model_settings(names, name, protocol.config_key(spec.holdout), spec.seed, root, spec.params)
    fitted, timing, used = {}, {}, {}
    for model_name in names:
        model = build_model(model_name, settings[model_name]["params"], spec.seed)
        used[model_name] = {"params": model.get_params(), "config": settings[model_name]["config"]}
        log(f"fitting {model_name} ...")
        t0, c0 = time.perf_counter(), time.process_time()
        # hyperparameters come from validation (tuned configs); the test run fits on
        # train + validation, so no model loses the interactions just before the test period
        model.fit(history, runtime=runtime_options(spec.runtime, spec.seed))
        timing[model_name] = {"fit_s": time.perf_counter() - t0, "fit_cpu_s": time.process_time() - c0}
        fitted[model_name] = model
    info = {"protocol": protocol.name, "dataset": name, "split": summary, "timing": timing, "models_config": used,
            "config_root": str(root), "sampled_negatives": spec.sampled_negatives or None, "warnings": messages}
    if reranker is not None:
        info["rerank"] = str(reranker)
    importance = {n: m.feature_importance() for n, m in fitted.items() if isinstance(m, Ranker)}
    if importance:  # the report shows what the ranker's second stage learnt from
        info["feature_importance"] = importance
    log("evaluating ...")
    comp = compare_models(fitted, history, split.test, ks=ks, metrics=metrics, relevance_threshold=threshold,
                          candidates=candidates, seed=spec.seed, info=info, rerank=reranker)
    if curves:
        log(f"trade-off curves of {', '.join(curves)} re-ranking ...")
        comp.info["rerank_curves"] = rerank_curves(fitted, history, split.test, curves, weights, ks[0], threshold,
                                                   candidates)
    return comp


def _add_movies(split, movies: str | Path) -> None:
    """Titles and genres from a movies file (see `movierec.data.movielens.read_movies`) for
    every part of a split read from explicit files (the parts share one ID map and catalog);
    rated movies the file lacks are named in a DataWarning."""
    from movierec.data.dataset import Catalog
    from movierec.data.movielens import read_movies
    from movierec.data.readers import DataWarning

    catalog = Catalog.from_frame(split.train.items, read_movies(movies))
    for part in split.parts().values():
        part.catalog = catalog
    untitled = int((catalog.titles == "").sum())
    if untitled:
        warnings.warn(f"{untitled:,} of the {len(split.train.items):,} rated movies are not in {movies}; "
                      f"they are shown without a title.", DataWarning, stacklevel=3)


__all__ = ["CompareSpec", "compare", "model_settings", "rerank_curves", "curve_reranker"]
