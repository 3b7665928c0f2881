"""A/B experiments in the service: the experiment file, salted-hash bucketing, team-draft
interleaving, and `ExperimentRunner`, which answers a person's list from their variant and
logs what was shown (`movierec.data.ab_log`).

An experiment file is JSON::

    {"name": "e1", "salt": "optional text (default: the name)",
     "start": "2026-12-01T00:00:00Z", "stop": "2026-12-15T00:00:00Z",   (optional, UTC)
     "interleave": false,                                               (optional)
     "variants": [{"name": "A", "share": 0.5, "version": 1},
                  {"name": "B", "share": 0.5, "version": 2, "rerank": "mmr:0.3"}]}

A person (a user ID or a profile token, `person_key`) falls in variant i when the
SHA-256 of "salt:person", read as a number in [0, 1), lies in the i-th slice of the
shares: the same person always gets the same variant of one experiment (sticky, across
requests, workers and restarts), and two experiments with different salts split people
independently. A variant without "version" answers from the version serving now (it
follows promotions); one naming a version answers from that version, kept loaded beside
the current one.

With "interleave": true (exactly two variants; shares are then not used and may be left
out) everyone gets one list merged from both variants' lists by team-draft interleaving
(Radlinski, Kurup and Joachims, CIKM 2008): each movie is credited to the variant that
drafted it, and a rating of it counts for that variant. Every person sees both variants,
so the comparison needs far fewer people than a split.

Inside an experiment, lists still come through the answer memo/cache of the version that
answers them (`ServedModel.answer_bytes`): its key names that version and the whole query,
the variant's re-ranker included, so one arm never gets another arm's list, and a list
served from the cache is logged like a computed one. `POST /recommend/batch` buckets,
answers and logs each of its users the same way (`ExperimentRunner.answer_batch`).

Several experiment files may be served together when their time windows do not overlap
(each one buckets everyone, so two running at once would both claim the same people).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import random
import sqlite3
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import orjson

from movierec.answers import Query
from movierec.data.ab_log import AbLog
from movierec.errors import ConfigError, MovierecError

_log = logging.getLogger(__name__)

#: how far the shares may be from summing to 1
SHARE_TOLERANCE = 1e-6
_NAME_CHARS = 64


def _when(value: Any, what: str, where: str) -> float | None:
    """An ISO 8601 time (UTC when no zone is given) as Unix seconds, or None."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigError(f"{where}: {what} must be an ISO 8601 time such as \"2026-12-01T00:00:00Z\", got {value!r}.")
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"{where}: {what} must be an ISO 8601 time such as \"2026-12-01T00:00:00Z\", "
                          f"got {value[:40]!r}.") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def _text(value: Any, what: str, where: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > _NAME_CHARS:
        raise ConfigError(f"{where}: {what} must be a text of 1 to {_NAME_CHARS} characters, got {value!r}.")
    return value


def parse_rerank_text(text: str, where: str) -> Any:
    """The re-ranker `text` names (`movierec.rerank.parse_rerank`), refused in one sentence."""
    from movierec.rerank import parse_rerank

    try:
        return parse_rerank(text)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


@dataclass(frozen=True)
class Variant:
    """One arm of an experiment.

    Attributes:
        name: what answers call it ("variant": name).
        share: the fraction of people bucketed into it (unused when interleaving).
        version: the registry version answering it (None: the one serving now).
        rerank: the re-ranker's text form ("mmr:0.3"), or None.
    """

    name: str
    share: float
    version: str | None = None
    rerank: str | None = None


@dataclass(frozen=True)
class Experiment:
    """One experiment: its variants, salt and time window (Unix seconds; None: open).

    Attributes:
        name: the experiment's name (unique among the ones served; the log's key).
        variants: the arms, in the file's order (the first one is the control).
        salt: mixed into the bucketing hash (default: the name).
        start, stop: when it runs, [start, stop) in Unix seconds (None: unbounded).
        interleave: everyone gets a team-draft interleaving of the two variants.
        source: the file it was read from (for sentences).
    """

    name: str
    variants: tuple[Variant, ...]
    salt: str
    start: float | None = None
    stop: float | None = None
    interleave: bool = False
    source: str = "the experiment"

    def running(self, now: float) -> bool:
        """Whether the experiment runs at `now` (Unix seconds)."""
        return (self.start is None or now >= self.start) and (self.stop is None or now < self.stop)

    def assign(self, person: str) -> Variant:
        """The variant `person` (see `person_key`) is bucketed into: sticky, by salted hash."""
        position = bucket_position(self.salt, person)
        total = 0.0
        for variant in self.variants:
            total += variant.share
            if position < total:
                return variant
        return self.variants[-1]  # the shares' rounding leaves a sliver at the top

    @property
    def label(self) -> str:
        """What an interleaved answer's "variant" says: "A+B"."""
        return "+".join(v.name for v in self.variants) if self.interleave else self.name

    def definition(self) -> dict[str, Any]:
        """What decides who sees what (kept in the log, and compared when the service
        restarts with an experiment of the same name): salt, interleave, names and shares."""
        return {"salt": self.salt, "interleave": self.interleave,
                "variants": [{"name": v.name, "share": v.share} for v in self.variants]}


def bucket_position(salt: str, person: str) -> float:
    """SHA-256 of "salt:person" as a number in [0, 1): uniform, and independent between salts."""
    digest = hashlib.sha256(f"{salt}:{person}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def person_key(*, user_id: Any = None, profile: str | None = None) -> str:
    """The person an answer is for, as the log and the bucketing name them: "user:42" or
    "profile:<token>" (a user ID and a profile token never collide)."""
    if profile is not None:
        return f"profile:{profile}"
    return f"user:{json.dumps(user_id)}"


def parse_experiment(doc: Any, where: str = "The experiment") -> Experiment:
    """An `Experiment` from the file's JSON object, checked (each problem one sentence
    starting with `where`). Versions are not checked here (see `ModelServer`).

    Raises:
        ConfigError: no name, no variants, a variant without name or share, duplicate
            variant names, a share outside (0, 1], shares not summing to 1, interleaving
            without exactly two variants, a bad re-ranker, a bad time or stop before start,
            an unknown field.
    """
    if not isinstance(doc, dict):
        raise ConfigError(f"{where} must be a JSON object with \"name\" and \"variants\".")
    unknown = sorted(set(doc) - {"name", "salt", "start", "stop", "interleave", "variants"})
    if unknown:
        raise ConfigError(f"{where} has unknown fields: {', '.join(unknown)}.")
    name = _text(doc.get("name"), "the experiment's \"name\"", where)
    salt = doc.get("salt", name)
    salt = _text(salt, "\"salt\"", where) if salt is not None else name
    interleave = doc.get("interleave", False)
    if not isinstance(interleave, bool):
        raise ConfigError(f"{where}: \"interleave\" must be true or false, got {interleave!r}.")
    raw = doc.get("variants")
    if not isinstance(raw, list) or len(raw) < 2:
        raise ConfigError(f"{where} needs \"variants\": a list of at least two variants.")
    if interleave and len(raw) != 2:
        raise ConfigError(f"{where}: interleaving merges exactly two variants, got {len(raw)}.")
    variants = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise ConfigError(f"{where}: variant {i + 1} must be a JSON object with \"name\" and \"share\".")
        extra = sorted(set(item) - {"name", "share", "version", "rerank"})
        if extra:
            raise ConfigError(f"{where}: variant {i + 1} has unknown fields: {', '.join(extra)}.")
        vname = _text(item.get("name"), f"variant {i + 1}'s \"name\"", where)
        share = item.get("share", 1.0 / len(raw) if interleave else None)
        if isinstance(share, bool) or not isinstance(share, (int, float)) or not math.isfinite(share) \
                or not 0 < share <= 1:
            raise ConfigError(f"{where}: variant {vname!r} needs a \"share\" between 0 and 1, got {share!r}.")
        version = item.get("version")
        if version is not None:
            if isinstance(version, bool) or not isinstance(version, (int, str)) or not str(version).strip():
                raise ConfigError(f"{where}: variant {vname!r} names version {version!r}; give a registry version "
                                  "such as 2, or leave it out to serve the current one.")
            version = str(version).strip()
        rerank = item.get("rerank")
        if rerank is not None:
            if not isinstance(rerank, str):
                raise ConfigError(f"{where}: variant {vname!r} has \"rerank\" {rerank!r}; give a text such as "
                                  "\"mmr:0.3\".")
            parsed = parse_rerank_text(rerank, f"{where}, variant {vname!r}")
            rerank = str(parsed) if parsed is not None else None
        variants.append(Variant(vname, float(share), version, rerank))
    names = [v.name for v in variants]
    if len(set(names)) != len(names):
        raise ConfigError(f"{where}: variant names must differ, got {', '.join(names)}.")
    total = sum(v.share for v in variants)
    if abs(total - 1.0) > SHARE_TOLERANCE:
        raise ConfigError(f"{where}: the variants' shares sum to {total:g}, not 1.")
    start = _when(doc.get("start"), "\"start\"", where)
    stop = _when(doc.get("stop"), "\"stop\"", where)
    if start is not None and stop is not None and stop <= start:
        raise ConfigError(f"{where}: \"stop\" must come after \"start\".")
    return Experiment(name=name, variants=tuple(variants), salt=salt, start=start, stop=stop,
                      interleave=interleave, source=where)


def load_experiment(path: str | Path) -> Experiment:
    """The experiment in the JSON file `path`, checked (see `parse_experiment`).

    Raises:
        ConfigError: no such file, not JSON, or a problem `parse_experiment` refuses.
    """
    path = Path(path)
    where = f"The experiment file {path}"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"No experiment file at {path}.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{where} cannot be read ({exc}).") from None
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"{where} is not valid JSON ({exc}).") from None
    return parse_experiment(doc, where)


