"""/docs and /redoc in a real browser: Debian's headless Chromium, driven by Playwright.

A person opens /docs, authorizes with the demo key, logs in through `POST /api/jwt`, calls an
enrollment and sees 200, with every script and style served by registrar itself under a CSP of
'self' (the page makes no request to any other origin). ReDoc renders the document too.
Skipped, saying why, where Chromium is not installed (`apt-get install chromium`; .ci/run does).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.accounts import cli
from tests.support.servers import real_server

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium on PATH (apt-get install chromium; .ci/run installs it)"
)

ENROLLMENT = "AAAS.010.01-202001-U-10188-f002nkd-instructor"


@pytest.fixture(scope="module")
def demo_key(database_url: str) -> str:
    code, out, err = cli(database_url, "demo", "--enrollments", "300")
    assert code == 0, err
    return next(x for x in out.splitlines() if x.startswith("KEY=")).removeprefix("KEY=")


@pytest.fixture(scope="module")
def base(database_url: str, demo_key: str) -> Iterator[str]:
    with real_server(database_url) as port:
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def browser(base: str) -> Iterator[Any]:
    # After the demo and the server: Playwright's sync API keeps an event loop running in this
    # thread, and the CLI that fills the database starts one of its own.
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


def watch(page: Any, base: str) -> list[str]:
    """Problems the page meets: console errors other than Swagger UI's blocked inline style
    attributes (cosmetic), and any request to another origin."""
    problems: list[str] = []

    def on_console(message: Any) -> None:
        text = message.text
        if message.type == "error" and "Applying inline style violates" not in text:
            problems.append(f"console: {text[:300]}")

    def on_request(request: Any) -> None:
        if not request.url.startswith((base, "data:", "blob:")):
            problems.append(f"request to another origin: {request.url}")

    page.on("console", on_console)
    page.on("request", on_request)
    return problems


def test_log_in_through_authorize_and_call_an_enrollment(
    browser: Any, base: str, demo_key: str
) -> None:
    page = browser.new_page()
    problems = watch(page, base)
    page.goto(f"{base}/docs")
    page.wait_for_selector(".swagger-ui .information-container", timeout=30_000)

    # Authorize with the API key (the apiKey scheme: the raw key in Authorization).
    page.click("button.authorize")
    dialog = page.locator(".modal-ux")
    dialog.locator(".auth-container", has_text="apiKey").locator("input").fill(demo_key)
    dialog.locator(".auth-container", has_text="apiKey").locator(
        "button.authorize, button:has-text('Authorize')"
    ).first.click()
    dialog.locator("button.btn-done, button:has-text('Close')").first.click()

    # Log in: POST /api/jwt with the key; its JWT then authorizes the bearer scheme.
    login = page.locator("#operations-login_service-post_jwt_api_jwt_post")
    login.locator(".opblock-summary").click()
    with page.expect_response(lambda r: "/api/jwt" in r.url) as answered:
        login.locator("button.execute").click()
    assert answered.value.status == 200

    # Call an enrollment with the example id the document gives: 200.
    get = page.locator(
        "#operations-enrollments-get_enrollment_api_academic_enrollments__enrollment_id__get"
    )
    get.locator(".opblock-summary").click()
    with page.expect_response(lambda r: "/api/academic/enrollments/" in r.url) as answered:
        get.locator("button.execute").click()
    response = answered.value
    assert response.status == 200, response.text()
    assert response.json()["id"] == ENROLLMENT
    assert response.request.headers["authorization"].startswith("Bearer ")
    get.locator(".live-responses-table .response-col_status", has_text="200").wait_for()
    assert problems == []
    page.close()


def test_redoc_renders_the_document(browser: Any, base: str) -> None:
    page = browser.new_page()
    problems = watch(page, base)
    page.goto(f"{base}/redoc")
    page.wait_for_selector("text=registrar: the Academic Records API", timeout=30_000)
    page.locator("h2", has_text="Exchange an API key for a JWT").wait_for()
    # ReDoc's footer logo points at a CDN: the CSP blocks it before any request leaves.
    assert [p for p in problems if "cdn.redoc.ly" not in p] == []
    page.close()
