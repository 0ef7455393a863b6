"""Run in a fresh venv holding only the client: it imports without the server's dependencies,
and a whole exchange (login, a read, a write and its task) works over a mock transport."""

from __future__ import annotations

import importlib.util
import sys

import httpx
import registrar_client
from registrar_client import Registrar, webhooks

for server_only in ("fastapi", "sqlalchemy", "pydantic", "registrar"):
    if importlib.util.find_spec(server_only) is not None:
        sys.exit(f"{server_only} is installed: this is not a client-only environment")


def answer(request: httpx.Request) -> httpx.Response:
    if request.url.path == "/api/jwt":
        return httpx.Response(200, json={"jwt": "j", "payload": {"iat": 0, "exp": 3600}})
    if request.method == "PATCH":
        return httpx.Response(
            202, json={"status": "accepted"}, headers={"Location": "/api/tasks/ab"}
        )
    if request.url.path == "/api/tasks/ab":
        return httpx.Response(200, json={"id": "ab", "status": "complete", "request_date": "x"})
    return httpx.Response(200, json={"id": "e1", "section": {"id": "s1"}})


http = httpx.Client(transport=httpx.MockTransport(answer))
with Registrar("http://registrar.test", "rk_x", http_client=http) as client:
    assert client.enrollments.get("e1").section.id == "s1"
    assert client.enrollments.set_course_assessment("e1").wait(5).status == "complete"
signature = webhooks.sign("whsec_c2VjcmV0", "m", 0, b"{}")
assert (
    webhooks.verify(
        "whsec_c2VjcmV0",
        {"webhook-id": "m", "webhook-timestamp": "0", "webhook-signature": signature},
        b"{}",
        now=0,
    )
    == {}
)
print(f"registrar_client {registrar_client.__version__} installs and works without the server")
