"""The web page in a real browser: Playwright drives Debian's chromium against a real uvicorn.

The server is `movierec.serving.app.create_app` over a registry holding EASE trained on all of
ML-100K (half a second), run by uvicorn in a subprocess on loopback. The tests walk the page as a
person would: taste groups on a first visit, search, rate with stars (mouse and keyboard only),
recommendations that appear and change with each rating, a movie's similar ones, ratings kept
across a reload, a phone-size screen without horizontal scrolling, a clear message when the
server is gone; and no request ever leaves loopback.

With MOVIEREC_SCREENSHOTS=DIR the tour also saves the page's main states as PNGs in DIR
(`scripts/screenshots.py` does that for docs/images/).
"""

from __future__ import annotations

import os
import re
import shlex
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from browser_helpers import browser, STEP_MS  # noqa: F401  (browser: the fixture)
from serving_helpers import TOKEN, LiveServer

WEB = Path(__file__).resolve().parents[1] / "src" / "movierec" / "serving" / "web"


FARGO, STAR_WARS, TOY_STORY, RETURN_OF_THE_JEDI, SHAWSHANK = 100, 50, 1, 181, 64


# ------------------------------------------------------------------------------------ server


@pytest.fixture(scope="module")
def registry(tmp_path_factory, ml100k) -> Path:
    """A registry with EASE trained on all of ML-100K (real titles to search), stored twice:
    versions 1 and 2 (current), so the README's promote and roll back examples move."""
    from movierec.artifacts import ModelRegistry
    from movierec.artifacts.train import train

    root = tmp_path_factory.mktemp("web_registry")
    bundle = train("ease", ml100k, seed=0)
    ModelRegistry(root).add(bundle, "ease")
    ModelRegistry(root).add(bundle, "ease", promote=True)
    return root


@pytest.fixture(scope="module")
def server(registry, tmp_path_factory):
    """uvicorn over create_app(registry) in a subprocess on a free loopback port, admin enabled."""
    with LiveServer(registry, tmp_path_factory.mktemp("web_server"), admin_token=TOKEN) as live:
        yield live


class Visit:
    """A fresh browser context (its own localStorage) with every request URL recorded."""

    def __init__(self, browser, base: str, **context_args):
        self.context = browser.new_context(**context_args)
        self.context.set_default_timeout(STEP_MS)
        self.page = self.context.new_page()
        self.base = base
        self.urls: list[str] = []
        self.page.on("request", lambda request: self.urls.append(request.url))
        self.page_errors: list[str] = []
        self.page.on("pageerror", lambda error: self.page_errors.append(str(error)))

    def open(self) -> None:
        self.page.goto(self.base + "/")
        self.wait_ready()

    def wait_ready(self) -> None:
        self.page.wait_for_selector("html[data-ready=yes]", state="attached")

    def close(self) -> None:
        self.context.close()

    def profile(self) -> str:
        return self.page.evaluate("() => localStorage.getItem('movierec.profile')")

    def external_requests(self) -> list[str]:
        """Requests to anything but this server on loopback (data: URLs never leave the page)."""
        return [u for u in self.urls
                if not (u.startswith("data:") or urlsplit(u).hostname in ("127.0.0.1", "localhost", "::1"))]

    def search(self, text: str, movie_id: int):
        """Type into the search box; the result row of `movie_id` once it is shown."""
        box = self.page.locator("#search")
        box.fill("")
        box.type(text, delay=15)
        row = self.page.locator(f'#result-list li[data-movie="{movie_id}"]')
        row.wait_for()
        return row

    def rate(self, row, stars: float) -> dict:
        """Click a row's star label; the recommendations answer that follows the saved rating."""
        with self.page.expect_response(lambda r: "/profile/recommend" in r.url, timeout=STEP_MS) as answer:
            with self.page.expect_response(lambda r: r.url.endswith("/ratings") and r.request.method == "POST"):
                row.locator(f'label[data-value="{stars:g}"]').click()
        assert answer.value.status == 200
        self.page.wait_for_function("() => document.querySelector('#recs').getAttribute('aria-busy') === 'false'")
        return answer.value.json()

    def rec_ids(self) -> list[int]:
        return [int(x) for x in self.page.locator("#rec-list > li").evaluate_all("els => els.map(e => e.dataset.movie)")]

    def shot(self, name: str, full_page: bool = False) -> None:
        folder = os.environ.get("MOVIEREC_SCREENSHOTS")
        if folder:
            self.page.mouse.move(1, 1)  # no hover preview on the stars in the picture
            save_png(self.page, Path(folder) / name, full_page=full_page)


