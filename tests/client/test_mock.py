"""The client against httpx.MockTransport: what the server cannot show yet (the events feed,
`?wait=` long-polls, `Prefer: wait`, webhooks management) and the client's own rules (Link
handling, models, filters, errors). Sync and async alike where it makes a difference.

When the server has events, `?wait=`, `Prefer: wait` and webhooks (issue 13), the same
behaviours get live tests (see the list in clients/python/README.md, "Tests").
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import pickle
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from registrar_client import (
    AsyncRegistrar,
    BadRequest,
    Conflict,
    Enrollment,
    Event,
    Forbidden,
    Gone,
    NotFound,
    RateLimited,
    Record,
    Registrar,
    RegistrarError,
    RetryPolicy,
    ServerError,
    ServiceUnavailable,
    TaskFailed,
    TaskRecord,
    Unauthorized,
    Unprocessable,
    literal,
)
from registrar_client._core import filter_params
from registrar_client.errors import error_for, task_messages

from tests.support.client import close, collect, next_item, resolve

BASE = "http://registrar.test"
Handler = Callable[[httpx.Request], httpx.Response]


class Mock:
    """Routes by path; logs in anyone; records every request."""

    def __init__(self) -> None:
        self.routes: dict[str, Handler] = {}
        self.requests: list[httpx.Request] = []
        self.lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            self.requests.append(request)
        if request.url.path == "/api/jwt":
            now = int(time.time())
            body = {"jwt": "j", "payload": {"iat": now, "exp": now + 3600}, "accepted_scopes": []}
            return httpx.Response(200, json=body)
        handler = self.routes.get(request.url.path)
        if handler is None:
            return httpx.Response(404, json={"title": "Not Found", "status": 404, "detail": "?"})
        return handler(request)

    def to(self, path: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.url.path == path]

    def client(self, flavor: str, **kwargs: Any) -> Any:
        transport = httpx.MockTransport(self)
        if flavor == "async":
            return AsyncRegistrar(
                BASE, "rk_x", http_client=httpx.AsyncClient(transport=transport), **kwargs
            )
        return Registrar(BASE, "rk_x", http_client=httpx.Client(transport=transport), **kwargs)


@pytest.fixture
def mock() -> Mock:
    return Mock()


# --- events --------------------------------------------------------------------------------


def event(n: int, kind: str = "enrollment.updated") -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": f"ev{n}",
        "source": "/api/academic/enrollments",
        "type": kind,
        "time": "2024-11-20T20:54:27.328833Z",
        "subject": f"AAAS.010.01-202001-U-10188-f00{n}stu-student",
        "origin": "api",
        "data": {"id": f"e{n}", "changed": ["course_assessment"], "term": {"id": "202001-U"}},
    }


class Feed:
    """GET /api/events: cursor = how many events came before; X-Next-Cursor and Link."""

    def __init__(self, events: list[dict[str, Any]]) -> None:
        self.events = events

    def __call__(self, request: httpx.Request) -> httpx.Response:
        after = int(request.url.params.get("after", "0"))
        size = int(request.url.params.get("pagesize", "100"))
        page = self.events[after : after + size]
        nxt = str(after + len(page))
        return httpx.Response(
            200,
            json=page,
            headers={"X-Next-Cursor": nxt, "Link": f'</api/events?after={nxt}>; rel="next"'},
        )


async def test_events_to_the_end_then_resume_from_the_cursor(flavor: str, mock: Mock) -> None:
    feed = Feed([event(n) for n in range(1, 6)])
    mock.routes["/api/events"] = feed
    c = mock.client(flavor)
    try:
        stream = c.events.list(pagesize=2)
        got = await collect(stream)
        assert [e.id for e in got] == ["ev1", "ev2", "ev3", "ev4", "ev5"]
        assert all(isinstance(e, Event) for e in got)
        assert got[0].data.changed == ["course_assessment"]
        assert got[0].data.term.id == "202001-U"
        assert stream.cursor == "5"
        asked = [r.url.params.get("after") for r in mock.to("/api/events")]
        assert asked == [None, "2", "4", "5"]  # the last one found the end
        assert all("wait" not in r.url.params for r in mock.to("/api/events"))

        # Later: resume where the stream stopped; only what came since.
        feed.events.append(event(6, "petition.created"))
        again = await collect(c.events.list(after=stream.cursor))
        assert [e.id for e in again] == ["ev6"]
    finally:
        await close(c)


async def test_the_cursor_moves_when_a_pages_last_event_is_handed_out(
    flavor: str, mock: Mock
) -> None:
    mock.routes["/api/events"] = Feed([event(n) for n in range(1, 6)])
    c = mock.client(flavor)
    try:
        stream = c.events.list(after="0", pagesize=2)
        positions = []
        for _ in range(4):
            await next_item(stream)
            positions.append(stream.cursor)
    finally:
        await close(c)
    # Resuming from a mid-page cursor repeats the rest of that page, never skips an event.
    assert positions == ["0", "2", "2", "4"]


async def test_types_are_sent_comma_separated(flavor: str, mock: Mock) -> None:
    mock.routes["/api/events"] = Feed([])
    c = mock.client(flavor)
    try:
        await collect(c.events.list(types=["enrollment.updated", "task.completed"]))
    finally:
        await close(c)
    (request,) = mock.to("/api/events")
    assert request.url.params["type"] == "enrollment.updated,task.completed"


async def test_following_long_polls_for_new_events(flavor: str, mock: Mock) -> None:
    events = [event(1)]

    def feed(request: httpx.Request) -> httpx.Response:
        after = int(request.url.params.get("after", "0"))
        if after >= len(events):
            time.sleep(0.2)  # held open until an event "arrives"
            events.append(event(len(events) + 1))
        page = events[after:]
        return httpx.Response(200, json=page, headers={"X-Next-Cursor": str(after + len(page))})

    mock.routes["/api/events"] = feed
    c = mock.client(flavor)
    try:
        stream = c.events.list(follow=True, wait=5)
        got = [await next_item(stream) for _ in range(3)]
    finally:
        await close(c)
    assert [e.id for e in got] == ["ev1", "ev2", "ev3"]
    requests = mock.to("/api/events")
    assert len(requests) == 3
    assert all(r.url.params["wait"] == "5" for r in requests)
    # The request may be held `wait` seconds: its read timeout is longer than that.
    assert requests[0].extensions["timeout"]["read"] >= 5 + 30


async def test_following_a_server_that_does_not_hold_polls_with_backoff(
    flavor: str, mock: Mock
) -> None:
    calls = []

    def feed(request: httpx.Request) -> httpx.Response:
        calls.append(time.monotonic())
        page = [event(1)] if len(calls) == 4 else []
        return httpx.Response(200, json=page, headers={"X-Next-Cursor": str(len(page))})

    mock.routes["/api/events"] = feed
    c = mock.client(flavor)
    try:
        stream = c.events.list(follow=True, wait=2, poll_interval=0.1)
        first = await next_item(stream)
    finally:
        await close(c)
    assert first.id == "ev1"
    gaps = [b - a for a, b in itertools.pairwise(calls)]
    assert len(gaps) == 3
    assert gaps[0] >= 0.09 and gaps[1] >= 0.19 and gaps[2] >= 0.39  # no busy loop


async def test_an_expired_cursor_is_gone(flavor: str, mock: Mock) -> None:
    problem = {"title": "Gone", "status": 410, "detail": "The cursor is older than 30 days."}
    mock.routes["/api/events"] = lambda r: httpx.Response(410, json=problem)
    c = mock.client(flavor)
    try:
        with pytest.raises(Gone) as caught:
            await collect(c.events.list(after="old"))
    finally:
        await close(c)
    assert caught.value.status == 410
    assert "30 days" in caught.value.detail


async def test_events_without_a_next_cursor_stop_instead_of_repeating(
    flavor: str, mock: Mock
) -> None:
    mock.routes["/api/events"] = lambda r: httpx.Response(200, json=[event(1)])
    c = mock.client(flavor)
    try:
        with pytest.raises(RegistrarError, match="next cursor"):
            await collect(c.events.list(), limit=10)
    finally:
        await close(c)
    assert len(mock.to("/api/events")) == 1


def test_event_stream_arguments_are_checked(mock: Mock) -> None:
    c = mock.client("sync")
    with pytest.raises(ValueError):
        c.events.list(wait=31)
    with pytest.raises(ValueError):
        c.events.list(pagesize=0)


# --- waiting on tasks ----------------------------------------------------------------------

TASK_ID = "630cf2e78b1c6c251cfbc125"
TASK_PATH = f"/api/tasks/{TASK_ID}"


def task(status: str, **more: Any) -> dict[str, Any]:
    done = status != "accepted"
    record = {
        "id": TASK_ID,
        "resource": "academic.enrollments",
        "action": "PATCH",
        "resource_id": "AAAS.010.01-202001-U-10188-f002qt1-student",
        "payload": {"course_assessment": {"submit_date": None, "opt_out_date": None}},
        "requester": {"sub": "svc", "exp": "1732141853", "iat": "1732131053"},
        "status": status,
        "request_date": "2024-11-20T20:54:26Z",
        "completed_date": "2024-11-20T20:54:27.328833Z" if done else None,
        "path": f"{BASE}/api/academic/enrollments/x" if done else None,
        "worker_data": {},
        "message": ("Enrollment updated successfully." if status == "complete" else None),
    }
    record.update(more)
    return record


async def test_wait_asks_the_server_to_hold(flavor: str, mock: Mock) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        time.sleep(0.2)  # finished while the server held the request
        return httpx.Response(200, json=task("complete"))

    mock.routes[TASK_PATH] = handler
    c = mock.client(flavor)
    try:
        done = await resolve(c.tasks.wait(TASK_ID, timeout=20))
    finally:
        await close(c)
    assert done.status == "complete"
    assert done.requester.exp == "1732141853"
    (request,) = mock.to(TASK_PATH)
    assert request.url.params["wait"] == "20"
    assert request.extensions["timeout"]["read"] >= 20


async def test_wait_asks_again_at_once_after_a_full_hold(flavor: str, mock: Mock) -> None:
    seen: list[tuple[float, str | None]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        hold = request.url.params.get("wait")
        seen.append((time.monotonic(), hold))
        if len(seen) == 1:
            time.sleep(float(hold or 0) * 0.85)  # held (nearly) as asked: still accepted
            return httpx.Response(200, json=task("accepted"))
        return httpx.Response(200, json=task("complete"))

    mock.routes[TASK_PATH] = handler
    c = mock.client(flavor)
    try:
        done = await resolve(c.tasks.wait(TASK_ID, timeout=3))
    finally:
        await close(c)
    assert done.status == "complete"
    assert seen[0][1] == "3"
    assert 0 < float(seen[1][1] or 0) <= 0.5  # the rest of the timeout, held too
    assert seen[1][0] - seen[0][0] < 2.55 + 0.2  # asked again at once after the hold


async def test_wait_without_a_limit_holds_at_most_60_seconds(flavor: str, mock: Mock) -> None:
    mock.routes[TASK_PATH] = lambda r: httpx.Response(200, json=task("error", message="['x']"))
    c = mock.client(flavor)
    try:
        with pytest.raises(TaskFailed) as caught:
            await resolve(c.tasks.wait(TASK_ID, timeout=None))
    finally:
        await close(c)
    assert mock.to(TASK_PATH)[0].url.params["wait"] == "60"
    assert caught.value.errors == ["x"]


async def test_prefer_wait_answered_with_the_finished_task(flavor: str, mock: Mock) -> None:
    eid = "AAAS.010.01-202001-U-10188-f002qt1-student"

    def patch(request: httpx.Request) -> httpx.Response:
        assert request.headers["Prefer"] == "wait=5"
        return httpx.Response(
            200,
            json=task("complete"),
            headers={"Location": TASK_PATH, "Preference-Applied": "wait=5"},
        )

    mock.routes[f"/api/academic/enrollments/{eid}"] = patch
    c = mock.client(flavor)
    try:
        written = await resolve(
            c.enrollments.set_course_assessment(
                eid, submit_date="2020-03-05T17:53:46Z", prefer_wait=5
            )
        )
        assert written.status == "complete"
        assert written.message == "Enrollment updated successfully."
        done = await resolve(written.wait())
        assert done.raw == written.raw
    finally:
        await close(c)
    assert mock.to(TASK_PATH) == []  # nothing left to poll
    (request,) = mock.to(f"/api/academic/enrollments/{eid}")
    assert request.extensions["timeout"]["read"] >= 5 + 30  # held up to 5 s more


async def test_prefer_wait_not_applied_is_the_usual_202(flavor: str, mock: Mock) -> None:
    mock.routes["/api/academic/petitions"] = lambda r: httpx.Response(
        202,
        json={"status": "accepted"},
        headers={"Location": f"https://elsewhere.example/api/tasks/{TASK_ID}"},
    )
    mock.routes[TASK_PATH] = lambda r: httpx.Response(200, json=task("complete"))
    c = mock.client(flavor)
    try:
        written = await resolve(
            c.petitions.create(
                netid="f006kdf",
                petition_code="Q41",
                origin_code="UREG",
                school="UG",
                grade_term="24F",
                prefer_wait=2,
            )
        )
        assert written.id == TASK_ID
        assert written.status == "accepted"
        assert (await resolve(written.wait())).status == "complete"
    finally:
        await close(c)
    (post,) = mock.to("/api/academic/petitions")
    assert json.loads(post.content) == {
        "petition": {
            "netid": "f006kdf",
            "petition_code": "Q41",
            "origin_code": "UREG",
            "school": "UG",
            "grade_term": "24F",
        }
    }


# --- webhooks management -------------------------------------------------------------------

HOOK = {
    "id": "wh_1",
    "url": "https://app.example.edu/hooks",
    "types": ["enrollment.updated"],
    "created": "2024-11-20T20:54:26Z",
}


async def test_webhooks_create_list_get_deliveries_delete(flavor: str, mock: Mock) -> None:
    def hooks(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            assert json.loads(request.content) == {
                "url": HOOK["url"],
                "types": ["enrollment.updated"],
            }
            return httpx.Response(201, json={**HOOK, "secret": "whsec_c2VjcmV0"})
        if request.url.params.get("page") == "2":
            return httpx.Response(200, json=[{**HOOK, "id": "wh_2"}])
        return httpx.Response(
            200, json=[HOOK], headers={"Link": '</api/webhooks?page=2>; rel="next"'}
        )

    mock.routes["/api/webhooks"] = hooks
    mock.routes["/api/webhooks/wh_1"] = lambda r: (
        httpx.Response(204) if r.method == "DELETE" else httpx.Response(200, json=HOOK)
    )
    attempt = {"id": "d1", "event": "ev1", "attempt": 1, "status_code": 500}
    mock.routes["/api/webhooks/wh_1/deliveries"] = lambda r: httpx.Response(200, json=[attempt])
    c = mock.client(flavor)
    try:
        created = await resolve(c.webhooks.create(HOOK["url"], ["enrollment.updated"]))
        assert created.secret == "whsec_c2VjcmV0"
        assert [h.id for h in await collect(c.webhooks.list())] == ["wh_1", "wh_2"]
        fetched = await resolve(c.webhooks.get("wh_1"))
        assert "secret" not in fetched
        assert fetched.types == ["enrollment.updated"]
        (delivery,) = await collect(c.webhooks.deliveries("wh_1"))
        assert delivery.attempt == 1 and delivery.status_code == 500
        assert await resolve(c.webhooks.delete("wh_1")) is None
    finally:
        await close(c)


async def test_a_delete_repeated_after_a_lost_answer_succeeds(flavor: str, mock: Mock) -> None:
    calls = []

    def delete(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) == 1:
            raise httpx.RemoteProtocolError("Server disconnected", request=request)
        return httpx.Response(404, json={"title": "Not Found", "status": 404, "detail": "gone"})

    mock.routes["/api/webhooks/wh_1"] = delete
    c = mock.client(flavor, retry=RetryPolicy(backoff=0.01))
    try:
        await resolve(c.webhooks.delete("wh_1"))
        with pytest.raises(NotFound):  # a plain 404 is still one
            await resolve(c.webhooks.delete("wh_1"))
    finally:
        await close(c)


# --- following Link ------------------------------------------------------------------------


INSIDE = "http://10.0.0.7:8000/api/academic/petitions"


async def test_link_is_followed_verbatim_on_our_own_origin(flavor: str, mock: Mock) -> None:
    """A Link naming another host (a proxy's inside name) is followed on the base URL's host:
    the token never goes elsewhere; path and query are the server's, untouched."""

    def petitions(request: httpx.Request) -> httpx.Response:
        page = request.url.params.get("page", "1")
        links = {
            "1": f'<{INSIDE}?continuation_key=k%2By&page=2>; rel="next", '
            f'<{INSIDE}?page=1>; rel="first"',
            "2": '<?continuation_key=k%2By&page=3>; rel="next"',
            "3": "",
        }[page]
        body = [{"id": f"p{page}", "netid": "f006kdf"}]
        return httpx.Response(200, json=body, headers={"Link": links} if links else {})

    mock.routes["/api/academic/petitions"] = petitions
    c = mock.client(flavor)
    try:
        got = await collect(c.petitions.list(netid="f006kdf"))
    finally:
        await close(c)
    assert [p.id for p in got] == ["p1", "p2", "p3"]
    urls = [str(r.url) for r in mock.to("/api/academic/petitions")]
    assert urls == [
        f"{BASE}/api/academic/petitions?netid=f006kdf",
        f"{BASE}/api/academic/petitions?continuation_key=k%2By&page=2",
        f"{BASE}/api/academic/petitions?continuation_key=k%2By&page=3",
    ]
    assert {r.headers["Authorization"] for r in mock.requests[1:]} == {"Bearer j"}


async def test_ids_are_one_path_segment(flavor: str, mock: Mock) -> None:
    mock.routes["/api/academic/enrollments/a/b c"] = lambda r: httpx.Response(
        200, json={"id": "a/b c"}
    )
    c = mock.client(flavor)
    try:
        assert (await resolve(c.enrollments.get("a/b c"))).id == "a/b c"
        with pytest.raises(ValueError):
            await resolve(c.enrollments.get(".."))
        with pytest.raises(ValueError):
            await resolve(c.tasks.get(""))
    finally:
        await close(c)
    assert mock.to("/api/academic/enrollments/a/b c")[0].url.raw_path == (
        b"/api/academic/enrollments/a%2Fb%20c"
    )


async def test_a_non_json_error_page_still_raises_a_registrar_error(
    flavor: str, mock: Mock
) -> None:
    mock.routes["/api/academic/petitions"] = lambda r: httpx.Response(
        502, text="<html>Bad Gateway</html>", headers={"Content-Type": "text/html"}
    )
    c = mock.client(flavor, retry=RetryPolicy(attempts=2, backoff=0.01))
    try:
        with pytest.raises(ServerError) as caught:
            await collect(c.petitions.list())
    finally:
        await close(c)
    assert caught.value.status == 502
    assert caught.value.title == "Bad Gateway"
    assert "Bad Gateway" in caught.value.detail
    assert len(mock.to("/api/academic/petitions")) == 2  # 502 is retried too


# --- models --------------------------------------------------------------------------------

SEED_002 = {
    "cache_date": "2020-06-15T04:43:15Z",
    "final_grade": "A",
    "credit_hours_earned": 1,
    "course_assessment": {"submit_date": "2020-03-05T17:53:46Z", "opt_out_date": None},
    "id": "AAAS.010.01-202001-U-10188-f001nkx-student",
    "is_active": False,
    "is_in_session": False,
    "netid": "f001nkx",
    "role": "student",
    "school_id": "UG",
    "section": {
        "id": "AAAS.010.01-202001-U-10188",
        "lms_section_id": "AAAS.010.01-WI20",
        "sis_section_id": "AAAS.010.01-WI20",
    },
    "term": {
        "id": "202001-U",
        "lms_term_id": "WI20",
        "sis_ptrm_code": "U",
        "sis_term_code": "202001",
    },
    # Keys a newer server might add: kept, reachable, nested too.
    "grading_basis": {"code": "LTR", "labels": [{"lang": "en", "text": "Letter"}]},
}


def test_models_reach_every_key_and_keep_the_json() -> None:
    e = Enrollment(SEED_002)
    assert e.course_assessment.submit_date == "2020-03-05T17:53:46Z"
    assert e.course_assessment.opt_out_date is None
    assert e.term.sis_term_code == "202001"
    assert e.grading_basis.code == "LTR"
    assert e.grading_basis.labels[0].text == "Letter"
    assert isinstance(e.grading_basis, Record)
    assert e.raw is SEED_002 or e.raw == SEED_002
    assert json.loads(json.dumps(e.raw)) == SEED_002
    copy = e.to_dict()
    copy["section"]["id"] = "changed"
    assert e.section.id == "AAAS.010.01-202001-U-10188"
    assert e == Enrollment(json.loads(json.dumps(SEED_002)))
    assert e == SEED_002
    assert "grading_basis" in dir(e)
    assert repr(e).startswith("Enrollment({")
    assert pickle.loads(pickle.dumps(e)) == e
    with pytest.raises(TypeError):
        hash(e)
    with pytest.raises(AttributeError, match="no key 'nothing'"):
        _ = e.nothing
    with pytest.raises(AttributeError):
        _ = e._private


async def test_a_pickled_task_keeps_its_record(flavor: str, mock: Mock) -> None:
    mock.routes[TASK_PATH] = lambda r: httpx.Response(200, json=task("accepted"))
    c = mock.client(flavor)
    try:
        t = await resolve(c.tasks.get(TASK_ID))
    finally:
        await close(c)
    back = pickle.loads(pickle.dumps(t))
    assert type(back) is TaskRecord
    assert back.raw == t.raw


# --- filters -------------------------------------------------------------------------------

EST = dt.timezone(dt.timedelta(hours=-5))


@pytest.mark.parametrize(
    ("filters", "keywords", "expected"),
    [
        (None, {"term__sis_term_code": "<202001"}, [("term.sis_term_code", "<202001")]),
        ({"section.id": "AAAS.*"}, {}, [("section.id", "AAAS.*")]),
        (
            [("term.sis_term_code", ">201901"), ("term.sis_term_code", "<202003")],
            {},
            [("term.sis_term_code", ">201901"), ("term.sis_term_code", "<202003")],
        ),
        (
            None,
            {"is_active": True, "is_in_session": False},
            [("is_active", "true"), ("is_in_session", "false")],
        ),
        (None, {"final_grade": None}, [("final_grade", "null")]),
        (None, {"credit_hours_earned": 1.5}, [("credit_hours_earned", "1.5")]),
        (None, {"credit_hours_earned": 2}, [("credit_hours_earned", "2")]),
        (None, {"netid": ["f1", "f2"]}, [("netid", "f1,f2")]),
        (None, {"netid": {"f2", "f1"}}, [("netid", "f1,f2")]),
        (None, {"decision": ["a,b", "c\\d"]}, [("decision", "a\\,b,c\\\\d")]),
        (
            None,
            {"course_assessment__submit_date": dt.datetime(2020, 3, 5, 12, 53, 46, tzinfo=EST)},
            [("course_assessment.submit_date", "2020-03-05T17:53:46Z")],
        ),
        ({"role": "student"}, {"netid": "!f1"}, [("role", "student"), ("netid", "!f1")]),
    ],
)
def test_filter_parameters(filters: Any, keywords: dict[str, Any], expected: Any) -> None:
    assert filter_params(filters, keywords, None) == expected


def test_filter_parameters_refuse_what_cannot_be_meant() -> None:
    with pytest.raises(ValueError, match="Link"):
        filter_params({"page": 2}, {}, None)
    with pytest.raises(ValueError, match="pagesize="):
        filter_params(None, {"pagesize": 2}, None)
    with pytest.raises(ValueError, match="empty"):
        filter_params(None, {"netid": []}, None)
    with pytest.raises(ValueError, match="timezone"):
        filter_params(None, {"cache_date": dt.datetime(2020, 1, 1)}, None)
    with pytest.raises(TypeError):
        filter_params("netid=x", {}, None)
    with pytest.raises(TypeError):
        filter_params(None, {"netid": object()}, None)
    with pytest.raises(ValueError):
        filter_params(None, {}, 0)
    assert filter_params(None, {}, 7) == [("pagesize", "7")]


def test_literal_escapes_the_grammar() -> None:
    assert literal("<202001") == "\\<202001"
    assert literal("AAAS.*,x\\y") == "AAAS.\\*\\,x\\\\y"
    assert literal("plain") == "plain"


# --- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequest),
        (401, Unauthorized),
        (403, Forbidden),
        (404, NotFound),
        (409, Conflict),
        (410, Gone),
        (422, Unprocessable),
        (429, RateLimited),
        (500, ServerError),
        (503, ServiceUnavailable),
        (418, RegistrarError),
    ],
)
def test_errors_by_status(status: int, cls: type[RegistrarError]) -> None:
    problem = {
        "type": "https://registrar.invalid/problems/x",
        "title": "Title",
        "status": status,
        "detail": "What happened.",
        "errors": ["one", "two"],
        "instance": "/api/x",
    }
    error = error_for(status, problem, "", {"X-Correlation-ID": "abc"}, "Reason", None)
    assert type(error) is cls
    assert error.status == status
    assert (error.title, error.detail, error.errors) == ("Title", "What happened.", ["one", "two"])
    assert error.problem["instance"] == "/api/x"
    assert error.type == "https://registrar.invalid/problems/x"
    assert str(error) == f"{status} Title: What happened. [one; two]"
    back = pickle.loads(pickle.dumps(error))
    assert type(back) is cls and back.errors == ["one", "two"] and back.status == status


def test_task_messages_are_split_as_seed_000_writes_them() -> None:
    assert task_messages("['Missing attribute: school.', 'Unknown petition_code: Q99.']") == [
        "Missing attribute: school.",
        "Unknown petition_code: Q99.",
    ]
    assert task_messages("Petition did not update successfully. ") == [
        "Petition did not update successfully."
    ]
    assert task_messages("[not, a list") == ["[not, a list"]
    assert task_messages("[__import__('os')]") == ["[__import__('os')]"]
    assert task_messages("") == []


def test_bad_configuration_is_refused_early() -> None:
    with pytest.raises(ValueError):
        Registrar("127.0.0.1:8000", "rk_x")
    with pytest.raises(ValueError):
        Registrar(BASE, "  ")
