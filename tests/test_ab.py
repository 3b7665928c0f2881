"""A/B experiments: the experiment file, salted-hash bucketing, team-draft interleaving, the
impressions/outcomes log, the report's statistics, and the service running an experiment
(a real uvicorn on loopback, a real SQLite file).

The registry holds "movies" 1 (ALS, current) and 2 (EASE) (tests/serving_helpers.py).
"""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from serving_helpers import MOVIEREC, LiveServer, free_port, make_registry

from movierec.data.ab_log import AbLog
from movierec.errors import ConfigError
from movierec.evaluation.ab import ab_report, experiment_report
from movierec.serving.ab import (Experiment, ExperimentRunner, Variant, check_together, load_experiment,
                                 parse_experiment, person_key, team_draft)

SPLIT = {"name": "e1", "variants": [{"name": "A", "share": 0.5, "version": 1},
                                    {"name": "B", "share": 0.5, "version": 2, "rerank": "mmr:0.3"}]}


def write(path: Path, doc: dict) -> Path:
    path.write_text(json.dumps(doc))
    return path


def experiment(name: str, shares=(0.5, 0.5), **kw) -> Experiment:
    variants = tuple(Variant(chr(ord("A") + i), s) for i, s in enumerate(shares))
    return Experiment(name=name, variants=variants, salt=kw.pop("salt", name), **kw)


# -- the file, bucketing, interleaving (no server) -------------------------------------------
def test_bucketing_is_sticky_follows_the_shares_and_is_independent_between_experiments():
    people = [person_key(profile=f"person-{i:05d}") for i in range(4000)]
    e1, e2, skew = experiment("e1"), experiment("e2"), experiment("e3", (0.8, 0.2))
    first = [e1.assign(p).name for p in people]
    assert first == [e1.assign(p).name for p in people]  # sticky: a pure function of (salt, person)
    assert abs(first.count("A") / len(people) - 0.5) < 0.04
    assert abs([skew.assign(p).name for p in people].count("A") / len(people) - 0.8) < 0.04
    second = [e2.assign(p).name for p in people]
    agree = np.mean([a == b for a, b in zip(first, second)])
    assert abs(agree - 0.5) < 0.04, agree  # another salt splits people independently
    assert person_key(user_id=42) != person_key(profile="42424242") and person_key(user_id="42") != person_key(
        user_id=42)


def test_experiment_file_is_parsed_with_its_defaults(tmp_path):
    e = load_experiment(write(tmp_path / "e1.json", {**SPLIT, "start": "2026-01-01T00:00:00Z",
                                                      "stop": "2026-02-01T00:00:00"}))
    assert (e.name, e.salt, e.interleave) == ("e1", "e1", False)
    assert [(v.name, v.share, v.version, v.rerank) for v in e.variants] == [("A", 0.5, "1", None),
                                                                           ("B", 0.5, "2", "mmr:0.3")]
    assert e.running(e.start) and not e.running(e.start - 1) and not e.running(e.stop)
    inter = parse_experiment({"name": "i", "interleave": True, "variants": [{"name": "A"}, {"name": "B"}]})
    assert inter.interleave and [v.share for v in inter.variants] == [0.5, 0.5] and inter.label == "A+B"


@pytest.mark.parametrize("doc, words", [
    ({**SPLIT, "variants": [{"name": "A", "share": 0.5}, {"name": "B", "share": 0.4}]}, "sum to 0.9, not 1"),
    ({**SPLIT, "variants": [{"name": "A", "share": 0.5}, {"name": "A", "share": 0.5}]}, "names must differ"),
    ({**SPLIT, "variants": [{"name": "A", "share": 0.5}, {"name": "B", "share": 0.5, "rerank": "mmr:1.5"}]},
     "variant 'B'"),
    ({**SPLIT, "variants": [{"name": "A", "share": 0.5}, {"name": "B", "share": 0.5, "rerank": "shuffle:0.5"}]},
     "Unknown re-ranker"),
    ({**SPLIT, "variants": [{"name": "A", "share": 1.0}]}, "at least two variants"),
    ({**SPLIT, "interleave": True, "variants": [{"name": "A"}, {"name": "B"}, {"name": "C"}]}, "exactly two"),
    ({**SPLIT, "start": "2026-02-01", "stop": "2026-01-01"}, "must come after"),
    ({**SPLIT, "colour": "red"}, "unknown fields: colour"),
])
def test_bad_experiment_files_are_refused_in_one_sentence(tmp_path, doc, words):
    with pytest.raises(ConfigError) as info:
        load_experiment(write(tmp_path / "bad.json", doc))
    message = str(info.value)
    assert words in message and message.startswith("The experiment file") and message.endswith("."), message
    assert "\n" not in message


