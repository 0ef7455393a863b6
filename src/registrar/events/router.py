"""The event feed over HTTP: GET /api/events (spec 7)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request

from registrar.auth.scopes import ENROLLMENTS_READ, PEOPLE_PRIVATE, PETITIONS_READ
from registrar.core.problems import bad_request
from registrar.events import service
from registrar.events.schemas import CloudEvent
from registrar.http.dependencies import CurrentClient, RuntimeDep
from registrar.http.problems import problem_responses
from registrar.http.responses import FastJSON, absolute_link
from registrar.http.urls import public_url
from registrar.http.waiting import seconds

router = APIRouter(tags=["events"])

NEXT_CURSOR = "X-Next-Cursor"
DESCRIPTION = f"""Every change, in commit order, oldest first, as CloudEvents 1.0 JSON (a bare
array): `enrollment.created`, `enrollment.updated`, `enrollment.deleted`, `petition.created`,
`task.completed`. A mirror that applies each event in order ends with what the collections answer
for the same token.

- `data` is the resource **as it is now, as this token may see it** (built when read), plus
  `changed` (the top-level keys that changed, among those it sees) on updates; `{{id}}` when the
  resource is gone. Enrollment events need `{ENROLLMENTS_READ}`, petition events
  `{PETITIONS_READ}`; nothing about a FERPA-protected person is shown without `{PEOPLE_PRIVATE}`; an
  update of only keys the token cannot see is not shown; `task.completed` only to the task's
  requester. Any valid token may read the events it may see.
- Paging: `Link: <...>; rel="next"` and `X-Next-Cursor` carry the cursor to pass as `after`, also
  on an empty page (resume from it later). Cursors are opaque.
- `wait=S` (at most {service.MAX_WAIT_SECONDS}) holds an empty page open until an event arrives.
- Events are kept `REGISTRAR_EVENT_RETENTION_DAYS` (30 days); an older cursor gets `410`: read the
  collections again, then the feed from its start."""

PARAMETERS: list[dict[str, Any]] = [
    {
        "name": "after",
        "in": "query",
        "required": False,
        "schema": {"type": "string"},
        "description": "A cursor from `X-Next-Cursor` or the `next` link; none: from the oldest "
        "event kept.",
    },
    {
        "name": "type",
        "in": "query",
        "required": False,
        "schema": {"type": "string"},
        "description": "Event types, comma separated (`enrollment.updated,petition.created`); "
        "none: every type the token may read. A type whose scope the token lacks is a 403.",
        "example": "enrollment.updated",
    },
    {
        "name": "pagesize",
        "in": "query",
        "required": False,
        "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
    },
    {
        "name": "wait",
        "in": "query",
        "required": False,
        "schema": {"type": "number", "minimum": 0, "maximum": service.MAX_WAIT_SECONDS},
        "description": "Seconds to hold an empty page open until an event arrives.",
    },
]
HEADERS = {
    "Link": {"description": '`<...?after=CURSOR...>; rel="next"`', "schema": {"type": "string"}},
    NEXT_CURSOR: {"description": "The cursor to continue after", "schema": {"type": "string"}},
}


@router.get(
    "/api/events",
    summary="Read the event feed (changes in commit order)",
    description=DESCRIPTION,
    response_model=list[CloudEvent],
    responses={200: {"headers": HEADERS}, **problem_responses(400, 410)},
    openapi_extra={"parameters": PARAMETERS},
)
async def list_events(request: Request, client: CurrentClient, runtime: RuntimeDep) -> Any:
    params = request.query_params
    reader = service.Reader.of(client)
    types = service.parse_types(params.getlist("type"), reader)
    settings = runtime.settings
    size = params.get("pagesize", str(settings.page_size_default))
    if not (
        size.isascii()
        and size.isdigit()
        and len(size) < 8
        and 1 <= int(size) <= settings.page_size_max
    ):
        raise bad_request(
            "Invalid pagesize.", [f"pagesize: a whole number from 1 to {settings.page_size_max}"]
        )
    wait = seconds("wait", params.get("wait"), service.MAX_WAIT_SECONDS)
    keys = await service.event_keys(runtime)
    raw_after = params.get("after")
    after, since = keys.read(raw_after) if raw_after is not None else (None, None)
    page = await service.read_feed(runtime, reader, after, types, int(size), wait, keys, since)
    cursor = keys.cursor(page.next_position, page.since)
    query = [(k, v) for k, v in params.multi_items() if k != "after"] + [("after", cursor)]
    link = absolute_link(public_url(request), urlencode(query))
    return FastJSON(page.events, headers={"Link": f'<{link}>; rel="next"', NEXT_CURSOR: cursor})