def save_png(page, path: Path, *, full_page: bool = False, max_bytes: int = 195_000) -> None:
    """A screenshot as a PNG under `max_bytes` (palette-quantised when the plain one is bigger)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=full_page, animations="disabled")
    if path.stat().st_size > max_bytes:
        from PIL import Image

        with Image.open(path) as img:
            img.convert("RGB").quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)


@pytest.fixture
def visit(browser, server):
    opened: list[Visit] = []

    def make(**context_args) -> Visit:
        v = Visit(browser, server.base, **context_args)
        opened.append(v)
        return v

    yield make
    for v in opened:
        v.close()


# ------------------------------------------------------------------------------------ tests


def test_tour_groups_search_rate_recommend_similar_reload(visit, server):
    """First visit: taste groups -> first recommendations; rate three movies -> recommendations
    appear, name their reasons, never show scores, change with each rating; open a movie -> its
    similar ones; reload -> the three ratings are kept (page and server agree)."""
    from playwright.sync_api import expect

    v = visit(viewport={"width": 1280, "height": 900})
    v.open()
    page = v.page
    expect(page.locator("#onboarding")).to_be_visible()
    groups = page.locator("#groups .group")
    groups.first.wait_for()
    assert groups.count() >= 2
    assert page.locator("#groups .group .titles").first.inner_text().strip()
    expect(page.locator("#model-name")).to_have_text("ease")
    expect(page.locator("#model-version")).to_have_text(server.get("/health").json()["model"]["version"])
    v.shot("web_first_visit.png")

    groups.nth(0).click()
    groups.nth(1).click()
    with page.expect_response(lambda r: r.url.endswith("/onboarding") and r.request.method == "POST") as first:
        page.locator("#groups-submit").click()
    assert first.value.status == 200
    expect(page.locator("#onboarding")).to_be_hidden()
    expect(page.locator("#rec-list > li").first).to_be_visible()
    assert v.rec_ids() == [m["movie_id"] for m in first.value.json()["items"]]
    expect(page.locator("#recs-note")).to_contain_text("taste groups")

    # three ratings: recommendations follow them, and change after each
    lists = []
    for query, movie_id, stars in [("fargo", FARGO, 5), ("star wars", STAR_WARS, 4.5), ("toy story", TOY_STORY, 4)]:
        row = v.search(query, movie_id)
        answer = v.rate(row, stars)
        expect(page.locator("#rec-list > li").first).to_be_visible()
        shown = v.rec_ids()
        assert shown == [m["movie_id"] for m in answer["items"]] and len(shown) == 10
        lists.append(shown)
        rated_row = page.locator(f'#rated-list li[data-movie="{movie_id}"]')
        expect(rated_row).to_be_visible()
        expect(rated_row.locator(f'input[value="{stars:g}"]')).to_be_checked()
    assert lists[0] != lists[1] != lists[2], "the recommendations did not change after a rating"
    assert not {FARGO, STAR_WARS, TOY_STORY} & set(lists[2]), "a rated movie is still recommended"
    expect(page.locator("#n-rated")).to_have_text("(3)")
    expect(page.locator("#recs-note")).to_contain_text("3 ratings")

    # reasons shown, scores hidden
    reasons = page.locator("#rec-list .reason").all_inner_texts()
    assert len(reasons) == 10 and all(r.strip() for r in reasons), reasons
    assert reasons == [item["reason"] for item in answer["items"]]
    rec_text = page.locator("#recs").inner_text()
    for item in answer["items"]:
        assert f"{item['score']:.3f}" not in rec_text and f"{item['score']:.2f}" not in rec_text
    v.shot("web_recommendations.png")

    # a movie and its similar ones
    star_wars = server.get(f"/similar/{STAR_WARS}?k=10").json()
    page.locator(f'#rated-list li[data-movie="{STAR_WARS}"] button.title').click()
    dialog = page.locator("#movie-dialog")
    expect(dialog).to_be_visible()
    expect(page.locator("#dialog-title")).to_contain_text("Star Wars")
    expect(page.locator("#similar-list > li")).to_have_count(len(star_wars["items"]))
    similar = [int(x) for x in page.locator("#similar-list > li").evaluate_all("els => els.map(e => e.dataset.movie)")]
    assert similar == [m["movie_id"] for m in star_wars["items"]]
    assert RETURN_OF_THE_JEDI in similar
    expect(page.locator('#dialog-rate input[value="4.5"]')).to_be_checked()
    v.shot("web_similar.png")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()

    # reload: ratings kept, taste groups not offered again, recommendations from the ratings
    profile = v.profile()
    page.reload()
    v.wait_ready()
    expect(page.locator("#rated-list > li")).to_have_count(3)
    for movie_id, stars in [(FARGO, 5), (STAR_WARS, 4.5), (TOY_STORY, 4)]:
        expect(page.locator(f'#rated-list li[data-movie="{movie_id}"] input[value="{stars:g}"]')).to_be_checked()
    expect(page.locator(f'#rated-list li[data-movie="{FARGO}"] button.title')).to_contain_text("Fargo")
    expect(page.locator("#onboarding")).to_be_hidden()
    expect(page.locator("#rec-list > li").first).to_be_visible()
    assert v.rec_ids() == lists[2]
    stored = {r["movie_id"]: r["rating"] for r in server.get(f"/ratings?profile={profile}").json()["ratings"]}
    assert stored == {FARGO: 5.0, STAR_WARS: 4.5, TOY_STORY: 4.0}

    assert not v.page_errors, v.page_errors
    assert not v.external_requests(), v.external_requests()


def test_keyboard_only_rating_and_movie_dialog(visit, server):
    """Tab to the search box, type, Tab to a result's stars, Space then arrow keys rate it;
    Enter on a title opens the movie, Escape closes it and gives focus back."""
    from playwright.sync_api import expect

    v = visit(viewport={"width": 1100, "height": 800})
    v.open()
    page, kb = v.page, v.page.keyboard

    def tab_to(js_test: str, limit: int = 40) -> None:
        for _ in range(limit):
            kb.press("Tab")
            if page.evaluate(f"() => {{ const e = document.activeElement; return Boolean({js_test}); }}"):
                return
        raise AssertionError(f"Tab never reached {js_test}")

    tab_to("e.id === 'search'")
    kb.type("fargo", delay=15)
    row = page.locator(f'#result-list li[data-movie="{FARGO}"]')
    row.wait_for()
    tab_to(f"e.closest('#result-list li[data-movie=\"{FARGO}\"]') && e.type === 'radio'")
    fieldset = row.locator("fieldset.stars")
    assert fieldset.evaluate("f => getComputedStyle(f).outlineStyle") != "none", "no visible focus on the stars"
    # ML-100K's scale is 1-5: half a star is shown but cannot be chosen, and the help says what ratings do
    expect(row.locator('input[value="0.5"]')).to_be_disabled()
    expect(page.locator("#help-liked")).to_have_text("3.5 stars or more")
    expect(page.locator("#help-scale")).to_have_text("1 star to 5 stars")
    with page.expect_response(lambda r: "/profile/recommend" in r.url):
        kb.press("Space")         # 1 star, the lowest the model takes
        for _ in range(6):
            kb.press("ArrowRight")  # ... 4 stars
    expect(row.locator('input[value="4"]')).to_be_checked()
    page.wait_for_function("() => document.querySelector('#recs').getAttribute('aria-busy') === 'false'")
    expect(page.locator("#rec-list > li").first).to_be_visible()
    deadline = time.monotonic() + STEP_MS / 1000
    while True:  # the last arrow key's rating may come in a request after the first one
        stored = [(r["movie_id"], r["rating"]) for r in server.get(f"/ratings?profile={v.profile()}").json()["ratings"]]
        if stored == [(FARGO, 4.0)] or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert stored == [(FARGO, 4.0)]

    # a title opens its movie with Enter; Escape closes it and focus returns to the title
    tab_to("e.classList.contains('title') && e.closest('#rec-list')")
    opener = page.evaluate("() => document.activeElement.dataset.open")
    kb.press("Enter")
    expect(page.locator("#movie-dialog")).to_be_visible()
    expect(page.locator("#similar-list > li").first).to_be_visible()
    kb.press("Escape")
    expect(page.locator("#movie-dialog")).to_be_hidden()
    assert page.evaluate("() => document.activeElement.dataset.open") == opener
    assert not v.page_errors, v.page_errors
    assert not v.external_requests(), v.external_requests()


def test_phone_screen_has_no_horizontal_scrolling(visit):
    """At 375 px wide (a phone), the first visit, search results, recommendations and the movie
    dialog all fit the width."""
    from playwright.sync_api import expect

    v = visit(viewport={"width": 375, "height": 740}, device_scale_factor=2, is_mobile=True, has_touch=True)
    v.open()
    page = v.page

    def fits() -> bool:  # (a mobile browser zooms out to fit wide content: compare with the device's width)
        return page.evaluate("() => [document.documentElement.scrollWidth, document.documentElement.clientWidth, "
                             "window.innerWidth].every(w => w <= 375)")

    page.locator("#groups .group").first.wait_for()
    assert fits(), "the first visit scrolls sideways on a phone"
    v.page.locator("#groups-skip").tap()
    row = v.search("shawshank", SHAWSHANK)
    row.locator('label[data-value="5"]').tap()
    expect(page.locator("#rec-list > li").first).to_be_visible()
    assert fits(), "search results or recommendations scroll sideways on a phone"
    v.shot("web_phone.png")
    row.locator("button.title").tap()
    expect(page.locator("#similar-list > li").first).to_be_visible()
    box = page.locator("#movie-dialog").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 375
    assert fits()
    assert not v.external_requests(), v.external_requests()


def test_a_clear_message_when_the_server_is_gone(browser, registry, tmp_path):
    """A server that stops answering: searching shows one clear sentence, not a blank page."""
    from playwright.sync_api import expect

    live = LiveServer(registry, tmp_path, admin_token=None)
    v = Visit(browser, live.base)
    try:
        v.open()
        live.stop()
        v.page.locator("#search").type("fargo")
        status = v.page.locator("#status")
        expect(status).to_be_visible()
        expect(status).to_have_text("Cannot reach the movierec server; check that it is running, then try again.")
        expect(status).to_have_attribute("role", "alert")
    finally:
        v.close()
        live.stop()


def test_page_is_small_and_self_contained(server):
    """The page is plain files served by the app: small, with no reference to another host."""
    total = 0
    for name, path in [("index.html", "/"), ("app.js", "/static/app.js"), ("style.css", "/static/style.css")]:
        with urllib.request.urlopen(server.base + path, timeout=10) as r:
            body = r.read()
        assert body == (WEB / name).read_bytes()
        total += len(body)
        assert not re.search(rb"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", body, re.I), f"{name} names another host"
    assert total < 60_000


# ------------------------------------------------------------------------------------ README


def readme_curl_commands() -> list[list[str]]:
    """The curl lines of README's "The web page and the API" section, split like a shell would."""
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = text.split("## The web page and the API", 1)[1].split("\n## ", 1)[0]
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", section, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            if line.strip().startswith("curl "):
                commands.append(shlex.split(line, comments=True))
    return commands


