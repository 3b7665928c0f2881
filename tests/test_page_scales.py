"""The web page on a model of one's own: the model's scale as stars, text IDs end to end.

Playwright drives Debian's chromium (as tests/test_web_page.py does) against a real uvicorn
serving EASE trained on ML-100K written as someone's own data: IMDb-style movie IDs, names as
user IDs and ten stars (see tests/text_ids_helpers.py). The page must show ten whole stars for
the 1-10 scale, store a 10-star click as 10, and carry the text IDs through search, ratings,
recommendations, a movie's dialog and a reload. (The ML-100K 1-5 page, half stars with the half
below 1 not given, is tests/test_web_page.py's.)
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest
from browser_helpers import browser, STEP_MS  # noqa: F401  (browser: the fixture)
from serving_helpers import LiveServer
from text_ids_helpers import FARGO, STAR_WARS, own_registry



@pytest.fixture(scope="module")
def server(tmp_path_factory, ml100k):
    registry, _ = own_registry(tmp_path_factory.mktemp("page_scales") / "registry", ml100k)
    with LiveServer(registry, tmp_path_factory.mktemp("page_scales_server"), admin_token=None) as live:
        yield live


@pytest.fixture
def page(browser, server):
    """A fresh browser context on the page, with every request URL and page error recorded."""
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    context.set_default_timeout(STEP_MS)
    pg = context.new_page()
    pg.urls, pg.errors = [], []
    pg.on("request", lambda request: pg.urls.append(request.url))
    pg.on("pageerror", lambda error: pg.errors.append(str(error)))
    pg.goto(server.base + "/")
    pg.wait_for_selector("html[data-ready=yes]", state="attached")
    yield pg
    context.close()


def search(page, text: str, movie_id: str):
    box = page.locator("#search")
    box.fill("")
    box.type(text, delay=15)
    row = page.locator(f'#result-list li[data-movie="{movie_id}"]')
    row.wait_for()
    return row


def test_ten_stars_a_ten_is_stored_and_text_ids_round_trip(page, server):
    from playwright.sync_api import expect

    page.locator("#groups-skip").click()
    expect(page.locator("#help-scale")).to_have_text("1 star to 10 stars")
    expect(page.locator("#help-liked")).to_have_text("7 stars or more")  # 6.625 on the scale: 7 is the least star
    row = search(page, "fargo", FARGO)
    inputs = row.locator("fieldset.stars input")
    assert inputs.evaluate_all("els => els.map(e => e.value)") == [str(v) for v in range(1, 11)]
    assert inputs.evaluate_all("els => els.filter(e => e.disabled).length") == 0
    labels = row.locator("fieldset.stars label")
    expect(labels).to_have_count(10)
    widths = labels.evaluate_all("els => els.map(e => e.getBoundingClientRect().width)")
    assert min(widths) > 20, widths  # a whole star per label, not half stars

    with page.expect_response(lambda r: "/profile/recommend" in r.url) as recs:
        with page.expect_request(lambda r: r.url.endswith("/ratings") and r.method == "POST") as posted:
            row.locator('label[data-value="10"]').click()
    assert json.loads(posted.value.post_data)["ratings"] == [{"movie_id": FARGO, "rating": 10}]
    expect(row.locator(".value")).to_have_text("10 / 10")
    profile = page.evaluate("() => localStorage.getItem('movierec.profile')")
    stored = server.get("/ratings", params={"profile": profile}).json()["ratings"]
    assert [(r["movie_id"], r["rating"]) for r in stored] == [(FARGO, 10.0)]

    # recommendations carry the text IDs; the reason cites the ten stars
    answer = recs.value.json()
    assert answer["user_id"] is None and answer["liked"] == [FARGO]
    rec_rows = page.locator("#rec-list > li")
    expect(rec_rows.first).to_be_visible()
    shown = rec_rows.evaluate_all("els => els.map(e => e.dataset.movie)")
    assert shown == [m["movie_id"] for m in answer["items"]] and all(m.startswith("tt") for m in shown)
    assert "Because you rated Fargo (1996) 10 stars" in page.locator("#rec-list .reason").all_inner_texts()

    # a movie's dialog by its text ID: details, similar movies, the stored stars
    star_wars = search(page, "star wars", STAR_WARS)
    star_wars.locator("button.title").click()
    expect(page.locator("#dialog-title")).to_contain_text("Star Wars")
    expect(page.locator("#similar-list > li").first).to_be_visible()
    similar = page.locator("#similar-list > li").evaluate_all("els => els.map(e => e.dataset.movie)")
    assert similar == [m["movie_id"] for m in server.get(f"/similar/{STAR_WARS}?k=10").json()["items"]]
    page.keyboard.press("Escape")

    # a reload: the rating comes back by its text ID, ten stars checked
    page.reload()
    page.wait_for_selector("html[data-ready=yes]", state="attached")
    rated = page.locator(f'#rated-list li[data-movie="{FARGO}"]')
    expect(rated.locator('input[value="10"]')).to_be_checked()
    expect(rated.locator("button.title")).to_contain_text("Fargo")
    assert not page.errors, page.errors
    assert all(urlsplit(u).hostname == "127.0.0.1" for u in page.urls if not u.startswith("data:")), page.urls


def test_ten_stars_fit_a_phone(browser, server):
    """At 375 px wide, a row with ten whole stars does not scroll sideways."""
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 375, "height": 740}, device_scale_factor=2, is_mobile=True,
                                  has_touch=True)
    context.set_default_timeout(STEP_MS)
    try:
        pg = context.new_page()
        pg.goto(server.base + "/")
        pg.wait_for_selector("html[data-ready=yes]", state="attached")
        pg.locator("#groups-skip").tap()
        row = search(pg, "star wars", STAR_WARS)
        row.locator('label[data-value="9"]').tap()
        expect(pg.locator("#rec-list > li").first).to_be_visible()
        assert pg.evaluate("() => [document.documentElement.scrollWidth, document.documentElement.clientWidth, "
                           "window.innerWidth].every(w => w <= 375)"), "ten stars scroll sideways on a phone"
        box = row.locator("fieldset.stars").bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 375
    finally:
        context.close()