def check_together(experiments: Sequence[Experiment]) -> tuple[Experiment, ...]:
    """`experiments`, refused when two share a name or run at the same time (each buckets
    everyone, so both would claim the same people).

    Raises:
        ConfigError: the sentence names both experiments.
    """
    for i, a in enumerate(experiments):
        for b in experiments[i + 1:]:
            if a.name == b.name:
                raise ConfigError(f"Two experiments are named {a.name!r}; give each experiment its own name.")
            a_start, a_stop = a.start if a.start is not None else -math.inf, a.stop if a.stop is not None else math.inf
            b_start, b_stop = b.start if b.start is not None else -math.inf, b.stop if b.stop is not None else math.inf
            if a_start < b_stop and b_start < a_stop:
                raise ConfigError(f"The experiments {a.name!r} and {b.name!r} run at the same time on the same "
                                  "people; give them \"start\" and \"stop\" times that do not overlap.")
    return tuple(experiments)


def team_draft(a: Sequence[Any], b: Sequence[Any], k: int, seed: str) -> tuple[list[int], list[int]]:
    """Team-draft interleaving of two ranked lists.

    Each round the team with fewer picks (a coin toss, seeded by `seed`, when even) adds
    its highest-ranked item not yet in the list.

    Args:
        a, b: the two ranked lists of hashable keys (e.g. movie IDs).
        k: the interleaved list's length (at most the number of distinct keys).
        seed: the coin's seed (e.g. salt, person and request time): the same seed gives the
            same list.

    Returns:
        (picks, teams): the interleaved list's j-th item is `a[picks[j]]` when teams[j] is
        0 and `b[picks[j]]` when it is 1.
    """
    coin = random.Random(hashlib.sha256(seed.encode("utf-8")).digest())
    chosen: set[Any] = set()
    picks: list[int] = []
    teams: list[int] = []
    count = [0, 0]
    cursor = [0, 0]
    lists = (a, b)
    while len(picks) < k:
        options = []
        for team in (0, 1):
            while cursor[team] < len(lists[team]) and lists[team][cursor[team]] in chosen:
                cursor[team] += 1
            if cursor[team] < len(lists[team]):
                options.append(team)
        if not options:
            break
        if len(options) == 1:
            team = options[0]
        elif count[0] != count[1]:
            team = 0 if count[0] < count[1] else 1
        else:
            team = coin.randrange(2)
        position = cursor[team]
        chosen.add(lists[team][position])
        picks.append(position)
        teams.append(team)
        count[team] += 1
        cursor[team] += 1
    return picks, teams


