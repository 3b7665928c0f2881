"""The served model in-process: fallbacks for models that cannot do everything, reasons,
taste groups, and the ModelServer following the registry's pointer."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from movierec.answers import Filters, KnownUser, NewPerson, Query, SimilarTo
from movierec.artifacts import Bundle, ModelRegistry
from movierec.artifacts.registry import Pointer
from movierec.errors import BundleError, RegistryError, UnknownUserError
from movierec.models import create
from movierec.serving.server import ModelServer
from movierec.serving.state import ServedModel
from serving_helpers import long_id_bundle

STAR_WARS, JEDI, TOY_STORY = 50, 181, 1


@pytest.fixture(scope="module")
def part(ml100k):
    return ml100k.subset(ml100k.user_idx < 150)


@pytest.fixture(scope="module")
def plain(part) -> ServedModel:
    """global-mean: no similar movies, no cold start, no embeddings."""
    return ServedModel.build(Bundle.from_model(create("global-mean").fit(part), part), "plain", "1")


def test_similar_falls_back_to_genres(plain):
    answer = plain.answer(Query(SimilarTo(STAR_WARS), k=5))
    assert answer["fallback"] is True and STAR_WARS not in [m["movie_id"] for m in answer["items"]]
    star_wars = set(plain.answers.movie(STAR_WARS).genres)
    for item in answer["items"]:
        assert set(item["genres"]) & star_wars and item["reason"].startswith("Also ")


def test_cold_start_falls_back_when_the_model_cannot_fold_in(plain):
    answer = plain.answer(Query(NewPerson(rated=((STAR_WARS, 5.0),), liked=(JEDI,)), k=5))
    assert answer["fallback"] is True and "cannot recommend for a new person" in answer["fallback_reason"]
    assert not {STAR_WARS, JEDI} & {m["movie_id"] for m in answer["items"]}
    assert all(m["reason"].startswith("Popular in ") for m in answer["items"])  # leaning to the genres given


def test_known_users_get_reasons_from_genres(plain, part):
    lists = [plain.answer(Query(KnownUser(u), k=5))["items"] for u in (1, 2)]
    assert [len(items) for items in lists] == [5, 5]
    assert all(m["reason"] is None or m["reason"].startswith("Because you rated ") for items in lists for m in items)
    with pytest.raises(UnknownUserError):
        plain.answer(Query(KnownUser(99999), k=5))


def test_the_memo_is_keyed_by_the_whole_query(ml100k):
    """A memoised answer is reused only for the very same question: another k, another
    exclude_seen or other filters are other answers (a memo keyed without exclude_seen
    would answer a user's seen movies to a request that excludes them)."""
    bundle = Bundle.from_model(create("ease").fit(ml100k), ml100k)
    served = ServedModel.build(bundle, "m", "1", cache_size=10)
    seen = set(ml100k.items.raw_ids[ml100k.item_idx[ml100k.user_idx == ml100k.users.index_of(1)]].tolist())
    asked = [Query(KnownUser(1), k=10, exclude_seen=False), Query(KnownUser(1), k=10),
             Query(KnownUser(1), k=10, filters=Filters(min_ratings=300)), Query(KnownUser(1), k=5)]
    answers = [json.loads(served.answer_bytes(q)) for q in asked]
    first, excluded, popular, shorter = ([m["movie_id"] for m in a["items"]] for a in answers)
    assert set(first) & seen and not set(excluded) & seen
    assert all(plain_count >= 300 for plain_count in (m["n_ratings"] for m in answers[2]["items"]))
    assert len(shorter) == 5 and len(served.memo) == 4
    assert [json.loads(served.answer_bytes(q)) for q in asked] == answers  # hits answer the same bytes
    for u in range(2, 20):  # bounded: the oldest answers go first
        served.answer_bytes(Query(KnownUser(u), k=10))
    assert len(served.memo) == 10
    off = ServedModel.build(bundle, "m", "1", cache_size=0)
    off.answer_bytes(asked[0])
    assert len(off.memo) == 0


def test_taste_groups_are_seeded_and_cover_popular_movies(plain):
    first, again = plain.groups(6), ServedModel.build(plain.bundle, "plain", "1").groups(6)
    assert [g.movie_idx.tolist() for g in first] == [g.movie_idx.tolist() for g in again]
    assert len(first) == 6 and len({g.label for g in first}) == 6
    shown = np.concatenate([g.movie_idx for g in first])
    assert len(set(shown.tolist())) == len(shown)  # no movie in two groups
    counts = plain.answers.counts
    assert counts[shown].min() >= np.sort(counts)[-400]  # among the 400 most rated


def test_the_server_follows_the_pointer_and_keeps_serving_on_a_bad_one(tmp_path, part):
    registry = ModelRegistry(tmp_path / "reg")
    for name in ("pop", "ease"):
        registry.add(Bundle.from_model(create(name).fit(part), part), "m")
    server = ModelServer(tmp_path / "reg")
    first = server.current
    assert (server.name, first.version, first.model.name) == ("m", "1", "pop")
    assert server.poll() is False and server.current is first
    registry.promote("m", "2")
    assert server.poll() is True and server.current.version == "2" and server.current.model.name == "ease"
    (tmp_path / "reg" / "m" / "1" / "items.npy").write_bytes(b"tampered")
    registry_pointer = registry.pointer_path("m")
    registry_pointer.write_text('{"version": "1", "history": []}')
    assert server.poll() is False and server.current.version == "2"
    assert "corrupt" in server.last_error or "items.npy" in server.last_error
    with pytest.raises(RegistryError, match="no earlier version"):
        server.rollback()
    assert server.current.version == "2"


# -- ModelServer: the registry's pointer, changes made elsewhere, load failures -------------
@pytest.fixture
def two_versions(tmp_path, part) -> ModelRegistry:
    """A registry "m": 1 = pop (current), 2 = EASE."""
    registry = ModelRegistry(tmp_path / "reg")
    for name in ("pop", "ease"):
        registry.add(Bundle.from_model(create(name).fit(part), part), "m")
    return registry


def _move_pointer(registry: ModelRegistry, version: str) -> None:
    """Move the pointer as another process would (atomically), skipping verification; each
    version's pointer has its own size, so the server sees every move."""
    path = registry.pointer_path("m")
    tmp = path.with_name(".moving.json")
    tmp.write_text(json.dumps({"version": version, "history": [str(v) for v in range(1, int(version))]}))
    tmp.replace(path)


def test_a_promote_made_elsewhere_during_a_reload_is_served(two_versions, monkeypatch):
    """Another process promotes version 2 while this server reloads version 1: the pointer
    change must not be absorbed by the reload; the next poll serves version 2."""
    from movierec.serving import server as server_module

    server = ModelServer(two_versions.root)
    assert server.current.version == "1"
    real_load = server_module.load_bundle
    moved = []

    def load_while_another_process_promotes(path):
        bundle = real_load(path)
        if not moved:
            moved.append(ModelRegistry(two_versions.root).promote("m", "2").version)
        return bundle

    monkeypatch.setattr(server_module, "load_bundle", load_while_another_process_promotes)
    _, reloaded = server.reload()
    monkeypatch.setattr(server_module, "load_bundle", real_load)
    assert moved == ["2"] and reloaded.version == "1"
    assert server.poll() is True and server.current.version == "2"


def test_last_error_clears_when_the_pointer_names_the_served_version_again(two_versions):
    server = ModelServer(two_versions.root)
    (two_versions.root / "m" / "2" / "items.npy").write_bytes(b"tampered")
    _move_pointer(two_versions, "2")
    assert server.poll() is False and server.current.version == "1"
    assert "items.npy" in server.last_error
    _move_pointer(two_versions, "1")  # moved back to what is served
    assert server.poll() is False and server.current.version == "1"
    assert server.last_error is None


def test_a_corrupt_pointer_is_reported_and_never_stops_the_watcher(two_versions):
    server = ModelServer(two_versions.root)
    two_versions.pointer_path("m").write_text('{"version": 2, "history": "1"}')
    assert server.poll() is False and server.current.version == "1"
    pointer = two_versions.pointer_path("m")
    assert server.last_error == f"The pointer {pointer} is corrupt; promote a version to rewrite it."
    server.start_watching(0.01)
    try:
        _move_pointer(two_versions, "2")  # rewritten: the watcher, still alive, serves it
        for _ in range(3000):
            if server.current.version == "2":
                break
            time.sleep(0.01)
        assert server.current.version == "2" and server.last_error is None
    finally:
        server.stop_watching()


def test_one_pointer_reader(two_versions):
    """The server reads the pointer with the registry's reader: the same answer, the same
    refusal of a corrupt file."""
    server = ModelServer(two_versions.root)
    two_versions.promote("m", "2")
    assert server.read_pointer() == two_versions.read_pointer("m") == Pointer("2", ("1",))
    two_versions.pointer_path("m").write_text('{"version": "2", "history": [1]}')
    for read in (server.read_pointer, lambda: two_versions.read_pointer("m")):
        with pytest.raises(RegistryError, match="is corrupt"):
            read()


def test_a_version_that_verifies_but_cannot_be_served_is_refused_before_the_pointer_moves(two_versions, tmp_path):
    long_ids = two_versions.add(long_id_bundle(tmp_path), "m", promote=False)
    assert two_versions.verify("m", long_ids.version) == [(long_ids, None)]
    server = ModelServer(two_versions.root)
    before = two_versions.pointer_path("m").read_bytes()
    with pytest.raises(BundleError, match="cannot serve version 3 of 'm': .*movie IDs run to 252 characters"):
        server.promote(long_ids.version)
    assert two_versions.pointer_path("m").read_bytes() == before
    assert server.current.version == "1" and "movie IDs run to 252 characters" in server.last_error
