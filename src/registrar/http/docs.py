"""/docs (Swagger UI) and /redoc (ReDoc), served with their scripts and styles from this process.

The assets come from the `fastapi-offline` package (Swagger UI 5 and ReDoc 2, kept current by
its maintainers), not from a CDN: campus deployments are often offline or behind a strict CSP.
The pages carry no inline script (Swagger UI starts from `docs_assets/swagger-init.js`), so
their Content-Security-Policy allows scripts from this origin only
(http/middleware/security_headers.py).
"""

from __future__ import annotations

import html
import secrets

from fastapi import FastAPI
from starlette.responses import HTMLResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from registrar.http.middleware.security_headers import DOCS_CSP

ASSETS_PATH = "/docs/assets"
# Where the files live: fastapi-offline's package data, and our own start-up script.
ASSET_PACKAGES: list[str | tuple[str, str]] = [
    ("fastapi_offline", "static"),
    ("registrar.http", "docs_assets"),
]
ASSET_CACHE = "public, max-age=3600"


class _Assets(StaticFiles):
    """Static files that a browser may cache for an hour (the API's default is no-store)."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers["Cache-Control"] = ASSET_CACHE
        return response


def _page(title: str, head: str, body: str) -> str:
    return (
        "<!doctype html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<link rel='icon' type='image/png' href='{ASSETS_PATH}/favicon.png'>{head}</head>"
        f"<body>{body}</body></html>\n"
    )


def install_docs(app: FastAPI, openapi_url: str = "/openapi.json") -> None:
    """/docs, /redoc and their assets (not in the OpenAPI document)."""
    title = app.title
    url = html.escape(openapi_url)
    swagger = _page(
        f"{title} - Swagger UI",
        f"<link rel='stylesheet' href='{ASSETS_PATH}/swagger-ui.css'>",
        f"<div id='swagger-ui' data-openapi-url='{url}'></div>"
        f"<script src='{ASSETS_PATH}/swagger-ui-bundle.js'></script>"
        f"<script src='{ASSETS_PATH}/swagger-init.js'></script>",
    )

    async def docs() -> HTMLResponse:
        return HTMLResponse(swagger)

    async def redoc_page() -> HTMLResponse:
        # ReDoc's styles are <style> elements it writes at run time: they are allowed by a nonce
        # made for this one answer (ReDoc puts it on each of them), not by 'unsafe-inline'.
        nonce = secrets.token_urlsafe(18)
        page = _page(
            f"{title} - ReDoc",
            "",
            f"<div id='redoc' data-openapi-url='{url}' data-nonce='{nonce}'></div>"
            f"<script src='{ASSETS_PATH}/redoc.standalone.js'></script>"
            f"<script src='{ASSETS_PATH}/redoc-init.js'></script>",
        )
        policy = DOCS_CSP.decode().replace("style-src 'self'", f"style-src 'self' 'nonce-{nonce}'")
        return HTMLResponse(page, headers={"Content-Security-Policy": policy})

    app.add_api_route("/docs", docs, methods=["GET"], include_in_schema=False)
    app.add_api_route("/redoc", redoc_page, methods=["GET"], include_in_schema=False)
    app.mount(ASSETS_PATH, _Assets(packages=ASSET_PACKAGES), name="docs-assets")
