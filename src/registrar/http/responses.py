"""Responses: JSON rendered by orjson (representations are built as plain dicts, for speed), and
the headers that describe a page of a collection."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

import orjson
from starlette.datastructures import URL
from starlette.responses import Response

from registrar.paging.pages import Page

PATH_SAFE = "/:@!$&'()*+,;=-._~"


class FastJSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def page_headers(page: Page, url: URL) -> dict[str, str]:
    """X-Request-ID (the found set), X-Total-Count, Link (`next` while more remain, `first`) and
    X-Ignored-Parameters, for a page of the collection at `url`."""
    key = page.continuation_key
    headers = {"X-Request-ID": key, "X-Total-Count": str(page.total)}
    links = []
    if page.next_cursor is not None:
        # The cursor says where the next page starts; no page number, so the chain is not bound
        # by `page`'s limit (which is there for offsets).
        next_query = urlencode(
            {"continuation_key": key, "pagesize": page.pagesize, "cursor": page.next_cursor}
        )
        links.append(f'<{absolute_link(url, next_query)}>; rel="next"')
    first_query = urlencode({"continuation_key": key, "page": 1, "pagesize": page.pagesize})
    links.append(f'<{absolute_link(url, first_query)}>; rel="first"')
    headers["Link"] = ", ".join(links)
    if page.ignored:
        headers["X-Ignored-Parameters"] = ",".join(_header_safe(n) for n in page.ignored)
    return headers


def absolute_link(url: URL, query: str) -> str:
    """An absolute link to this collection: the path percent-encoded again (Starlette hands it
    over decoded), so a path segment such as a netid can never put non-ASCII or control
    characters into a header."""
    return f"{url.scheme}://{url.netloc}{quote(url.path, safe=PATH_SAFE)}?{query}"


def _header_safe(name: str) -> str:
    """Parameter names echo back in a header: keep them printable ASCII, short, comma-free."""
    cleaned = "".join(ch if 33 <= ord(ch) < 127 and ch != "," else "?" for ch in name)
    return cleaned[:100]
