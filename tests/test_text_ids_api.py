"""Own data served as it is: text user and movie IDs and a 1-10 scale through every endpoint,
against a real uvicorn on loopback.

The model is EASE trained on ML-100K's real ratings written as someone's own files: IMDb-style
movie IDs ("tt0000050" is Star Wars), names as user IDs ("alice" is user 1) and ten stars (an
ML-100K rating r is 2r). Its manifest maps two feedback profiles to the users they became, as
a version trained by `movierec retrain` does. A model with whole-number IDs keeps them
(checked in-process at the end): a text ID given to it is a 422 sentence.
"""

from __future__ import annotations

import httpx
import pytest
from serving_helpers import LiveServer, error
from text_ids_helpers import EMPIRE, FARGO, JEDI, NAME, PROFILES, STAR_WARS, TOY_STORY, UNTIL, own_registry

V1 = {"name": NAME, "version": "1"}
UNKNOWN_MOVIE = "tt9999999"
MAPPED_ALICE, MAPPED_BOB = sorted(PROFILES)  # "retrained-alice-01" (rated before UNTIL), "retrained-bob-0001"


@pytest.fixture(scope="module")
def own(tmp_path_factory, ml100k):
    return own_registry(tmp_path_factory.mktemp("own") / "registry", ml100k)


@pytest.fixture(scope="module")
def server(own, tmp_path_factory):
    """The own-data model served, with a feedback database holding the retrained profiles'
    ratings: alice's no newer than the version's UNTIL, bob's newer."""
    from movierec.data.feedback import FeedbackStore

    tmp = tmp_path_factory.mktemp("own_server")
    db = tmp / "feedback.sqlite3"
    store = FeedbackStore(db, scale=(1, 10), id_kind="str")
    store.add(MAPPED_ALICE, [(STAR_WARS, 10), (FARGO, 2)], timestamp=UNTIL - 10)
    store.add(MAPPED_BOB, [(TOY_STORY, 8)], timestamp=UNTIL + 1)
    store.close()
    with LiveServer(own[0], tmp, feedback_db=str(db)) as live:
        yield live


def ok(response: httpx.Response) -> dict:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == V1, body["model"]
    return body


def ids(items: list[dict]) -> list[str]:
    return [m["movie_id"] for m in items]


def all_text(movie_ids) -> bool:
    return all(isinstance(m, str) and m.startswith("tt") for m in movie_ids)


# -- status and known users ------------------------------------------------------------------
def test_health_says_the_scale_and_the_id_kinds(server):
    health = ok(server.get("/health"))
    assert health["rating_scale"] == [1.0, 10.0] and health["liked_threshold"] == pytest.approx(6.625)
    assert (health["user_id_kind"], health["movie_id_kind"]) == ("str", "str")
    assert (health["n_users"], health["n_movies"]) == (943, 1682)


def test_known_users_by_name(server, own):
    model = own[1].model
    body = ok(server.get("/recommend", params={"user_id": "alice", "k": 8}))
    assert body["user_id"] == "alice" and all_text(ids(body["items"]))
    assert ids(body["items"]) == model.recommend(["alice"], k=8).items_of(0).tolist()
    # reasons cite the person's own stars on the 1-10 scale (liked: 6.625 or more, so 8 or 10)
    assert all(m["reason"].endswith((" 8 stars", " 10 stars")) for m in body["items"]), body["items"]
    # the fast path (a plain query) and the route (another spelling) agree
    route = ok(server.get("/recommend?k=8&exclude_seen=True&user_id=alice"))
    assert route == body == ok(server.get("/recommend?user_id=alice&k=8"))
    assert "Unknown user ID: 'zed'" in error(server.get("/recommend", params={"user_id": "zed"}), 404)
    assert "Unknown user ID: '1'" in error(server.get("/recommend", params={"user_id": "1"}), 404)  # text, not 1
    error(server.get("/recommend", params={"user_id": "a" * 201}), 422)


