"""`movierec retrain`: the page's ratings train the next version, and the service serves it.

The end-to-end test runs a real uvicorn over a registry trained by `movierec train`, posts
a new profile's ratings through the API, retrains through the CLI, waits for /health to
name the new version and checks that the profile is then answered as a known user of it.
The other tests cover what `retrain` refuses (nothing is stored then), the promotion
rules, and the pieces: data sources, the held-out slice, profile user IDs.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from movierec.artifacts import ModelRegistry, load_bundle
from movierec.cli import app
from movierec.data.feedback import FeedbackStore
from movierec.experiments.retrain import (
    Comparison,
    feedback_rows,
    held_out_slice,
    profile_users,
    with_feedback,
)
from serving_helpers import LiveServer

runner = CliRunner()
PROFILE = "profile-scifi-fan-01"
#: Star Wars, Empire, Return of the Jedi, Alien, Aliens, Terminator, Blade Runner, 2001
SCIFI = [50, 172, 181, 183, 176, 195, 89, 135]


def cli(*args: str):
    return runner.invoke(app, list(args))


def ok(*args: str) -> str:
    result = cli(*args)
    assert result.exit_code == 0, result.output
    return result.stdout


def refused(*args: str) -> str:
    """The one sentence a refused command ends with (`movierec` prints it as "error: ...")."""
    from movierec.errors import MovierecError

    result = cli(*args)
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, MovierecError), repr(result.exception)
    text = str(result.exception)
    assert "\n" not in text.strip() and text.rstrip().endswith((".", ")")), text
    return text


@pytest.fixture(scope="module")
def ease_registry(tmp_path_factory) -> Path:
    """A registry with ease version 1 trained by `movierec train` on ML-100K (data recorded)."""
    root = tmp_path_factory.mktemp("retrain") / "registry"
    ok("train", "--dataset", "ml-100k", "--model", "ease", "--registry", str(root), "--quiet")
    return root


def copy_registry(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def versions(root: Path) -> list[str]:
    return [v.version for v in ModelRegistry(root).versions("ease")]


def add_feedback(db: Path, profile: str = PROFILE, movies=SCIFI, stars: float = 5.0, scale=(1.0, 5.0)) -> None:
    store = FeedbackStore(db, scale=scale, id_kind="int")
    try:
        store.add(profile, [(m, stars) for m in movies], timestamp=int(time.time()))
    finally:
        store.close()


# -- the loop, end to end --------------------------------------------------------------
def test_ratings_posted_on_the_service_train_the_next_version_it_then_serves(ease_registry, tmp_path):
    root = copy_registry(ease_registry, tmp_path / "registry")
    db = root / "feedback.sqlite3"
    with LiveServer(root, tmp_path, feedback_db=str(db), watch_interval=0.2) as server:
        assert server.get("/health").json()["model"]["version"] == "1"
        # a new person rates science fiction on the page (through the API the page uses)
        ratings = [{"movie_id": m, "rating": 5} for m in SCIFI] + [{"movie_id": 1, "rating": 1}]
        assert server.post("/ratings", json={"profile": PROFILE, "ratings": ratings}).status_code == 200
        before = server.get("/profile/recommend", params={"profile": PROFILE}).json()
        assert before.get("user_id") is None  # folded in: version 1 never saw this person

        out = ok("retrain", "--registry", str(root), "--model", "ease", "--promote", "always", "--json")
        result = json.loads(out)
        assert result["version"] == "2" and result["promoted"] and result["parent"] == "1"
        assert result["feedback"] == {"db": str(db), "ratings": 9, "profiles": 1, "ignored": 0}

        deadline = time.monotonic() + 30
        while server.get("/health").json()["model"]["version"] != "2":
            assert time.monotonic() < deadline, "the server did not pick up the new version"
            time.sleep(0.2)
        after = server.get("/profile/recommend", params={"profile": PROFILE}).json()

    new = load_bundle(root / "ease" / "2")
    user = new.manifest["feedback"]["profiles"][PROFILE]
    assert user == 944  # ML-100K's users are 1..943: the profile is the next user
    assert after["user_id"] == user and after["model"]["version"] == "2"
    expected = new.model.recommend([user], k=10).item_ids[0].tolist()
    assert [row["movie_id"] for row in after["items"]] == expected
    # the new version learned the person: its training data has the profile's 9 ratings
    assert new.model.seen_[new.model.user_index([user])[0]].nnz == 9


def test_a_second_retrain_keeps_each_profiles_user_id(ease_registry, tmp_path):
    root = copy_registry(ease_registry, tmp_path / "registry")
    db = root / "feedback.sqlite3"
    add_feedback(db)
    ok("retrain", "--registry", str(root), "--promote", "always", "--quiet")
    add_feedback(db, profile="another-profile-02", movies=[1, 71, 95, 588])
    ok("retrain", "--registry", str(root), "--promote", "always", "--quiet")
    profiles = load_bundle(root / "ease" / "3").manifest["feedback"]["profiles"]
    assert profiles == {PROFILE: 944, "another-profile-02": 945}


# -- the rules and what is recorded ----------------------------------------------------
def test_the_rule_the_decision_and_the_figures_are_stored_and_printed(ease_registry, tmp_path):
    root = copy_registry(ease_registry, tmp_path / "registry")
    add_feedback(root / "feedback.sqlite3")
    text = ok("retrain", "--registry", str(root), "--promote", "never")
    assert "ndcg@10" in text and "current" in text and "new" in text
    assert "stored, not promoted (version 1 stays current)" in text
    registry = ModelRegistry(root)
    assert registry.current("ease").version == "1" and versions(root) == ["1", "2"]
    doc = load_bundle(root / "ease" / "2").manifest["retrain"]
    assert doc["rule"] == "never" and doc["promoted"] is False and doc["parent"] == "1"
    assert set(doc["current"]) == set(doc["new"]) and "ndcg@10" in doc["new"]
    assert doc["slice"]["feedback"] == 1 and doc["slice"]["base"] == 200
    # the current recipe never saw the profile: it is folded in, as the service would answer it
    assert doc["current"]["folded in"] == 1 and doc["new"]["folded in"] == 0

    # if-better promotes exactly when the new figures are not worse
    out = json.loads(ok("retrain", "--registry", str(root), "--json", "--quiet"))
    better = out["metrics"]["new"]["ndcg@10"] >= out["metrics"]["current"]["ndcg@10"]
    assert out["promoted"] is better and out["rule"] == "if-better"
    assert (registry.current("ease").version == out["version"]) is better


def test_not_worse_compares_the_primary_metric():
    assert Comparison({"ndcg@10": 0.10}, {"ndcg@10": 0.10}, {}).not_worse()
    assert Comparison({"ndcg@10": 0.10}, {"ndcg@10": 0.11}, {}).not_worse()
    assert not Comparison({"ndcg@10": 0.10}, {"ndcg@10": 0.0999}, {}).not_worse()
    assert Comparison({"ndcg@10": float("nan")}, {"ndcg@10": float("nan")}, {}).not_worse()


# -- bad input: one sentence, exit 1, nothing stored -----------------------------------
def test_an_empty_feedback_database_is_refused(ease_registry, tmp_path):
    root = copy_registry(ease_registry, tmp_path / "registry")
    FeedbackStore(root / "feedback.sqlite3").close()
    assert "holds no ratings yet" in refused("retrain", "--registry", str(root))
    assert versions(root) == ["1"]


def test_a_missing_feedback_database_is_refused(ease_registry, tmp_path):
    root = copy_registry(ease_registry, tmp_path / "registry")
    assert "No feedback database" in refused("retrain", "--registry", str(root))
    assert versions(root) == ["1"]


def test_a_feedback_database_of_another_id_space_is_refused(ease_registry, tmp_path):
    root = copy_registry(ease_registry, tmp_path / "registry")
    db = root / "feedback.sqlite3"
    store = FeedbackStore(db, scale=(1.0, 5.0), id_kind="int")
    store.add(PROFILE, [(m, 4.0) for m in range(90001, 90009)] + [(50, 5.0)])
    store.close()
    text = refused("retrain", "--registry", str(root))
    assert "belongs to another model" in text and "8 of its 9 ratings" in text
    assert versions(root) == ["1"]


def test_a_feedback_database_on_another_scale_is_refused(ease_registry, tmp_path):
    root = copy_registry(ease_registry, tmp_path / "registry")
    add_feedback(root / "feedback.sqlite3", stars=8.0, scale=(1.0, 10.0))
    text = refused("retrain", "--registry", str(root))
    assert "[1, 10]" in text and "another model" in text
    assert versions(root) == ["1"]


def test_a_rating_off_the_scale_is_refused(ease_registry, tmp_path):
    root = copy_registry(ease_registry, tmp_path / "registry")
    db = root / "feedback.sqlite3"
    add_feedback(db)
    with sqlite3.connect(db) as conn:  # written by something other than the service
        conn.execute("UPDATE ratings SET rating = 9 WHERE movie_id = 50")
    text = refused("retrain", "--registry", str(root))
    assert f"Profile {PROFILE} rated movie 50 9" in text and "outside the model's scale" in text
    assert versions(root) == ["1"]


def test_changed_base_data_is_refused(tmp_path, ml100k):
    frame = ml100k.to_frame()
    frame = frame[frame.user <= 200]
    data = tmp_path / "ratings.csv"
    frame.to_csv(data, index=False)
    root = tmp_path / "registry"
    ok("train", "--data", str(data), "--model", "ease", "--registry", str(root), "--quiet")
    add_feedback(root / "feedback.sqlite3", movies=[50, 172, 181])
    data.write_text(data.read_text() + "1,1,5,0\n")  # the base file changed after training
    text = refused("retrain", "--registry", str(root))
    assert "has changed since version 1 of 'ease' was trained" in text
    assert versions(root) == ["1"]


def test_a_version_without_recorded_data_is_refused(tmp_path, small_split):
    from movierec.artifacts import Bundle
    from movierec.models import create

    root = tmp_path / "registry"
    ModelRegistry(root).add(Bundle.from_model(create("pop").fit(small_split.train), small_split.train))
    add_feedback(root / "feedback.sqlite3", movies=[50, 172])
    assert "does not record the data it learned from" in refused("retrain", "--registry", str(root))


def test_several_names_need_model_and_an_unknown_rule_is_refused(ease_registry, tmp_path):
    root = copy_registry(ease_registry, tmp_path / "registry")
    assert "--promote takes one of always, if-better, never" in refused(
        "retrain", "--registry", str(root), "--promote", "sometimes")
    (root / "other").mkdir()
    import shutil

    shutil.copytree(root / "ease", root / "other", dirs_exist_ok=True)
    text = refused("retrain", "--registry", str(root))
    assert "several models (ease, other)" in text and "--model" in text


# -- the pieces ------------------------------------------------------------------------
def test_data_sources_are_recorded_and_read_again(ease_registry, ml100k):
    from movierec.data.source import reload

    source = load_bundle(ModelRegistry(ease_registry).current("ease").path).manifest["data"]
    assert source["kind"] == "movielens" and source["name"] == "ml-100k"
    assert source["fingerprint"] == ml100k.fingerprint() and source["rating_scale"] == [1.0, 5.0]
    assert reload(source).fingerprint() == ml100k.fingerprint()
    # a part of the data is not what its source reads: nothing is recorded for it
    assert ml100k.subset(ml100k.user_idx < 10).source is None


def test_profiles_become_new_users_and_the_slice_holds_their_latest_rating(ml100k):
    rows = [("p-one-0001", 50, 5.0, 10), ("p-one-0001", 172, 4.0, 30), ("p-one-0001", 181, 5.0, 20),
            ("p-two-0002", 1, 3.0, 5), ("p-two-0002", 99999, 4.0, 6)]
    fb = feedback_rows(rows, ml100k)
    assert fb.ignored == 1 and len(fb) == 4
    users = profile_users(ml100k, fb.profiles)
    assert users == {"p-one-0001": 944, "p-two-0002": 945}
    assert profile_users(ml100k, ["p-new-0003"], previous=users) == {"p-new-0003": 946}
    data = with_feedback(ml100k, fb, users)
    assert data.items == ml100k.items and data.n_ratings == ml100k.n_ratings + 4
    mask = held_out_slice(data, ml100k.n_ratings, seed=3, base_users=50)
    fb_part = np.flatnonzero(mask[ml100k.n_ratings:])
    assert fb_part.tolist() == [1]  # p-one's latest (movie 172 at t=30); p-two has one rating left
    assert mask[:ml100k.n_ratings].sum() == 50
    assert np.array_equal(mask, held_out_slice(data, ml100k.n_ratings, seed=3, base_users=50))
    # each sampled base user gives exactly their most recent rating
    for pos in np.flatnonzero(mask[:ml100k.n_ratings])[:10]:
        u = data.user_idx[pos]
        assert data.timestamp[pos] == data.timestamp[:ml100k.n_ratings][data.user_idx[:ml100k.n_ratings] == u].max()


def test_text_user_ids_get_profile_names(tmp_path):
    from movierec.data import load_ratings

    path = tmp_path / "r.csv"
    path.write_text("user,item,rating\nalice,tt1,8\nalice,tt2,6\nbob,tt1,10\nbob,tt3,4\n")
    ds = load_ratings(path, rating_range=(1, 10))
    fb = feedback_rows([("p-one-0001", "tt1", 9.0, 1), ("p-one-0001", "tt3", 2.0, 2)], ds)
    users = profile_users(ds, fb.profiles)
    assert users == {"p-one-0001": "profile:p-one-0001"}
    data = with_feedback(ds, fb, users)
    assert "profile:p-one-0001" in data.users and data.rating_scale == (1.0, 10.0)
    with pytest.raises(Exception, match="outside the model's scale"):
        feedback_rows([("p-one-0001", "tt1", 11.0, 1)], ds)


def test_own_data_with_text_ids_on_a_1_to_10_scale_retrains_end_to_end(tmp_path, ml100k):
    """A file of one's own (names, IMDb-style movie IDs, 1-10 stars) trains, takes feedback on
    its own scale and IDs, and retrains into a version that knows the profile."""
    frame = ml100k.to_frame()
    frame = frame[frame.user <= 150]
    frame = frame.assign(user="user-" + frame.user.astype(str), item=frame.item.map(lambda i: f"tt{i:07d}"),
                         rating=frame.rating * 2)
    data = tmp_path / "mine.csv"
    frame.to_csv(data, index=False)
    root = tmp_path / "registry"
    ok("train", "--data", str(data), "--model", "ease", "--registry", str(root), "--rating-range", "1,10", "--quiet")
    store = FeedbackStore(root / "feedback.sqlite3", scale=(1.0, 10.0), id_kind="str")
    store.add("text-profile-01", [("tt0000050", 10), ("tt0000172", 9), ("tt0000181", 10), ("tt0000001", 1)])
    store.close()
    out = json.loads(ok("retrain", "--registry", str(root), "--promote", "always", "--json", "--quiet"))
    assert out["promoted"] and out["feedback"]["ratings"] == 4
    new = load_bundle(root / "ease" / "2")
    assert new.manifest["feedback"]["profiles"] == {"text-profile-01": "profile:text-profile-01"}
    assert new.model.rating_scale_ == (1.0, 10.0) and new.manifest["data"]["options"]["rating_range"] == [1.0, 10.0]
    assert "profile:text-profile-01" in new.model.users_
    assert new.catalog is not None and len(new.catalog.titles) == len(new.model.items_)


def test_a_retrieval_index_is_rebuilt_for_the_new_version(tmp_path):
    from movierec.retrieval import stored_index

    root = tmp_path / "registry"
    ok("train", "--dataset", "ml-100k", "--model", "als", "--param", "factors=16", "--param", "iterations=3",
       "--index", "exact", "--registry", str(root), "--quiet")
    add_feedback(root / "feedback.sqlite3")
    ok("retrain", "--registry", str(root), "--promote", "always", "--quiet")
    new = load_bundle(root / "als" / "2")
    index = stored_index(new)
    assert index is not None and index.kind == "exact" and index.model is new.model
