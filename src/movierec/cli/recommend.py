"""`movierec recommend` and `movierec similar`: parse -> the answer layer -> print.

The answering is `movierec.answers` (the same code the service runs), so a question asked
here and at the HTTP API gets the same list, the same reasons and the same fallbacks; with
`--json` the `items` are exactly the API's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from movierec.cli.common import JSON_OPT, app, console, out, print_json
from movierec.cli.sources import MODEL_DIR_OPT, NAME_OPT, REGISTRY_OPT, VERSION_OPT, check_index_kind, open_bundle
from movierec.errors import ConfigError

K_OPT = typer.Option(10, "-k", "--k", help="How many movies (1 to 1000).")
MIN_RATINGS_OPT = typer.Option(0, "--min-ratings", help="Only movies with at least this many training ratings.")
GENRES_OPT = typer.Option(None, "--genres", help="Only movies of one of these genres, e.g. Comedy,Sci-Fi.")
ALLOW_OPT = typer.Option(None, "--only", help="Only these movie IDs, e.g. 1,50,172.")
DENY_OPT = typer.Option(None, "--exclude", help="Never these movie IDs, e.g. 1,50.")
RERANK_OPT = typer.Option(None, "--rerank",
                          help="Re-rank for variety: mmr:W (maximal marginal relevance) or calibrated:W (genre "
                               "proportions of the person's liked movies), W from 0 (the model's order) to 1, "
                               "e.g. mmr:0.3; or both calibrated and varied: calibrated:W+diversity:V.")


def _split_list(text: str) -> list[str]:
    return [part.strip() for part in text.replace(";", ",").split(",") if part.strip()]


def _filters(min_ratings: int, genres: str | None, only: str | None, exclude: str | None):
    from movierec.answers import Filters

    if only is not None and not _split_list(only):
        raise ConfigError("--only needs at least one movie ID, like --only 1,50,172.")
    return Filters(min_ratings=min_ratings, genres=tuple(_split_list(genres or "")),
                   allow=tuple(_split_list(only)) if only is not None else None,
                   deny=tuple(_split_list(exclude or "")))


def _new_person(rated: str | None, liked: str | None, ratings_file: Path | None):
    """A `NewPerson` from --rated, --liked and/or --ratings-file (movie IDs stay text: the
    answer layer reads them as the model's IDs)."""
    from movierec.answers import NewPerson

    pairs: list[tuple[str, float]] = []
    likes: list[str] = []
    if rated is not None:
        items = _split_list(rated)
        if not items:
            raise ConfigError("--rated needs movie=rating pairs, like --rated 50=5,172=4.")
        for pair in items:
            movie, eq, value = pair.partition("=")
            if not eq or not movie.strip():
                raise ConfigError(f"--rated takes movie=rating pairs like 50=5,172=4; {pair!r} is not one.")
            try:
                pairs.append((movie.strip(), float(value)))
            except ValueError:
                raise ConfigError(f"--rated: the rating in {pair!r} is not a number.") from None
    if liked is not None:
        likes = _split_list(liked)
        if not likes:
            raise ConfigError("--liked needs at least one movie ID, like --liked 1,71,95.")
    if ratings_file is not None:
        from movierec.data.readers import read_new_user

        raw, ratings = read_new_user(ratings_file)
        if ratings is None:
            likes += [str(m) for m in raw]
        else:
            pairs += [(str(m), float(r)) for m, r in zip(raw, ratings)]
    return NewPerson(rated=tuple(pairs), liked=tuple(likes))


def _answerer(bundle, index: str | None):
    """The answer layer over `bundle`, through a retrieval index when --index is given."""
    from movierec.answers import Answerer

    if index is None:
        return Answerer(bundle), None
    from movierec.retrieval import index_for_bundle

    built_index, built = index_for_bundle(bundle, index)
    if built:
        console.print(f"[dim]built a {built_index.kind} index in memory: the model folder holds none of that kind "
                      f"(`movierec train --index {index}` stores one)[/dim]", highlight=False)
    return Answerer(bundle, built_index), built_index.kind


def answer_doc(bundle, answer, extra: dict[str, Any]) -> dict[str, Any]:
    """The JSON the command prints: the model version, the query's settings and the answer
    (whose `items` are exactly what the API answers)."""
    return {"model": {"name": bundle.name, "version": bundle.version}, **extra, **answer.to_json()}


def _print_answer(title: str, answer, score_label: str = "score") -> None:
    """A table of the answer: rank, movie ID, title with its reason below it, rating count, score."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title)
    for col, justify in (("#", "right"), ("movie", "right"), ("title", "left"), ("ratings", "right"),
                         (score_label, "right")):
        table.add_column(col, justify=justify)
    for rank, row in enumerate(answer.rows, start=1):
        m = row.movie
        label = Text(f"{m.title} ({m.year})" if m.year else (m.title or "?"))
        if row.reason:
            label.append(f"\n{row.reason}", style="dim")
        table.add_row(str(rank), str(m.movie_id), label, f"{m.n_ratings:,}", f"{row.score:.3f}")
    out.print(table)
    if answer.fallback:
        out.print(f"fallback: {answer.fallback_reason} These are popular movies, not the model's own list.",
                  highlight=False, soft_wrap=True)


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
    liked_threshold: float = typer.Option(None, "--liked-threshold",
                                          help="Stars at or above which a new person's rating counts as liked "
                                               "(default: the model's, 3.5 on a 1-5 scale); lower ones are dislikes."),
    k: int = K_OPT,
    min_ratings: int = MIN_RATINGS_OPT,
    genres: str = GENRES_OPT,
    only: str = ALLOW_OPT,
    exclude: str = DENY_OPT,
    include_seen: bool = typer.Option(False, "--include-seen",
                                      help="Also list movies the user already rated (or the new person gave)."),
    index: str = typer.Option(None, "--index",
                              help="Answer through a retrieval index over the model's embeddings: auto, exact, "
                                   "ivf or hnsw (the one stored in the model folder when its kind matches, "
                                   "else one built in memory)."),
    rerank: str = RERANK_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Top-k movies with titles and reasons from a saved model (a model folder or a registry
    version): for a known user (--user), or for a new person from their ratings and/or liked
    movies (--rated, --liked, --ratings-file), without retraining. Ratings below the liked
    threshold are dislikes: never "more like this"."""
    from movierec.answers import KnownUser, Query
    from movierec.rerank import parse_rerank

    check_index_kind(index)
    reranker = parse_rerank(rerank)
    person_given = [flag for flag, value in (("--rated", rated), ("--liked", liked), ("--ratings-file", ratings_file))
                    if value is not None]
    if (user is None) == (not person_given):
        raise ConfigError("Give one of --user ID (a user the model knows) or a new person's --rated, --liked "
                          f"and/or --ratings-file{', not --user and ' + person_given[0] + ' together' if user else ''}.")
    filters = _filters(min_ratings, genres, only, exclude)
    subject = KnownUser(user) if user is not None else _new_person(rated, liked, ratings_file)
    query = Query(subject, k=k, exclude_seen=not include_seen, filters=filters, liked_threshold=liked_threshold,
                  rerank=reranker)
    bundle = open_bundle(model_dir, registry, name, version)
    answerer, kind = _answerer(bundle, index)
    answer = answerer.answer(query)
    extra: dict[str, Any] = {"k": k, "min_ratings": min_ratings}
    if kind is not None:
        extra["index"] = kind
    if reranker is not None:
        extra["rerank"] = str(reranker)
    if as_json:
        print_json(answer_doc(bundle, answer, extra))
        return
    n = len(answer.rows)
    if answer.kind == "user":
        title = f"{bundle.name}: top {n} for user {answer.user_id}"
    else:
        given = len(subject.rated) + len(subject.liked)
        title = f"{bundle.name}: top {n} for a new person who gave {given} movie{'s' if given != 1 else ''}"
        _print_given(answerer, answer)
    if filters.active:
        title += f" ({_said(filters)})"
    if reranker is not None:
        title += f", re-ranked {reranker}"
    _print_answer(title, answer)


def _said(filters) -> str:
    parts = []
    if filters.min_ratings:
        parts.append(f"movies with {filters.min_ratings}+ ratings")
    if filters.genres:
        parts.append(" or ".join(filters.genres))
    if filters.allow is not None:
        parts.append(f"{len(filters.allow)} allowed movies")
    if filters.deny:
        parts.append(f"{len(filters.deny)} excluded movies")
    return "; ".join(parts)


def _print_given(answerer, answer) -> None:
    """What the new person's movies did: liked, disliked (with the threshold), ignored."""
    def names(ids) -> str:
        return "; ".join(answerer.reasoner.label(int(i)) for i in answerer.movie_index(ids))

    if answer.liked:
        out.print(f"liked: {names(answer.liked)}", highlight=False, soft_wrap=True)
    if answer.disliked:
        out.print(f"disliked (below {answer.liked_threshold:g} stars; never \"more like this\"): "
                  f"{names(answer.disliked)}", highlight=False, soft_wrap=True)
    if answer.ignored:
        out.print(f"ignored (unknown to the model): {', '.join(str(m) for m in answer.ignored)}", highlight=False,
                  soft_wrap=True)


@app.command("similar")
def similar_cmd(
    model_dir: Path = MODEL_DIR_OPT,
    registry: Path = REGISTRY_OPT,
    name: str = NAME_OPT,
    version: str = VERSION_OPT,
    movie: str = typer.Option(..., "--movie", help="Raw movie ID."),
    k: int = K_OPT,
    min_ratings: int = MIN_RATINGS_OPT,
    genres: str = GENRES_OPT,
    only: str = ALLOW_OPT,
    exclude: str = DENY_OPT,
    rerank: str = RERANK_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Movies most like a movie, by the model's own movie-to-movie similarity (genre overlap
    and popularity stand in, flagged, for models that cannot tell)."""
    from movierec.answers import Answerer, Query, SimilarTo
    from movierec.rerank import parse_rerank

    reranker = parse_rerank(rerank)
    query = Query(SimilarTo(movie), k=k, filters=_filters(min_ratings, genres, only, exclude), rerank=reranker)
    bundle = open_bundle(model_dir, registry, name, version)
    answer = Answerer(bundle).answer(query)
    if as_json:
        print_json(answer_doc(bundle, answer, {"k": k, **({"rerank": str(reranker)} if reranker else {})}))
        return
    m = answer.movie
    label = f"{m.title} ({m.year})" if m.year else m.title
    _print_answer(f"{bundle.name}: movies like {label}" + (f", re-ranked {reranker}" if reranker else ""), answer,
                  "similarity")