def curl(args: list[str], base: str):
    """Send what `curl -s [-X M] [-H h]... [-d body] URL` sends, to `base` instead of localhost:8000."""
    import httpx

    method, headers, data, url = None, {}, None, None
    tokens = iter(args[1:])
    for tok in tokens:
        if tok == "-s":
            continue
        if tok == "-X":
            method = next(tokens)
        elif tok == "-H":
            key, _, value = next(tokens).partition(":")
            headers[key.strip()] = os.path.expandvars(value.strip())
        elif tok == "-d":
            data = next(tokens)
        elif tok.startswith("-"):
            raise AssertionError(f"the README's curl lines use an option this check does not know: {tok}")
        else:
            url = tok
    assert url and url.startswith("localhost:8000/"), url
    method = method or ("POST" if data is not None else "GET")
    return httpx.request(method, base + url[len("localhost:8000"):], headers=headers, content=data, timeout=60)


def test_readme_curl_examples_answer(server, monkeypatch):
    """Every curl example of the README answers 200 with JSON naming the model, against a real
    server with admin enabled and two versions in its registry (so promote and roll back move)."""
    monkeypatch.setenv("MOVIEREC_ADMIN_TOKEN", TOKEN)
    commands = readme_curl_commands()
    paths = {next(t for t in c if t.startswith("localhost:")).split("?")[0] for c in commands}
    assert {"localhost:8000/health", "localhost:8000/recommend", "localhost:8000/recommend_cold",
            "localhost:8000/similar/50", "localhost:8000/movies", "localhost:8000/onboarding",
            "localhost:8000/ratings", "localhost:8000/profile/recommend", "localhost:8000/admin/promote"} <= paths
    for command in commands:
        answer = curl(command, server.base)
        assert answer.status_code == 200, (shlex.join(command), answer.status_code, answer.text[:300])
        assert answer.json()["model"]["name"] == "ease", shlex.join(command)
    assert server.get("/health").json()["model"]["version"] == "2"  # promoted 1, rolled back to 2
