"""Every error of the HTTP API in one shape, against a real uvicorn on loopback.

Every 4xx answers `{"detail": "<one sentence>", "errors": [...]}` (`errors` only for bad
parameters or a bad body, each {loc, msg, type}), never the request's input echoed back; a
NaN or an infinity in a JSON body is a 422 (FastAPI's own handler answered 500 for it); the
OpenAPI schema documents that body for every 4xx; the /admin routes are absent from it when
admin is disabled; and /docs renders in a real browser without any request leaving loopback.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from browser_helpers import browser  # noqa: F401  (browser: the fixture)
from serving_helpers import TOKEN, LiveServer, make_registry

JSON = {"content-type": "application/json"}
PROFILE = "errors-profile-1"


@pytest.fixture(scope="module")
def registry(tmp_path_factory, ml100k) -> Path:
    return make_registry(tmp_path_factory.mktemp("errors_registry"), ml100k)


@pytest.fixture(scope="module")
def server(registry, tmp_path_factory):
    """Admin enabled (a token set)."""
    with LiveServer(registry, tmp_path_factory.mktemp("errors_server"), admin_token=TOKEN) as live:
        yield live


@pytest.fixture(scope="module")
def plain(registry, tmp_path_factory):
    """Admin disabled (no token)."""
    with LiveServer(registry, tmp_path_factory.mktemp("errors_plain"), admin_token=None) as live:
        yield live


def error(response: httpx.Response, status: int) -> dict:
    """The error body of `response`, checked for the one shape: a JSON object with a
    one-sentence `detail` and, if present, `errors` as [{loc, msg, type}] -- nothing else,
    and never an `input` echoed back."""
    assert response.status_code == status, (response.status_code, response.text[:500])
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert isinstance(body, dict) and set(body) <= {"detail", "errors"}, body
    assert isinstance(body["detail"], str) and body["detail"].strip(), body
    assert "\n" not in body["detail"] and len(body["detail"]) < 400, body["detail"]
    if "errors" in body:
        assert isinstance(body["errors"], list) and body["errors"], body
        for item in body["errors"]:
            assert set(item) == {"loc", "msg", "type"}, item
            assert isinstance(item["loc"], list) and isinstance(item["msg"], str) and isinstance(item["type"], str)
    return body


def post_raw(server: LiveServer, path: str, text: str) -> httpx.Response:
    """POST `text` as a JSON body as it is (Python's json module writes NaN and Infinity)."""
    return server.post(path, content=text.encode(), headers=JSON)


# -- NaN and infinities ----------------------------------------------------------------------
@pytest.mark.parametrize("path, text, where", [
    ("/ratings", '{"profile": "%s", "ratings": [{"movie_id": 50, "rating": NaN}]}' % PROFILE,
     "body.ratings.0.rating"),
    ("/recommend_cold", '{"ratings": [{"movie_id": 50, "rating": NaN}]}', "body.ratings.0.rating"),
    ("/recommend_cold", '{"ratings": [{"movie_id": 50, "rating": 4}, {"movie_id": 100, "rating": Infinity}]}',
     "body.ratings.1.rating"),
    ("/onboarding", '{"group_ids": [0], "k": NaN}', "body.k"),
    # nested: inside the filters object of a batch request, and a literal too large for a float
    ("/recommend/batch", '{"user_ids": [1], "filters": {"min_ratings": -Infinity}}', "body.filters.min_ratings"),
    ("/recommend_cold", '{"liked": [50], "liked_threshold": 1e999}', "body.liked_threshold"),
])
def test_nan_and_infinity_in_a_body_are_422_not_500(server, path, text, where):
    body = error(post_raw(server, path, text), 422)
    assert body["detail"].startswith(f"{where}: "), body
    assert body["errors"][0]["loc"] == [int(p) if p.isdigit() else p for p in where.split(".")]
    assert "Traceback" not in server.log() and "this is a bug" not in server.log()


def test_the_detail_names_the_first_problem_and_counts_the_others(server):
    body = error(post_raw(server, "/recommend_cold", '{"ratings": [{"movie_id": 50, "rating": NaN}], "k": "x",'
                                                      ' "colour": 1}'), 422)
    assert body["detail"].startswith("body.ratings.0.rating: Input should be a finite number"), body
    assert body["detail"].endswith("(and 2 more problems; see errors)"), body
    assert len(body["errors"]) == 3


def test_the_problems_of_one_union_value_are_one_problem():
    """An ID that may be a number or a text fails as both: one value, one problem in the sentence."""
    from movierec.serving.error_handlers import validation_detail

    raw = [{"type": "int_type", "loc": ("body", "user_ids", 0, "int"), "msg": "Input should be a valid integer",
            "input": 1.5},
           {"type": "string_type", "loc": ("body", "user_ids", 0, "constrained-str"),
            "msg": "Input should be a valid string", "input": 1.5},
           {"type": "missing", "loc": ("body", "k"), "msg": "Field required", "input": {}}]
    assert validation_detail(raw) == ("body.user_ids.0: Input should be a valid integer; or Input should be a "
                                      "valid string (and 1 more problem; see errors)")


# -- never echo a large input ------------------------------------------------------------------
def test_a_large_input_is_never_echoed_back(server):
    huge = "x" * 200_000
    cases = [
        ("/ratings", {"profile": huge, "ratings": [{"movie_id": 50, "rating": 4}]}),  # a pattern mismatch
        ("/recommend_cold", {"ratings": [{"movie_id": 50, "rating": huge}]}),          # a string for a number
        ("/recommend_cold", {huge: 1}),                                                 # an unknown field's name
        ("/recommend/batch", {"user_ids": [huge] * 3}),                                # refused, or unknown
    ]
    for path, payload in cases:
        r = server.post(path, json=payload)
        error(r, 404 if r.status_code == 404 else 422)
        assert len(r.content) < 3000, (path, len(r.content))
        assert "x" * 100 not in r.text, path


def test_the_errors_list_is_capped(server):
    ratings = [{"movie_id": m, "rating": "bad"} for m in range(1, 301)]
    body = error(server.post("/recommend_cold", json={"ratings": ratings}), 422)
    assert len(body["errors"]) == 20
    assert "(and 299 more problems; see errors)" in body["detail"]


# -- every other 4xx -------------------------------------------------------------------------
def test_every_4xx_has_the_shape(server, plain):
    # an unknown path, a method a path does not take, a file missing under a mount
    assert "/nowhere" in error(server.get("/nowhere"), 404)["detail"]
    assert "/docs" in error(server.get("/nowhere"), 404)["detail"]
    error(server.get("/static/missing.js"), 404)
    r = server.client.delete("/health")
    assert "GET" in error(r, 405)["detail"] and r.headers["allow"]
    assert "/ratings does not take PUT" in error(server.client.put("/ratings", json={}), 405)["detail"]
    # bad parameters
    body = error(server.get("/recommend", params={"user_id": 1, "k": "abc"}), 422)
    assert body["detail"].startswith("query.k: ") and body["errors"][0]["loc"] == ["query", "k"]
    assert error(server.get("/recommend"), 422)["detail"] == "query.user_id: Field required"
    # a body that is not JSON, not UTF-8, not there, not an object
    assert "not valid JSON" in error(post_raw(server, "/ratings", '{"profile": '), 422)["detail"]
    not_utf8 = server.post("/ratings", content=b'{"a": "\xc3\x28"}', headers=JSON)
    assert "could not be read" in error(not_utf8, 400)["detail"]
    assert "JSON object" in error(server.post("/ratings"), 422)["detail"]
    assert "JSON object" in error(server.post("/ratings", content=b"profile=x",
                                              headers={"content-type": "text/plain"}), 422)["detail"]
    # the routes' own refusals (ApiError) and the library's (MovierecError)
    assert "Unknown user" in error(server.get("/recommend", params={"user_id": 99999}), 404)["detail"]
    assert "no version" in error(server.post("/admin/promote", json={"version": "7"},
                                             headers={"Authorization": f"Bearer {TOKEN}"}), 404)["detail"]
    assert "Bearer" in error(server.get("/admin/status"), 401)["detail"]
    assert error(server.get("/admin/status", headers={"Authorization": "Bearer wrong"}), 403)
    assert "Admin is disabled" in error(plain.get("/admin/status"), 404)["detail"]
    # the body limit (BodyLimit middleware): declared and streamed
    big = b'{"profile": "' + b"x" * (1 << 20) + b'"}'
    assert "larger than" in error(server.post("/ratings", content=big, headers=JSON), 413)["detail"]

    def chunks():
        for _ in range(70):
            yield b" " * 16384

    assert "larger than" in error(server.post("/recommend/batch", content=chunks(), headers=JSON), 413)["detail"]
    assert "Traceback" not in server.log()


# -- the OpenAPI schema ------------------------------------------------------------------------
def test_the_schema_documents_the_error_body_for_every_4xx(server):
    schema = server.get("/openapi.json").json()
    components = schema["components"]["schemas"]
    assert "HTTPValidationError" not in components and "ValidationError" not in components
    body = components["ErrorBody"]
    assert body["properties"]["detail"]["type"] == "string" and body["required"] == ["detail"]
    assert "ErrorItem" in components and "input" not in components["ErrorItem"]["properties"]
    documented = 0
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            codes = [code for code in operation["responses"] if code.startswith("4")]
            if operation.get("parameters") or operation.get("requestBody"):
                assert "422" in codes, (method, path)
            for code in codes:
                ref = operation["responses"][code]["content"]["application/json"]["schema"]["$ref"]
                assert ref == "#/components/schemas/ErrorBody", (method, path, code)
                documented += 1
    assert documented > 40


def test_admin_routes_are_documented_only_when_admin_is_enabled(server, plain):
    with_token = server.get("/openapi.json").json()["paths"]
    without = plain.get("/openapi.json").json()["paths"]
    admin = {"/admin/status", "/admin/reload", "/admin/promote", "/admin/rollback"}
    assert admin <= set(with_token)
    assert not [p for p in without if p.startswith("/admin")], sorted(without)
    assert set(with_token) - admin == set(without)


# -- /docs without the internet --------------------------------------------------------------
def test_docs_pages_come_from_the_app(plain):
    page = plain.get("/docs")
    assert page.status_code == 200 and "swagger-ui" in page.text
    assert "cdn" not in page.text.lower() and "https://" not in page.text
    # Swagger UI's online validator would send the schema's address to validator.swagger.io
    assert '"validatorUrl": null' in page.text
    assert plain.get("/docs/assets/swagger-ui-bundle.js").status_code == 200
    assert plain.get("/docs/assets/swagger-ui.css").status_code == 200
    assert plain.get("/redoc").status_code == 404  # ReDoc loads its script from a CDN: not offered


def test_docs_render_in_a_browser_without_leaving_loopback(plain, browser):
    """Swagger UI draws every operation of the schema (admin's left out: no token), and the
    browser asks nothing of any host but the server on loopback."""
    context = browser.new_context()
    context.set_default_timeout(20_000)
    page = context.new_page()
    urls: list[str] = []
    page.on("request", lambda request: urls.append(request.url))
    try:
        page.goto(plain.base + "/docs")
        page.wait_for_selector(".opblock-summary-path", state="attached")
        paths = page.locator(".opblock-summary-path").evaluate_all(
            "els => els.map(e => e.getAttribute('data-path') || e.textContent)")
        expected = [p for p in plain.get("/openapi.json").json()["paths"]]
        assert {p.replace("\u200b", "") for p in paths} == set(expected), paths
        assert not any("/admin" in p for p in paths)
        page.locator(".opblock-summary-path").first.click()  # open one operation: it renders its responses
        page.wait_for_selector(".responses-wrapper", state="attached")
        page.wait_for_load_state("networkidle")  # any late request (fonts, a validator badge) has been made
    finally:
        context.close()
    outside = [u for u in urls if not (u.startswith("data:") or urlsplit(u).hostname in ("127.0.0.1", "localhost"))]
    assert not outside, outside
    assert any(u.endswith("/docs/assets/swagger-ui-bundle.js") for u in urls), urls
