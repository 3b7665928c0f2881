"""The page's layout on a phone and on a desktop, in a real browser (Debian's chromium via
Playwright) against a real uvicorn serving EASE trained on ML-100K.

On a phone the page is one column in the order a person needs it there: search results, then
the recommendations, then the list of their ratings (which grows with every rating and would
otherwise push the recommendations off the screen). On a desktop the recommendations keep
their own column beside the ratings.
"""

from __future__ import annotations

import pytest
from browser_helpers import browser, STEP_MS  # noqa: F401  (browser: the fixture)
from serving_helpers import LiveServer

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
FARGO, STAR_WARS, TOY_STORY, SHAWSHANK = 100, 50, 1, 64


@pytest.fixture(scope="module")
def server(tmp_path_factory, ml100k):
    """uvicorn over create_app(a registry with EASE trained on all of ML-100K) on loopback."""
    from movierec.artifacts import ModelRegistry
    from movierec.artifacts.train import train

    root = tmp_path_factory.mktemp("phone_registry")
    ModelRegistry(root).add(train("ease", ml100k, seed=0), "ease", promote=True)
    with LiveServer(root, tmp_path_factory.mktemp("phone_server")) as live:
        yield live


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    context.set_default_timeout(STEP_MS)
    page = context.new_page()
    page.goto(server.base + "/")
    page.wait_for_selector("html[data-ready=yes]", state="attached")
    yield page
    context.close()


def rate_top(page, query: str, movie_id: int) -> None:
    """Search a movie and give it the top of the scale (the last star); wait for the new list."""
    box = page.locator("#search")
    box.fill("")
    box.type(query, delay=15)
    row = page.locator(f'#result-list li[data-movie="{movie_id}"]')
    row.wait_for()
    with page.expect_response(lambda r: "/profile/recommend" in r.url, timeout=STEP_MS) as answer:
        with page.expect_response(lambda r: r.url.endswith("/ratings") and r.request.method == "POST"):
            row.locator(".stars label").last.click()
    assert answer.value.status == 200
    page.wait_for_function("() => document.querySelector('#recs').getAttribute('aria-busy') === 'false'")


def boxes(page) -> dict[str, dict]:
    """The bounding boxes of the search results, recommendations and ratings sections, in CSS px."""
    return {name: page.locator(f"#{name}").bounding_box() for name in ("results", "recs", "mine")}


def test_phone_shows_recommendations_before_the_ratings_and_desktop_beside_them(page):
    from playwright.sync_api import expect

    page.locator("#groups .group").first.wait_for()
    page.locator("#groups-skip").click()
    for query, movie_id in [("fargo", FARGO), ("star wars", STAR_WARS), ("toy story", TOY_STORY),
                            ("shawshank", SHAWSHANK)]:
        rate_top(page, query, movie_id)
    expect(page.locator("#rated-list > li")).to_have_count(4)
    expect(page.locator("#rec-list > li").first).to_be_visible()

    phone = boxes(page)
    assert phone["recs"]["y"] + phone["recs"]["height"] <= phone["mine"]["y"], \
        f"on a phone the ratings come before the recommendations: {phone}"
    assert phone["results"]["y"] + phone["results"]["height"] <= phone["recs"]["y"], \
        f"on a phone the search results should stay next to the search box, above the recommendations: {phone}"
    assert all(abs(b["x"] - phone["recs"]["x"]) < 1 and b["x"] + b["width"] <= PHONE["width"]
               for b in phone.values()), f"not one column on a phone: {phone}"
    assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]

    page.set_viewport_size(DESKTOP)
    desktop = boxes(page)
    mine, recs = desktop["mine"], desktop["recs"]
    assert recs["x"] >= mine["x"] + mine["width"], f"on a desktop the recommendations have their own column: {desktop}"
    assert recs["y"] <= desktop["results"]["y"] + 1, f"the recommendations column starts at the top: {desktop}"

    page.set_viewport_size(PHONE)  # and back: the order follows the width, not the first layout
    again = boxes(page)
    assert again["recs"]["y"] + again["recs"]["height"] <= again["mine"]["y"]