def test_batch_by_name(server):
    body = ok(server.post("/recommend/batch", json={"user_ids": ["bob", "alice", "bob"], "k": 4}))
    assert [r["user_id"] for r in body["results"]] == ["bob", "alice", "bob"]
    for result in body["results"]:
        single = ok(server.get("/recommend", params={"user_id": result["user_id"], "k": 4}))
        assert ids(result["items"]) == ids(single["items"]) and all_text(ids(result["items"]))
    filters = {"exclude": [STAR_WARS], "only": [STAR_WARS, JEDI]}
    filtered = ok(server.post("/recommend/batch", json={"user_ids": ["carol"], "k": 3, "filters": filters}))
    assert ids(filtered["results"][0]["items"]) in ([JEDI], [])
    assert "'zed'" in error(server.post("/recommend/batch", json={"user_ids": ["alice", "zed"]}), 404)


# -- new people: liked movies and ten stars --------------------------------------------------
def test_cold_start_with_text_ids_and_ten_stars(server):
    liked = ok(server.get("/recommend_cold", params={"liked": f"{STAR_WARS},{EMPIRE}, {UNKNOWN_MOVIE}", "k": 6}))
    assert liked["ignored"] == [UNKNOWN_MOVIE] and liked["liked"] == [STAR_WARS, EMPIRE]
    assert JEDI in ids(liked["items"]) and all_text(ids(liked["items"]))
    fast = ok(server.get(f"/recommend_cold?liked={STAR_WARS},{EMPIRE},{UNKNOWN_MOVIE}&k=6"))
    assert fast == liked
    # text IDs beyond printable ASCII go in a JSON body (a URL's length stays bounded): refused, fast path or not
    assert "POST /recommend_cold" in str(server.get("/openapi.json").json()["paths"]["/recommend_cold"])
    error(server.get("/recommend_cold", params={"liked": f"{STAR_WARS},café"}), 422)
    posted = ok(server.post("/recommend_cold", json={"ratings": [{"movie_id": STAR_WARS, "rating": 10},
                                                                 {"movie_id": FARGO, "rating": 2}], "k": 10}))
    assert posted["liked"] == [STAR_WARS] and posted["disliked"] == [FARGO]
    assert posted["liked_threshold"] == pytest.approx(6.625)
    assert "Because you rated Star Wars (1977) 10 stars" in {m["reason"] for m in posted["items"]}
    assert not {STAR_WARS, FARGO} & set(ids(posted["items"]))
    for stars in (11, 0.5, 0):
        assert error(server.post("/recommend_cold", json={"ratings": [{"movie_id": STAR_WARS, "rating": stars}]}),
                     422) == f"Ratings must lie in [1, 10], the model's scale; got {stars:g} for movie {STAR_WARS}."
    only = ok(server.post("/recommend_cold", json={"liked": [STAR_WARS], "k": 3, "filters": {"only": [JEDI, EMPIRE]}}))
    assert set(ids(only["items"])) == {JEDI, EMPIRE}
    error(server.post("/recommend_cold", json={"liked": [STAR_WARS], "filters": {"only": [UNKNOWN_MOVIE]}}), 404)


# -- movies -----------------------------------------------------------------------------------
def test_similar_search_and_details(server):
    similar = ok(server.get(f"/similar/{STAR_WARS}", params={"k": 5}))
    assert similar["movie"]["movie_id"] == STAR_WARS and similar["movie"]["title"] == "Star Wars"
    assert JEDI in ids(similar["items"]) and all_text(ids(similar["items"]))
    assert ok(server.get(f"/similar/{STAR_WARS}?k=5&min_ratings=0")) == similar  # the route agrees with the fast path
    assert UNKNOWN_MOVIE in error(server.get(f"/similar/{UNKNOWN_MOVIE}"), 404)
    found = ok(server.get("/movies", params={"q": "star wars", "limit": 3}))["items"]
    assert found[0]["movie_id"] == STAR_WARS
    fargo = ok(server.get(f"/movies/{FARGO}"))
    assert (fargo["movie_id"], fargo["title"], fargo["year"]) == (FARGO, "Fargo", 1996)
    assert UNKNOWN_MOVIE in error(server.get(f"/movies/{UNKNOWN_MOVIE}"), 404)


def test_onboarding(server):
    groups = ok(server.get("/onboarding", params={"groups": 4}))["groups"]
    assert len(groups) == 4 and all(all_text(ids(g["movies"])) for g in groups)
    picked = ok(server.post("/onboarding", json={"group_ids": [0], "groups": 4, "k": 5}))
    assert len(picked["items"]) == 5 and all_text(ids(picked["items"]))
    assert set(picked["liked"]) == set(ids(groups[0]["movies"]))