class ExperimentRunner:
    """Answers people's lists from their variant while an experiment runs, and logs them.

    Args:
        experiments: the experiments served (checked with `check_together`).
        log: where impressions and outcomes go (None: no experiments, nothing logged).
        model_for: version (None: the current one) -> the `ServedModel` answering it
            (`ModelServer.served_version`).
        clock: Unix seconds now (tests give their own).
    """

    def __init__(self, experiments: Iterable[Experiment], log: AbLog | None,
                 model_for: Callable[[str | None], Any], clock: Callable[[], float] = time.time) -> None:
        self.experiments = check_together(list(experiments))
        self.log = log
        self.model_for = model_for
        self.clock = clock
        self._reranks = {v.rerank: parse_rerank_text(v.rerank, f"{e.source}, variant {v.name!r}")
                         for e in self.experiments for v in e.variants if v.rerank is not None}

    def running(self, now: float | None = None) -> Experiment | None:
        """The experiment running now, or None."""
        now = self.clock() if now is None else now
        return next((e for e in self.experiments if e.running(now)), None)

    def _variant_query(self, m: Any, variant: Variant, query: Query) -> tuple[Any, Query]:
        """The `ServedModel` answering `variant` and `query` as the variant asks it (its re-ranker)."""
        served = m if variant.version is None else self.model_for(variant.version)
        if variant.rerank is not None:
            query = replace(query, rerank=self._reranks[variant.rerank])
        return served, query

    def _variant_answer(self, m: Any, variant: Variant, query: Query) -> dict[str, Any]:
        """`variant`'s answer to `query`, through the answer memo/cache of the version answering
        it (`ServedModel.answer_bytes`): the memo is that version's own (or the shared cache's
        key names the version) and the query carries the variant's re-ranker, so an arm never
        reads another arm's list. The cached answer names no variant; the caller names it."""
        served, query = self._variant_query(m, variant, query)
        return orjson.loads(served.answer_bytes(query))

    def answer(self, m: Any, person: str | None, query: Query) -> dict[str, Any]:
        """The answer to `query` for `person` (see `person_key`; None: nobody to bucket),
        with "variant": the variant's name (an interleaved list: "A+B"), or None outside an
        experiment; an answer inside one is logged as an impression (a log that cannot be
        written is warned about, and the list answered all the same). Lists come through the
        answering version's answer memo/cache (`ServedModel.answer_bytes`), inside an
        experiment too: a list served from the cache is logged like a computed one.

        Args:
            m: the `ServedModel` taken for this request (answers variants without a version).
        """
        now = self.clock()
        experiment = self.running(now) if person is not None and self.log is not None else None
        if experiment is None:
            return orjson.loads(m.answer_bytes(query))
        assert person is not None and self.log is not None
        if experiment.interleave:
            doc, teams = self._interleaved(m, experiment, person, query, now)
            label = experiment.label
        else:
            variant = experiment.assign(person)
            doc, teams, label = self._variant_answer(m, variant, query), None, variant.name
        doc["variant"] = label
        try:
            self.log.impression(experiment.name, label, person, doc["model"]["version"],
                                [row["movie_id"] for row in doc["items"]], teams, now)
        except sqlite3.Error as exc:  # the person still gets their list; the report misses this one
            _log.warning("Could not log an impression of experiment %r in %s: %s", experiment.name, self.log.path, exc)
        return doc

    def answer_json(self, m: Any, person: str | None, query: Query) -> bytes:
        """`answer` as compact JSON bytes (outside a running experiment: the memo's bytes as they are)."""
        if person is None or self.log is None or self.running() is None:
            return m.answer_bytes(query)
        return orjson.dumps(self.answer(m, person, query))

    def answer_batch(self, m: Any, user_ids: Sequence[Any], query: Query) -> dict[str, Any]:
        """The POST /recommend/batch answer for known users `user_ids` (the model's raw IDs).

        Outside an experiment `m` answers everyone. Inside one each user is bucketed as
        `answer` buckets them ("user:<id>"), answered by their variant's version and
        re-ranker (users of one variant scored together), and every user's list is logged
        as an impression, all in one transaction. Each result names its variant and the
        version that answered it; the batch's own "variant" is null (its users may be in
        different variants).

        Raises:
            UnknownUserError: a user the answering version does not know.
        """
        now = self.clock()
        experiment = self.running(now) if self.log is not None else None
        if experiment is None:
            answers = m.answers.answer_users(list(user_ids), query)
            return {"model": m.ref, "variant": None,
                    "results": [{"user_id": u, "model": m.ref, "variant": None, "items": a.items_json()}
                                for u, a in zip(user_ids, answers)]}
        people = [person_key(user_id=u) for u in user_ids]
        if experiment.interleave:
            arms = [self._batch_items(m, variant, list(user_ids), query) for variant in experiment.variants]
            results, shown = [], []
            for j, (user, person) in enumerate(zip(user_ids, people)):
                (ref, items_a), (_, items_b) = arms[0][j], arms[1][j]
                picks, teams = team_draft([r["movie_id"] for r in items_a], [r["movie_id"] for r in items_b],
                                          query.k, f"{experiment.salt}:{person}:{now!r}")
                items = [(items_a if team == 0 else items_b)[p] for p, team in zip(picks, teams)]
                names = [experiment.variants[t].name for t in teams]
                results.append({"user_id": user, "model": ref, "variant": experiment.label, "items": items})
                shown.append((experiment.name, experiment.label, person, ref["version"],
                              [row["movie_id"] for row in items], names, now))
        else:
            assigned = [experiment.assign(person) for person in people]
            answered: dict[int, tuple[dict[str, Any], list[dict[str, Any]]]] = {}
            for variant in experiment.variants:
                rows = [j for j, v in enumerate(assigned) if v is variant]
                if rows:
                    got = self._batch_items(m, variant, [user_ids[j] for j in rows], query)
                    answered.update(zip(rows, got))
            results, shown = [], []
            for j, (user, person, variant) in enumerate(zip(user_ids, people, assigned)):
                ref, items = answered[j]
                results.append({"user_id": user, "model": ref, "variant": variant.name, "items": items})
                shown.append((experiment.name, variant.name, person, ref["version"],
                              [row["movie_id"] for row in items], None, now))
        assert self.log is not None
        try:
            self.log.impressions_shown(shown)
        except sqlite3.Error as exc:  # the lists are still answered; the report misses this batch
            _log.warning("Could not log %d impressions of experiment %r in %s: %s", len(shown), experiment.name,
                         self.log.path, exc)
        return {"model": m.ref, "variant": None, "results": results}

    def _batch_items(self, m: Any, variant: Variant, user_ids: list[Any],
                     query: Query) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
        """(the answering version's {"name", "version"}, the list's rows) of each user in
        `user_ids` as `variant` answers them (scored together)."""
        served, query = self._variant_query(m, variant, query)
        return [(served.ref, a.items_json()) for a in served.answers.answer_users(user_ids, query)]

    def _interleaved(self, m: Any, experiment: Experiment, person: str, query: Query,
                     now: float) -> tuple[dict[str, Any], list[str]]:
        a, b = experiment.variants
        answer_a, answer_b = self._variant_answer(m, a, query), self._variant_answer(m, b, query)
        items_a, items_b = answer_a["items"], answer_b["items"]
        picks, teams = team_draft([r["movie_id"] for r in items_a], [r["movie_id"] for r in items_b], query.k,
                                  f"{experiment.salt}:{person}:{now!r}")
        items = [(items_a if team == 0 else items_b)[p] for p, team in zip(picks, teams)]
        doc = {**answer_a, "items": items, "fallback": answer_a["fallback"] and answer_b["fallback"]}
        return doc, [experiment.variants[t].name for t in teams]

    def rated(self, profile: str, ratings: Sequence[tuple[Any, float]], when: float | None = None) -> int:
        """Record stored ratings of `profile` as outcomes of the lists shown to it (no-op
        without experiments); returns how many were outcomes."""
        if self.log is None or not ratings:
            return 0
        try:
            return self.log.outcomes(person_key(profile=profile), ratings, self.clock() if when is None else when)
        except sqlite3.Error as exc:  # the ratings are stored already; the report misses these outcomes
            _log.warning("Could not log outcomes in %s: %s", self.log.path, exc)
            return 0


