"""The served model in-process: fallbacks for models that cannot do everything, reasons,
taste groups, and the ModelServer following the registry's pointer."""

from __future__ import annotations

import numpy as np
import pytest

from movierec.artifacts import Bundle, ModelRegistry
from movierec.errors import RegistryError, UnknownUserError
from movierec.models import create
from movierec.serving.state import ModelServer, ServedModel

STAR_WARS, JEDI, TOY_STORY = 50, 181, 1


@pytest.fixture(scope="module")
def part(ml100k):
    return ml100k.subset(ml100k.user_idx < 150)


@pytest.fixture(scope="module")
def plain(part) -> ServedModel:
    """global-mean: no similar movies, no cold start, no embeddings."""
    return ServedModel.build(Bundle.from_model(create("global-mean").fit(part), part), "plain", "1")


def test_similar_falls_back_to_genres(plain):
    answer = plain.similar(STAR_WARS, 5)
    assert answer["fallback"] is True and STAR_WARS not in [m["movie_id"] for m in answer["items"]]
    star_wars = set(plain.movies[int(plain.item_index([STAR_WARS])[0])]["genres"])
    for item in answer["items"]:
        assert set(item["genres"]) & star_wars and item["reason"].startswith("Also ")


def test_cold_start_falls_back_when_the_model_cannot_fold_in(plain):
    answer = plain.recommend_new([(STAR_WARS, 5.0)], [JEDI], 5)
    assert answer["fallback"] is True and "cannot recommend for a new person" in answer["fallback_reason"]
    assert not {STAR_WARS, JEDI} & {m["movie_id"] for m in answer["items"]}
    assert all(m["reason"].startswith("Popular in ") for m in answer["items"])  # leaning to the genres given


def test_known_users_get_reasons_from_genres(plain, part):
    lists = plain.recommend([1, 2], 5)
    assert [len(items) for items in lists] == [5, 5]
    assert all(m["reason"] is None or m["reason"].startswith("Because you rated ") for items in lists for m in items)
    with pytest.raises(UnknownUserError):
        plain.recommend([99999], 5)


def test_taste_groups_are_seeded_and_cover_popular_movies(plain):
    first, again = plain.groups(6), ServedModel.build(plain.bundle, "plain", "1").groups(6)
    assert [g.movie_idx.tolist() for g in first] == [g.movie_idx.tolist() for g in again]
    assert len(first) == 6 and len({g.label for g in first}) == 6
    shown = np.concatenate([g.movie_idx for g in first])
    assert len(set(shown.tolist())) == len(shown)  # no movie in two groups
    assert plain.counts[shown].min() >= np.sort(plain.counts)[-400]  # among the 400 most rated


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