def test_experiments_that_overlap_on_the_same_people_are_refused():
    jan = dict(start=1_000.0, stop=2_000.0)
    check_together([experiment("e1", **jan), experiment("e2", start=2_000.0, stop=3_000.0)])  # back to back: fine
    with pytest.raises(ConfigError, match="'e1' and 'e2' run at the same time on the same people"):
        check_together([experiment("e1", **jan), experiment("e2", start=1_500.0)])
    with pytest.raises(ConfigError, match="own name"):
        check_together([experiment("e1", **jan), experiment("e1", start=5_000.0)])


def test_team_draft_interleaving_is_fair_ordered_and_seeded():
    a = list(range(20))
    b = [5, 3, 100, 1, 101, 0, 102, 103, 104, 105]
    for seed in range(50):
        picks, teams = team_draft(a, b, 10, f"s{seed}")
        shown = [(a if t == 0 else b)[p] for p, t in zip(picks, teams)]
        assert len(shown) == len(set(shown)) == 10
        assert abs(teams.count(0) - teams.count(1)) <= 1  # each round both teams pick once
        for team, source in ((0, a), (1, b)):  # a team drafts its own list in its order
            mine = [p for p, t in zip(picks, teams) if t == team]
            assert mine == sorted(mine)
            assert all(source[q] in shown for q in range(mine[-1] + 1)) if mine else True
        assert (picks, teams) == team_draft(a, b, 10, f"s{seed}")
    firsts = {team_draft(a, b, 10, f"s{seed}")[1][0] for seed in range(50)}
    assert firsts == {0, 1}  # the coin decides who drafts first


class FakeServed:
    """A served model's answer surface, as `ExperimentRunner` uses it."""

    def answer(self, query):
        return {"model": {"name": "m", "version": "1"}, "variant": None, "items": [{"movie_id": 1}]}

    def answer_bytes(self, query):
        return json.dumps(self.answer(query)).encode()


def test_runner_outside_a_running_experiment_names_no_variant(tmp_path):
    Model = FakeServed

    log = AbLog(tmp_path / "f.sqlite3")
    runner = ExperimentRunner([experiment("later", start=2_000.0)], log, lambda v: Model(), clock=lambda: 1_000.0)
    assert runner.answer(Model(), person_key(user_id=1), None)["variant"] is None
    runner.clock = lambda: 2_500.0
    assert runner.answer(Model(), person_key(user_id=1), None)["variant"] in ("A", "B")
    assert runner.answer(Model(), None, None)["variant"] is None  # nobody to bucket
    assert len(log.impressions("later")) == 1
    log.close()


def test_a_log_that_cannot_be_written_never_costs_the_person_their_list(tmp_path, caplog):
    import sqlite3

    Model = FakeServed

    class BrokenLog(AbLog):  # a full disk, a file another process holds locked too long, ...
        def impression(self, *args, **kw):
            raise sqlite3.OperationalError("disk I/O error")

        def outcomes(self, *args, **kw):
            raise sqlite3.OperationalError("disk I/O error")

    log = BrokenLog(tmp_path / "f.sqlite3")
    runner = ExperimentRunner([experiment("e")], log, lambda v: Model())
    with caplog.at_level("WARNING"):
        assert runner.answer(Model(), person_key(user_id=1), None)["variant"] in ("A", "B")
        assert runner.rated("person-00001", [(1, 4.0)]) == 0
    assert "Could not log an impression of experiment 'e'" in caplog.text and "Could not log outcomes" in caplog.text
    log.close()