# -- stored ratings --------------------------------------------------------------------------
def test_ratings_round_trip_with_text_ids_and_ten_stars(server):
    from movierec.data.feedback import FeedbackStore

    profile = "own-data-profile-1"
    stored = ok(server.post("/ratings", json={"profile": profile, "ratings": [
        {"movie_id": STAR_WARS, "rating": 10}, {"movie_id": FARGO, "rating": 3},
        {"movie_id": UNKNOWN_MOVIE, "rating": 5}]}))
    assert (stored["stored"], stored["ignored"]) == (2, [UNKNOWN_MOVIE])
    for stars in (11, 0.5):  # off the model's scale: refused, nothing stored
        error(server.post("/ratings", json={"profile": profile, "ratings": [{"movie_id": JEDI, "rating": stars}]}), 422)
    rows = ok(server.get("/ratings", params={"profile": profile}))["ratings"]
    assert sorted((r["movie_id"], r["rating"]) for r in rows) == [(STAR_WARS, 10.0), (FARGO, 3.0)]
    recs = ok(server.get("/profile/recommend", params={"profile": profile, "k": 10}))
    assert recs["user_id"] is None and (recs["liked"], recs["disliked"]) == ([STAR_WARS], [FARGO])
    cold = ok(server.post("/recommend_cold", json={"ratings": [{"movie_id": STAR_WARS, "rating": 10},
                                                               {"movie_id": FARGO, "rating": 3}], "k": 10}))
    assert ids(recs["items"]) == ids(cold["items"])
    store = FeedbackStore(server.feedback_db)  # the database records the model's scale and ID kind
    assert store.meta() == {"schema_version": 2, "rating_scale": [1.0, 10.0], "id_kind": "str"}
    store.close()


def test_a_retrained_profile_is_answered_as_the_user_it_became(server):
    alice = ok(server.get("/recommend", params={"user_id": "alice", "k": 10}))
    mapped = ok(server.get("/profile/recommend", params={"profile": MAPPED_ALICE, "k": 10}))
    assert mapped["user_id"] == "alice" and mapped["items"] == alice["items"]
    assert (mapped["liked"], mapped["disliked"]) == ([STAR_WARS], [FARGO])
    # bob's profile rated after the version was trained: a new person from its ratings
    bob = ok(server.get("/profile/recommend", params={"profile": MAPPED_BOB, "k": 10}))
    assert bob["user_id"] is None and bob["liked"] == [TOY_STORY]
    # a new rating by alice's profile: newer than the version, so answered from the ratings again
    ok(server.post("/ratings", json={"profile": MAPPED_ALICE, "ratings": [{"movie_id": JEDI, "rating": 9}]}))
    after = ok(server.get("/profile/recommend", params={"profile": MAPPED_ALICE, "k": 10}))
    assert after["user_id"] is None and after["liked"] == [STAR_WARS, JEDI]


# -- a model with whole-number IDs keeps them -----------------------------------------------
@pytest.fixture(scope="module")
def int_app(tmp_path_factory, ml100k):
    """The service over EASE on ML-100K (whole-number IDs), in-process, with a retrained
    profile mapped to user 5 whose ratings are no newer than the version."""
    from fastapi.testclient import TestClient

    from movierec.artifacts import Bundle, ModelRegistry
    from movierec.data.feedback import FeedbackStore
    from movierec.models import create
    from movierec.serving.app import create_app

    root = tmp_path_factory.mktemp("int_ids")
    bundle = Bundle.from_model(create("ease").fit(ml100k), ml100k)
    bundle.manifest["feedback"] = {"db": "x", "profiles": {"retrained-five-001": 5}, "until": UNTIL, "n_ratings": 1}
    ModelRegistry(root / "registry").add(bundle, "ml")
    store = FeedbackStore(root / "feedback.sqlite3", scale=(1, 5), id_kind="int")
    store.add("retrained-five-001", [(50, 5)], timestamp=UNTIL)
    store.close()
    with TestClient(create_app(root / "registry", feedback_db=root / "feedback.sqlite3", admin_token=None)) as client:
        yield client