def open_runner(paths: Sequence[str | Path], db: str | Path | None, model_for: Callable[[str | None], Any],
                check_version: Callable[[str], None]) -> ExperimentRunner:
    """The `ExperimentRunner` of the experiment files `paths`, logging to `db`.

    Every version a variant names is checked with `check_version` (which raises when it
    cannot be served); an experiment already in the log with other shares or salt is refused.

    Raises:
        ConfigError: a bad file, experiments that overlap, a version that cannot be served,
            an experiment changed since it was logged.
    """
    experiments = check_together([load_experiment(p) for p in paths])
    if not experiments:
        return ExperimentRunner((), None, model_for)
    for experiment in experiments:
        for variant in experiment.variants:
            if variant.version is not None:
                try:
                    check_version(variant.version)
                except MovierecError as exc:
                    raise ConfigError(f"{experiment.source}: variant {variant.name!r} names version "
                                      f"{variant.version}, which cannot be served ({str(exc).rstrip('.')}).") from None
    if db is None:
        raise ConfigError("Experiments need a feedback database to log what they show.")
    log = AbLog(db)
    try:
        for experiment in experiments:
            log.register(experiment.name, experiment.definition())
    except BaseException:
        log.close()
        raise
    return ExperimentRunner(experiments, log, model_for)


__all__ = ["Variant", "Experiment", "ExperimentRunner", "parse_experiment", "load_experiment", "check_together",
           "bucket_position", "person_key", "team_draft", "open_runner", "SHARE_TOLERANCE"]