# -- the report's statistics (a real SQLite log) ----------------------------------------------
def _log_people(log: AbLog, name: str, exp: Experiment, people: int, keep=lambda variant, rng: True,
                seed: int = 0) -> None:
    rng = random.Random(seed)
    log.register(name, exp.definition())
    for i in range(people):
        person = person_key(profile=f"person-{i:05d}")
        variant = exp.assign(person).name
        if keep(variant, rng):
            log.impression(name, variant, person, "1", list(range(10)), None, 1_000.0 + i)


def test_sample_ratio_check_flags_a_planted_bucketing_skew(tmp_path):
    log = AbLog(tmp_path / "f.sqlite3", durable=False)  # thousands of writes: no fsync each
    _log_people(log, "fair", experiment("fair"), 4000)
    _log_people(log, "uneven", experiment("uneven", (0.7, 0.3)), 4000)
    # the planted skew: 20% of B's people never get logged (a variant that fails to log, or a
    # bucketing that sends some of B's people elsewhere)
    _log_people(log, "skewed", experiment("skewed"), 4000, keep=lambda v, rng: v == "A" or rng.random() > 0.2)
    reports = {r["experiment"]: r for r in ab_report(log)}
    assert not reports["fair"]["srm"]["flagged"] and reports["fair"]["srm"]["p_value"] > 0.001
    assert not reports["uneven"]["srm"]["flagged"], reports["uneven"]["srm"]  # checked against the shares
    assert reports["skewed"]["srm"]["flagged"] and reports["skewed"]["srm"]["p_value"] < 1e-4
    assert reports["fair"]["switched_people"] == 0
    log.close()


def test_interleaved_report_finds_the_preferred_team(tmp_path):
    log = AbLog(tmp_path / "f.sqlite3", durable=False)
    exp = parse_experiment({"name": "mix", "interleave": True, "variants": [{"name": "A"}, {"name": "B"}]})
    log.register("mix", exp.definition())
    rng = random.Random(1)
    a, b = list(range(100, 120)), list(range(200, 220))
    for i in range(300):
        person = person_key(profile=f"person-{i:05d}")
        picks, teams = team_draft(a, b, 10, f"{i}")
        shown = [(a if t == 0 else b)[p] for p, t in zip(picks, teams)]
        names = ["AB"[t] for t in teams]
        log.impression("mix", exp.label, person, "1", shown, names, 1_000.0 + i)
        rated = [(m, 4.0) for m, t in zip(shown, teams) if rng.random() < (0.3 if t == 1 else 0.1)]
        log.outcomes(person, rated, 1_000.5 + i)
    report = experiment_report("mix", log.experiments()["mix"], log.impressions("mix"))
    wins = {row["variant"]: row["wins"] for row in report["variants"]}
    assert report["kind"] == "interleaved" and wins["B"] > 2 * wins["A"], report
    assert report["p_value"] < 1e-4
    log.close()


def test_outcomes_count_only_ratings_of_shown_movies_after_they_were_shown(tmp_path):
    log = AbLog(tmp_path / "f.sqlite3")
    log.register("e", experiment("e").definition())
    me = person_key(profile="person-00001")
    first = log.impression("e", "A", me, "1", [1, 2, 3], None, 100.0)
    second = log.impression("e", "A", me, "1", [3, 4], None, 200.0)
    assert log.outcomes(me, [(1, 4.0), (9, 5.0)], 50.0) == 0  # before anything was shown
    assert log.outcomes(me, [(1, 4.0), (3, 2.0), (9, 5.0), ("4", 1.0)], 300.0) == 2  # 9 and "4" were never shown
    assert log.outcomes(person_key(profile="person-00002"), [(1, 4.0)], 300.0) == 0  # someone else's list
    rows = {imp.id: imp.ratings for imp in log.impressions("e")}
    assert rows == {first: {"1": 4.0}, second: {"3": 2.0}}  # 3 counts for the latest list showing it
    with pytest.raises(ConfigError, match="new name"):
        log.register("e", experiment("e", (0.6, 0.4)).definition())
    log.close()