def test_a_model_with_whole_number_ids_keeps_them(int_app):
    health = int_app.get("/health").json()
    assert (health["user_id_kind"], health["movie_id_kind"], health["rating_scale"]) == ("int", "int", [1.0, 5.0])
    assert int_app.get("/recommend?user_id=7&k=3").json()["user_id"] == 7
    assert isinstance(int_app.get("/similar/50?k=3").json()["items"][0]["movie_id"], int)
    whole = "IDs are whole numbers of 64 bits; got"
    for path, words in (("/recommend?user_id=alice", f"This model's user {whole} 'alice'."),
                        ("/recommend?user_id=7&k=3&only=tt1", "Movie IDs in only must be whole numbers"),
                        ("/recommend_cold?liked=50,tt0000181", "Liked movies must be whole numbers"),
                        (f"/similar/{STAR_WARS}", f"This model's movie {whole} '{STAR_WARS}'."),
                        (f"/movies/{STAR_WARS}", "movie IDs are whole numbers")):
        answer = int_app.get(path)
        assert answer.status_code == 422 and words in answer.json()["detail"], (path, answer.text)
    for body in ({"ratings": [{"movie_id": "50", "rating": 4}]}, {"liked": ["50"]}):
        answer = int_app.post("/recommend_cold", json=body)
        assert answer.status_code == 422 and "give them as JSON numbers" in answer.json()["detail"], answer.text
    answer = int_app.post("/ratings", json={"profile": "some-profile-1",
                                            "ratings": [{"movie_id": STAR_WARS, "rating": 4}]})
    assert answer.status_code == 422 and "movie IDs are whole numbers" in answer.json()["detail"]
    # the schema says either: a number, or a text for a model trained on text IDs
    schema = int_app.get("/openapi.json").json()
    user_param = next(p for p in schema["paths"]["/recommend"]["get"]["parameters"] if p["name"] == "user_id")
    assert {s["type"] for s in user_param["schema"]["anyOf"]} == {"integer", "string"}
    mapped = int_app.get("/profile/recommend", params={"profile": "retrained-five-001", "k": 5}).json()
    assert mapped["user_id"] == 5 and mapped["items"] == int_app.get("/recommend?user_id=5&k=5").json()["items"]


def test_the_feedback_database_keeps_one_scale_and_id_kind(own, ml100k, tmp_path):
    """Ratings are stored on the scale and with the movie IDs of the model the database was
    opened for: a version with others, promoted meanwhile, gets 409 for new ratings (stored
    ones still answer), and a server started on it with that database is refused."""
    from fastapi.testclient import TestClient

    from movierec.artifacts import Bundle, ModelRegistry
    from movierec.errors import ConfigError
    from movierec.models import create
    from movierec.serving.app import create_app

    registry = ModelRegistry(tmp_path / "registry")
    registry.add(own[1], NAME)
    small = ml100k.subset(ml100k.user_idx < 100)
    registry.add(Bundle.from_model(create("ease").fit(small), small), NAME, promote=False)  # 1-5, whole numbers
    db = tmp_path / "feedback.sqlite3"
    profile = "switching-profile-1"
    with TestClient(create_app(registry.root, feedback_db=db, admin_token=None, watch_interval=0)) as client:
        assert client.post("/ratings", json={"profile": profile,
                                             "ratings": [{"movie_id": STAR_WARS, "rating": 10}]}).status_code == 200
        client.app.state.server.promote("2")
        refused = client.post("/ratings", json={"profile": profile, "ratings": [{"movie_id": 50, "rating": 4}]})
        assert refused.status_code == 409, refused.text
        assert refused.json()["detail"] == ("The feedback database holds text movie IDs, but the model served now has "
                                            "whole-number ones; ratings are stored again once such a model is served.")
        stored = client.get("/profile/recommend", params={"profile": profile, "k": 3}).json()
        assert stored["ignored"] == [STAR_WARS] and stored["fallback"] is True
    with pytest.raises(ConfigError, match=f"^{db} holds ratings on the 1-10 scale; this model rates on 1-5"):
        create_app(registry.root, feedback_db=db, admin_token=None, watch_interval=0)