# -- the service running an experiment --------------------------------------------------------
@pytest.fixture(scope="module")
def registry(tmp_path_factory, ml100k) -> Path:
    return make_registry(tmp_path_factory.mktemp("ab_registry"), ml100k)


@pytest.fixture(scope="module")
def live(registry, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ab_server")
    file = write(tmp / "e1.json", SPLIT)
    server = LiveServer(registry, tmp, experiments=[str(file)])
    server.experiment_file = file
    yield server
    server.stop()


def _rate(live, profile: str, ratings: list[tuple[int, float]]) -> None:
    response = live.post("/ratings", json={"profile": profile, "ratings": [
        {"movie_id": m, "rating": r} for m, r in ratings]})
    assert response.status_code == 200, response.text


def test_the_report_finds_the_variant_people_prefer(live):
    """Simulated people rate B's lists more often and higher (a planted margin); the report,
    through `movierec ab report --json`, finds B better with significance."""
    rng = random.Random(7)
    seen = {}
    for i in range(240):
        profile = f"sim-person-{i:04d}"
        response = live.get("/profile/recommend", params={"profile": profile, "k": 10})
        assert response.status_code == 200, response.text
        body = response.json()
        variant = body["variant"]
        assert variant in ("A", "B") and body["model"]["version"] == {"A": "1", "B": "2"}[variant]
        seen[profile] = variant
        shown = [row["movie_id"] for row in body["items"]]
        chance, stars = (0.35, (4.0, 5.0)) if variant == "B" else (0.15, (3.0, 4.0))
        rated = [(m, rng.choice(stars)) for m in shown if rng.random() < chance]
        unshown = next(m for m in range(1, 1000) if m not in shown)
        _rate(live, profile, rated + [(unshown, 5.0)])  # a movie never shown is no outcome
        seen[profile] = (variant, len(rated))
    result = CliRunner().invoke(_cli_app(), ["ab", "report", "--db", str(live.feedback_db), "--json"])
    assert result.exit_code == 0, result.output
    report = next(r for r in json.loads(result.output)["experiments"] if r["experiment"] == "e1")
    rows = {row["variant"]: row for row in report["variants"]}
    assert sum(row["people"] for row in rows.values()) == 240
    assert rows["A"]["rated"] + rows["B"]["rated"] == sum(n for _, n in seen.values())
    rate, stars = rows["B"]["vs_control"]["rating_rate"], rows["B"]["vs_control"]["mean_stars"]
    assert rate["diff"] > 0.1 and rate["p_value"] < 0.001 and rate["ci"][0] > 0, rate
    assert stars["diff"] > 0.5 and stars["p_value"] < 0.001, stars
    lo, hi = rows["A"]["rating_rate"]["ci"]
    assert lo < 0.15 < hi, rows["A"]["rating_rate"]  # the interval covers the planted rate
    assert not report["srm"]["flagged"] and report["switched_people"] == 0
    text = CliRunner().invoke(_cli_app(), ["ab", "report", "--db", str(live.feedback_db)])
    assert text.exit_code == 0 and "Sample ratio check: ok" in text.output, text.output


def _cli_app():
    from movierec.cli import app

    return app


def test_known_users_get_a_variant_and_lists_outside_a_person_get_none(live):
    body = live.get("/recommend", params={"user_id": 1, "k": 5}).json()
    assert body["variant"] in ("A", "B") and body["model"]["version"] == {"A": "1", "B": "2"}[body["variant"]]
    assert live.get("/recommend_cold", params={"liked": "50,100", "k": 5}).json()["variant"] is None
    assert live.get("/similar/50", params={"k": 5}).json()["variant"] is None


def _person_in(exp: Experiment, variant: str, users=range(100, 200)) -> int:
    return next(u for u in users if exp.assign(person_key(user_id=u)).name == variant)


def _impressions_of(db: Path, experiment: str, person: str) -> list:
    log = AbLog(db)
    try:
        return [imp for imp in log.impressions(experiment) if imp.person == person]
    finally:
        log.close()


def test_a_repeated_list_in_an_experiment_is_a_cache_hit_and_still_logged(live):
    """Variant A answers from version 1, the one /health reports on: its second ask of the
    same list is a hit of the answer cache, and both lists shown are logged."""
    user = _person_in(load_experiment(live.experiment_file), "A")
    params = {"user_id": user, "k": 7}
    first = live.get("/recommend", params=params).json()
    hits = live.get("/health").json()["cache"]["hits"]
    again = live.get("/recommend", params=params).json()
    assert live.get("/health").json()["cache"]["hits"] == hits + 1
    assert again == first and again["variant"] == "A" and again["model"]["version"] == "1"
    shown = _impressions_of(live.feedback_db, "e1", person_key(user_id=user))
    assert [imp.variant for imp in shown] == ["A", "A"]
    assert shown[0].movies == shown[1].movies == [row["movie_id"] for row in first["items"]]


def test_a_batch_answers_each_user_from_their_variant_and_logs_each_list(live):
    e1 = load_experiment(live.experiment_file)
    users = list(range(120, 132))
    before = {u: len(_impressions_of(live.feedback_db, "e1", person_key(user_id=u))) for u in users}
    batch = live.post("/recommend/batch", json={"user_ids": users, "k": 4}).json()
    assert batch["variant"] is None and [r["user_id"] for r in batch["results"]] == users
    variants = {r["variant"] for r in batch["results"]}
    assert variants == {"A", "B"}
    for result in batch["results"]:
        user = result["user_id"]
        assert result["variant"] == e1.assign(person_key(user_id=user)).name
        assert result["model"]["version"] == {"A": "1", "B": "2"}[result["variant"]]
        alone = live.get("/recommend", params={"user_id": user, "k": 4}).json()  # the same variant's same list
        assert [r["movie_id"] for r in result["items"]] == [r["movie_id"] for r in alone["items"]]
        shown = _impressions_of(live.feedback_db, "e1", person_key(user_id=user))
        assert len(shown) == before[user] + 2  # the batch's list, then the single one
        assert shown[before[user]].movies == [r["movie_id"] for r in result["items"]]
        assert shown[before[user]].variant == result["variant"]


def test_an_arm_never_reads_another_arms_cached_list(registry, tmp_path):
    """Both arms answer from the current version; B re-ranks. A list cached before the
    experiment (no re-ranker) is never served to a person of B, whose own list is then cached."""
    from dataclasses import replace

    from movierec.answers import KnownUser, Query
    from movierec.rerank import parse_rerank
    from movierec.serving.server import ModelServer

    server = ModelServer(registry, "movies", cache_size=100)
    m = server.current
    exp = parse_experiment({"name": "arms", "start": "2026-01-01T00:00:00Z", "variants": [
        {"name": "A", "share": 0.5}, {"name": "B", "share": 0.5, "rerank": "mmr:0.9"}]})
    log = AbLog(tmp_path / "f.sqlite3")
    clock = [exp.start - 10]
    runner = ExperimentRunner([exp], log, server.served_version, clock=lambda: clock[0])
    user = _person_in(exp, "B")
    query = Query(KnownUser(user), k=10)
    plain = runner.answer(m, person_key(user_id=user), query)  # before the start: cached as it is
    assert plain["variant"] is None and m.memo.misses == 1
    clock[0] = exp.start + 10
    arm = runner.answer(m, person_key(user_id=user), query)
    reranked = m.answer(replace(query, rerank=parse_rerank("mmr:0.9")))
    assert arm["variant"] == "B" and arm["items"] == reranked["items"] != plain["items"]
    assert (m.memo.hits, m.memo.misses) == (0, 2)
    assert runner.answer(m, person_key(user_id=user), query) == arm and m.memo.hits == 1
    assert [imp.variant for imp in log.impressions("arms")] == ["B", "B"]
    log.close()


def test_a_person_never_switches_variant_across_requests_and_restarts(live, registry):
    users = list(range(1, 31))
    profiles = [f"sticky-person-{i:03d}" for i in range(30)]

    def variants(server) -> list[str]:
        got = [server.get("/recommend", params={"user_id": u, "k": 3}).json()["variant"] for u in users]
        return got + [server.get("/profile/recommend", params={"profile": p, "k": 3}).json()["variant"]
                      for p in profiles]

    before = variants(live)
    assert set(before) == {"A", "B"}
    assert variants(live) == before
    live.stop()  # the last test of the module: the fixture's server restarts on the same files
    again = LiveServer(registry, live.feedback_db.parent, feedback_db=str(live.feedback_db),
                       experiments=[str(live.experiment_file)])
    try:
        assert variants(again) == before
    finally:
        again.stop()
    log = AbLog(live.feedback_db)
    people = {}
    for imp in log.impressions("e1"):
        people.setdefault(imp.person, set()).add(imp.variant)
    assert all(len(v) == 1 for v in people.values())  # and the log says so too, across both processes
    log.close()


def test_interleaved_lists_merge_both_variants(registry, tmp_path):
    file = write(tmp_path / "mix.json", {"name": "mix", "interleave": True,
                                         "variants": [{"name": "A", "version": 1}, {"name": "B", "version": 2}]})
    with LiveServer(registry, tmp_path, experiments=[str(file)]) as server:
        body = server.get("/recommend", params={"user_id": 5, "k": 10}).json()
        assert body["variant"] == "A+B" and len({row["movie_id"] for row in body["items"]}) == 10
        _rate(server, "mix-person-0001", [(50, 5.0)])
        server.get("/profile/recommend", params={"profile": "mix-person-0001", "k": 10})
        batch = server.post("/recommend/batch", json={"user_ids": [6, 7], "k": 10}).json()
        assert [r["variant"] for r in batch["results"]] == ["A+B", "A+B"]
    log = AbLog(server.feedback_db)
    imp = log.impressions("mix")[0]
    assert imp.teams is not None and set(imp.teams) == {"A", "B"} and len(imp.teams) == len(imp.movies)
    batched = {i.person: i for i in log.impressions("mix")
               if i.person in (person_key(user_id=6), person_key(user_id=7))}
    for result in batch["results"]:
        shown = batched[person_key(user_id=result["user_id"])]
        assert shown.movies == [r["movie_id"] for r in result["items"]] and set(shown.teams) == {"A", "B"}
    log.close()


def test_a_bad_experiment_is_refused_before_serving(registry, tmp_path):
    from movierec.serving.app import create_app
    from movierec.serving.settings import ServeSettings

    missing = write(tmp_path / "missing.json", {**SPLIT, "variants": [{"name": "A", "share": 0.5},
                                                                      {"name": "B", "share": 0.5, "version": 9}]})
    settings = ServeSettings(registry, feedback_db=tmp_path / "f.sqlite3", experiments=(missing,))
    with pytest.raises(ConfigError, match="variant 'B' names version 9, which cannot be served"):
        create_app(settings)
    clash = [write(tmp_path / "a.json", SPLIT), write(tmp_path / "b.json", {**SPLIT, "name": "e2"})]
    with pytest.raises(ConfigError, match="run at the same time"):
        create_app(ServeSettings(registry, feedback_db=tmp_path / "f.sqlite3", experiments=tuple(clash)))
    uneven = write(tmp_path / "uneven.json", {**SPLIT, "variants": [{"name": "A", "share": 0.6},
                                                                    {"name": "B", "share": 0.6}]})
    proc = subprocess.run([str(MOVIEREC), "serve", "--registry", str(registry), "--port", "1",
                           "--experiment", str(uneven)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.strip().startswith("error: The experiment file") and "sum to 1.2, not 1" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    proc = subprocess.run([str(MOVIEREC), "serve", "--registry", str(registry), "--port", str(free_port()),
                           "--experiment", str(missing)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "names version 9" in proc.stderr, proc.stderr
