"""Delivering events to subscriptions: the fan-out (events -> one delivery task each) and the
deliverer (claims those tasks, POSTs them, records each attempt), in every worker process.

Why not a task handler: handlers run inside the worker's write transaction, in batches; an HTTP
call there would hold SQLite's write lock (or a PostgreSQL transaction and its row locks) for as
long as a receiver takes, and one slow receiver would hold up the whole batch. So the deliverer
runs beside the worker, on the same queue and with its functions (claim with a lease, heartbeat,
finish, retry, release), and no HTTP call runs inside a transaction:

1. Fan-out (`fan_out`, one write transaction): for each active subscription behind the newest
   event, the events after its cursor that its account may see NOW (events/service.py's
   projection, with the account's current grants as the reader), each stored as a delivery with
   its CloudEvent body, plus a `webhook.deliver` task of the same id; the cursor moves in the same
   transaction, and (subscription, event) is unique, so each event is delivered exactly once per
   subscription however fan-outs race (PostgreSQL: FOR UPDATE SKIP LOCKED on subscriptions).
2. Claim (one write): due delivery tasks, leased, with their bodies and subscriptions.
3. POST, concurrently (sender.py, outside any transaction): at most `webhook_concurrency` in flight
   per process and `webhook_concurrency_per_subscription` per subscription; a claimed delivery
   whose subscription is at its cap is given back for later (`tasks.repository.defer`), so a
   receiver that hangs holds a few slots, never the process's.
4. Record (one write for every attempt that ended meanwhile): the attempt's log row, and the
   task finished (2xx), retried after a backoff (anything else: same delivery id, so the same
   `webhook-id`) or ended after REGISTRAR_WEBHOOK_MAX_ATTEMPTS; a subscription whose attempts
   have all failed for REGISTRAR_WEBHOOK_DISABLE_AFTER_HOURS is disabled.

A worker killed mid-POST loses nothing: the lease expires and another worker sends the delivery
again, with the same `webhook-id` (at-least-once; receivers deduplicate on it).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import hashlib
import hmac
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import Connection, Row

from registrar import __version__
from registrar.auth import repository as accounts_repo
from registrar.auth.accounts import Grants
from registrar.auth.scopes import ENROLLMENTS_READ_SENSITIVE, PEOPLE_PRIVATE
from registrar.auth.service import shared_secret
from registrar.core.clock import utcnow
from registrar.core.runtime import Runtime
from registrar.events import repository as events_repo
from registrar.events.cursors import EventKeys
from registrar.events.service import TYPE_SCOPES, Reader, event_keys, visible_events
from registrar.tasks import repository as tasks_repo
from registrar.tasks.handlers import ClaimedTask
from registrar.tasks.models import TaskStatus
from registrar.tasks.queue import set_from_any_thread
from registrar.tasks.service import new_task_id
from registrar.webhooks import repository
from registrar.webhooks.models import DeliveryStatus, SubscriptionStatus
from registrar.webhooks.sealing import SECRET_NAME, SecretBox
from registrar.webhooks.sender import Answer, ConnectError, ProtocolError, Sender
from registrar.webhooks.targets import TargetRefused, resolve

log = logging.getLogger("registrar.webhooks")

RESOURCE = "webhook.deliver"
ACTION = "POST"
# Events fanned out per subscription, and subscriptions, per fan-out transaction.
FAN_OUT_EVENTS = 500
FAN_OUT_SUBSCRIPTIONS = 100
# A receiver's answer is read up to this much (then dropped): its status is all that counts.
ANSWER_BYTES = 64 * 1024
# The longest wait between two retries of a delivery.
RETRY_CAP_SECONDS = 12 * 3600.0
# A subscription none of whose attempts has ended for this long is stalled (Lane.stalled): what
# waits behind it goes back to the queue for DEFER_SECONDS.
STALLED_AFTER_SECONDS = 2.0
DEFER_SECONDS = 2.0
IDLE_CLAIM_SECONDS = 30.0
USER_AGENT = f"registrar-webhooks/{__version__}"


def shaping_scopes(event_type: str, scopes: frozenset[str]) -> frozenset[str]:
    """The account's scopes that decided whether and how it was shown this event: the type's own,
    and read.sensitive and the private scope where they change what an event shows. While the
    account still holds all of them, the stored body is exactly what it may see."""
    needed = TYPE_SCOPES[event_type]
    shaping = {needed} if needed is not None else set()
    if event_type.startswith("enrollment."):
        shaping |= scopes & {ENROLLMENTS_READ_SENSITIVE}
    if event_type != "task.completed":
        shaping |= scopes & {PEOPLE_PRIVATE}
    return frozenset(shaping)


def delivery_task(
    delivery_id: str, hook: Row[Any], now: dt.datetime, max_attempts: int = 1
) -> dict[str, Any]:
    """The queue's row for a delivery (tasks.repository.insert_tasks writes it): not a client's
    request, so no task.completed event is recorded when it ends."""
    return {
        "id": delivery_id,
        "resource": RESOURCE,
        "action": ACTION,
        "resource_id": hook.id,
        "payload": None,
        "requester": {"sub": hook.sub},
        "sub": hook.sub,
        "private_scope": False,
        "status": TaskStatus.ACCEPTED.value,
        "request_date": now,
        "worker_data": {},
        "base_url": "",
        "called_url": hook.url,
        "attempts": 0,
        "max_attempts": max_attempts,
        "run_at": now,
        "correlation_id": None,
    }


def fan_out(connection: Connection, keys: EventKeys, *, max_attempts: int) -> int:
    """Turn new events into deliveries for the subscriptions behind (see the module's docstring):
    the number of deliveries queued. Run in one write transaction."""
    head = events_repo.newest_position(connection)
    hooks = repository.lock_lagging(connection, head, FAN_OUT_SUBSCRIPTIONS)
    if not hooks:
        return 0
    accounts = accounts_repo.grants_of(connection, {h.sub for h in hooks})
    now = utcnow()
    deliveries: list[dict[str, Any]] = []
    tasks: list[dict[str, Any]] = []
    cursors: dict[str, int] = {}
    for hook in hooks:
        row = accounts.get(hook.sub)
        grants = Grants.from_row(row) if row is not None else None
        if grants is None or grants.revoked:
            # Events while the account is revoked are never sent, even if it is reinstated.
            cursors[hook.id] = head
            continue
        reader = Reader(hook.sub, grants.scopes)
        events, after = visible_events(
            connection, reader, hook.cursor, list(hook.types), FAN_OUT_EVENTS, keys
        )
        # Fewer than asked: every event up to the newest was looked at (positions are handed
        # out in commit order, so none below `head` can still commit).
        cursors[hook.id] = after if len(events) == FAN_OUT_EVENTS else max(after, head)
        for event in events:
            delivery_id = new_task_id()
            deliveries.append(
                {
                    "id": delivery_id,
                    "webhook_id": hook.id,
                    "event_id": event["id"],
                    "event_type": event["type"],
                    "body": orjson.dumps(event),
                    "scopes": " ".join(sorted(shaping_scopes(event["type"], grants.scopes))),
                    "status": DeliveryStatus.PENDING.value,
                    "attempts": 0,
                    "created": now,
                }
            )
            tasks.append(delivery_task(delivery_id, hook, now, max_attempts))
    repository.insert_deliveries(connection, deliveries)
    if tasks:
        tasks_repo.insert_tasks(connection, tasks, announce=False)
    repository.move_cursors(connection, cursors)
    return len(tasks)


@dataclass(frozen=True)
class Claimed:
    task: ClaimedTask
    delivery: Row[Any] | None  # None: the subscription (and its deliveries) was deleted
    grants: Grants | None


def claim(
    connection: Connection, *, worker_id: str, limit: int, lease_seconds: float
) -> list[Claimed]:
    """Lease due delivery tasks (the queue's own claim) with what sending them needs."""
    tasks = tasks_repo.claim(
        connection,
        worker_id=worker_id,
        limit=limit,
        lease_seconds=lease_seconds,
        resources=[RESOURCE],
    )
    if not tasks:
        return []
    rows = {r.id: r for r in repository.deliveries_to_send(connection, [t.id for t in tasks])}
    accounts = accounts_repo.grants_of(connection, {r.sub for r in rows.values()})
    claimed = []
    for task in tasks:
        row = rows.get(task.id)
        account = accounts.get(row.sub) if row is not None else None
        grants = Grants.from_row(account) if account is not None else None
        claimed.append(Claimed(task, row, grants))
    return claimed


@dataclass(frozen=True)
class Result:
    """How one claimed delivery ended this time, for `record`."""

    task: ClaimedTask
    webhook_id: str | None
    outcome: str  # "sent" (an HTTP attempt), "defer", or a DeliveryStatus for no attempt
    attempt: int = 0  # the delivery's attempt number (sent)
    time: dt.datetime | None = None
    status_code: int | None = None
    error: str | None = None
    duration_ms: float = 0.0
    message: str = ""

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


@dataclass(frozen=True)
class Policy:
    """What `record` needs from the settings."""

    worker_id: str
    retry_base_seconds: float
    disable_after: dt.timedelta
    defer_seconds: float


def record(connection: Connection, results: list[Result], policy: Policy) -> list[str]:
    """Record every result in one transaction: attempts logged, tasks finished, retried or given
    back, subscriptions' failure windows kept and the expired ones disabled (their ids)."""
    now = utcnow()
    worker = policy.worker_id
    attempts, statuses = [], []
    succeeding: set[str] = set()
    failing: set[str] = set()
    deferred = []
    stalled: set[str] = set()
    finishes: list[dict[str, Any]] = []

    def finish(
        task_id: str,
        *,
        status: TaskStatus,
        message: str,
        worker_data: dict[str, Any],
        last_error: str | None = None,
    ) -> None:
        finishes.append(
            {
                "task_id": task_id,
                "status": status,
                "path": None,
                "message": message,
                "worker_data": worker_data,
                "last_error": last_error,
            }
        )

    for r in results:
        task = r.task
        if r.outcome == "defer":
            deferred.append(task.id)
            if r.webhook_id is not None:
                stalled.add(r.webhook_id)
            continue
        if r.outcome != "sent":
            done = TaskStatus.COMPLETE if r.outcome == DeliveryStatus.SKIPPED else TaskStatus.ERROR
            finish(
                task.id,
                status=done,
                message=r.message,
                worker_data={"worker": worker},
            )
            if r.webhook_id is not None:
                statuses.append(
                    {"delivery": task.id, "new_status": r.outcome, "new_attempts": r.attempt}
                )
            continue
        assert r.webhook_id is not None and r.time is not None
        attempts.append(
            {
                "webhook_id": r.webhook_id,
                "delivery_id": task.id,
                "attempt": r.attempt,
                "time": r.time,
                "status_code": r.status_code,
                "error": r.error,
                "duration_ms": r.duration_ms,
            }
        )
        worker_data = {"worker": worker, "attempts": r.attempt}
        if r.delivered:
            succeeding.add(r.webhook_id)
            status = DeliveryStatus.DELIVERED
            finish(
                task.id,
                status=TaskStatus.COMPLETE,
                message=f"Delivered: {r.status_code}.",
                worker_data=worker_data,
            )
        else:
            failing.add(r.webhook_id)
            why = r.error or f"answered {r.status_code}"
            if task.attempts >= task.max_attempts:
                status = DeliveryStatus.FAILED
                finish(
                    task.id,
                    status=TaskStatus.ERROR,
                    message=f"Not delivered after {task.attempts} attempts: {why}.",
                    worker_data=worker_data,
                    last_error=why,
                )
            else:
                status = DeliveryStatus.PENDING
                delay = tasks_repo.backoff_seconds(
                    task.attempts, policy.retry_base_seconds, RETRY_CAP_SECONDS
                )
                tasks_repo.schedule_retry(
                    connection, task.id, worker_id=worker, delay=delay, error=why
                )
        statuses.append({"delivery": task.id, "new_status": status, "new_attempts": r.attempt})
    # One statement for every finished delivery on PostgreSQL (it was one each: a round trip per
    # delivery, the most of record()'s time at a few hundred deliveries a second).
    tasks_repo.finish_many(connection, finishes, worker_id=worker)
    repository.insert_attempts(connection, attempts)
    repository.set_delivery_status(connection, statuses)
    tasks_repo.release(connection, deferred, worker_id=worker, run_after=policy.defer_seconds)
    # And every other queued delivery of a stalled subscription: the next claims take others'
    # instead of taking (and giving back) these, a batch at a time.
    tasks_repo.postpone(connection, RESOURCE, stalled, run_after=policy.defer_seconds)
    repository.mark_succeeding(connection, succeeding - failing)
    return repository.mark_failing(
        connection, failing - succeeding, now=now, disable_before=now - policy.disable_after
    )


def signature(key: bytes, delivery_id: str, timestamp: str, body: bytes) -> str:
    """Standard Webhooks' `webhook-signature`: v1,<base64 HMAC-SHA256 of "id.timestamp.body">
    (what standardwebhooks' Webhook.sign computes, without decoding and re-encoding the body and
    the secret for every delivery; the tests verify it with that package's verifier)."""
    mac = hmac.new(key, f"{delivery_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def _describe(exc: BaseException) -> str:
    """A failed attempt's error for the log: what went wrong, never the URL's query or a header."""
    if isinstance(exc, ConnectError):
        return "could not connect"
    if isinstance(exc, ProtocolError):
        return "the receiver broke the HTTP exchange"
    return f"request failed ({type(exc).__name__})"


@dataclass
class Lane:
    """One subscription's deliveries in this process: those being sent (at most
    `webhook_concurrency_per_subscription`, with when each started) and those waiting for one of
    them to end, and when one last ended."""

    sending: dict[str, float] = field(default_factory=dict)
    waiting: deque[tuple[ClaimedTask, Row[Any]]] = field(default_factory=deque)
    last_done: float = 0.0

    def stalled(self, now: float) -> bool:
        """Its receiver has made no progress for STALLED_AFTER_SECONDS: attempts are running and
        none has ended since. (A receiver that answers at once ends one every few milliseconds,
        even on a busy machine: "an attempt ran that long" alone mistook a CPU-bound worker's
        slow turns for a stalled receiver, and halved the bench's throughput.)"""
        if not self.sending:
            return False
        progress = max(self.last_done, min(self.sending.values()))
        return now - progress > STALLED_AFTER_SECONDS


class Deliverer:
    """The deliverer of one worker process (see the module's docstring); `Worker` runs it."""

    def __init__(self, runtime: Runtime, worker_id: str) -> None:
        s = runtime.settings
        self.runtime = runtime
        self.worker_id = f"{worker_id}:webhooks"
        self.capacity = s.webhook_concurrency
        self.lane_capacity = s.webhook_concurrency_per_subscription
        self.timeout = s.webhook_timeout_seconds
        # A lease outlives the slowest attempt (DNS, then the timeout); a heartbeat extends it.
        self.lease_seconds = max(float(s.task_lease_seconds), 2 * self.timeout + 10)
        self.policy = Policy(
            worker_id=self.worker_id,
            retry_base_seconds=s.webhook_retry_base_seconds,
            disable_after=dt.timedelta(hours=s.webhook_disable_after_hours),
            defer_seconds=DEFER_SECONDS,
        )
        # Claimed and not yet ended: sending, or waiting for a slot of their subscription.
        self._held: set[str] = set()
        self._sending: dict[str, asyncio.Task[None]] = {}
        self._lanes: dict[str, Lane] = {}
        self._results: list[Result] = []
        self._recorded = asyncio.Event()
        self._recorder: asyncio.Task[None] | None = None
        self._runner: asyncio.Task[None] | None = None
        self._background: list[asyncio.Task[None]] = []
        self._wake_event: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._http: Sender | None = None
        self._keys: EventKeys | None = None
        self._box: SecretBox | None = None
        # Each subscription's signing key, by (id, stored secret): opened and decoded once.
        self._signing_keys: dict[tuple[str, str], bytes] = {}
        self._stopping = False
        self._events_due = True
        self._claim_due = True
        self._subscribed = False  # any active subscription, as of the last look
        self._claimed_at = 0.0
        self.delivered = 0  # attempts answered 2xx by this process (the bench reads it)

    # --- life cycle -------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake_event = asyncio.Event()
        # No redirects followed, no proxy from the environment, the checked address connected
        # to (sender.py); keep-alive connections per receiver, up to a lane's worth idle.
        self._http = Sender(user_agent=USER_AGENT, idle_per_target=self.lane_capacity)
        self._runner = asyncio.create_task(self._run(), name="webhook deliverer")
        self._background = [
            asyncio.create_task(self._heartbeat_loop(), name="webhook heartbeat"),
            asyncio.create_task(self._events_loop(), name="webhook events"),
        ]

    async def stop(self) -> None:
        if self._runner is None:
            return
        self._stopping = True
        self.wake()
        with contextlib.suppress(asyncio.CancelledError):
            await self._runner
        for lane in self._lanes.values():
            lane.waiting.clear()  # released below, unsent
        sending = list(self._sending.values())
        if sending:
            _done, pending = await asyncio.wait(sending, timeout=self.timeout + 1)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await self._flush()
        unfinished = list(self._held)
        if unfinished:
            with contextlib.suppress(Exception):  # else the leases expire by themselves
                await self.runtime.db.write(
                    tasks_repo.release, unfinished, worker_id=self.worker_id
                )
        for bg in self._background:
            bg.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        if self._http is not None:
            await self._http.aclose()
        self._runner = None

    def wake(self) -> None:
        """Callable from any thread: claim due deliveries now (new ones were queued)."""
        self._claim_due = True
        self._set()

    def events_recorded(self) -> None:
        """Callable from any thread: events may have been recorded; fan them out now."""
        self._events_due = True
        self._set()

    def _set(self) -> None:
        if self._wake_event is not None and self._loop is not None:
            set_from_any_thread(self._loop, self._wake_event)

    # --- the loop ---------------------------------------------------------------------------

    async def _run(self) -> None:
        """Fan out when events may have been recorded, claim when deliveries may be due: woken
        for either, and both every `worker_poll_seconds` (retries whose backoff ended, events
        recorded by another process)."""
        assert self._wake_event is not None
        db = self.runtime.db
        poll = self.runtime.settings.worker_poll_seconds
        failures = 0
        while not self._stopping:
            self._wake_event.clear()
            events_due, self._events_due = self._events_due, False
            claim_due, self._claim_due = self._claim_due, False
            self._give_back_stalled()
            free = self.capacity - len(self._held)
            claimed: list[Claimed] = []
            lagging = False
            try:
                if events_due:
                    self._subscribed, lagging = await db.read(repository.subscriptions_state)
                if events_due and lagging:
                    if self._keys is None:
                        self._keys = await event_keys(self.runtime)
                    if await db.write(
                        fan_out,
                        self._keys,
                        max_attempts=self.runtime.settings.webhook_max_attempts,
                    ):
                        self._events_due = True  # a subscription may still be behind
                    claim_due = True
                if claim_due and free > 0:
                    self._claimed_at = time.monotonic()
                    claimed = await db.write(
                        claim,
                        worker_id=self.worker_id,
                        limit=free,
                        lease_seconds=self.lease_seconds,
                    )
                failures = 0
            except Exception:
                failures += 1
                log.exception("webhook fan-out or claim failed")
                self._events_due = self._claim_due = True
                with contextlib.suppress(TimeoutError):  # stop() wakes it
                    await asyncio.wait_for(self._wake_event.wait(), min(30.0, poll * 2**failures))
                continue
            if claimed and self._box is None:
                if self.runtime.webhook_secret is None:
                    self.runtime.webhook_secret = await shared_secret(self.runtime.db, SECRET_NAME)
                self._box = SecretBox(self.runtime.webhook_secret)
            for item in claimed:
                self._dispatch(item)
            if free > 0 and len(claimed) == free:
                self._claim_due = True  # probably more due: claim again at once
                continue
            try:
                await asyncio.wait_for(self._wake_event.wait(), poll)
            except TimeoutError:
                # Retries whose backoff ended, events from another process. Without any active
                # subscription there is little to claim (leftovers of deleted or disabled ones,
                # which end at once): a look every IDLE_CLAIM_SECONDS, not a write every poll.
                self._events_due = True
                idle = time.monotonic() - self._claimed_at > IDLE_CLAIM_SECONDS
                self._claim_due = self._subscribed or idle
            # Deliveries finishing and events arriving come in bursts: gather them.
            await asyncio.sleep(0.005)

    def _dispatch(self, item: Claimed) -> None:
        task, row = item.task, item.delivery
        if row is None:
            self._result(
                Result(task, None, DeliveryStatus.FAILED, message="The subscription was deleted.")
            )
            return
        if row.webhook_status != SubscriptionStatus.ACTIVE:
            self._result(
                Result(
                    task,
                    row.webhook_id,
                    DeliveryStatus.FAILED,
                    attempt=row.attempts,
                    message="The subscription is disabled; not sent.",
                )
            )
            return
        grants = item.grants
        shaping = frozenset(row.scopes.split())
        if grants is None or grants.revoked or not shaping <= grants.scopes:
            # A grant that shaped (or allowed) this event is gone: the account may not see it.
            self._result(
                Result(
                    task,
                    row.webhook_id,
                    DeliveryStatus.SKIPPED,
                    attempt=row.attempts,
                    message="The account may no longer see this event; not sent.",
                )
            )
            return
        self._held.add(task.id)
        lane = self._lanes.setdefault(row.webhook_id, Lane())
        if len(lane.sending) < self.lane_capacity:
            self._start(lane, task, row)
        elif lane.stalled(time.monotonic()):
            self._give_back(task, row.webhook_id)
        else:
            lane.waiting.append((task, row))

    def _start(self, lane: Lane, task: ClaimedTask, row: Row[Any]) -> None:
        lane.sending[task.id] = time.monotonic()
        sender = asyncio.create_task(self._send(task, row), name=f"webhook {task.id}")
        self._sending[task.id] = sender

        def _done(_t: asyncio.Task[None]) -> None:
            self._sending.pop(task.id, None)
            self._held.discard(task.id)
            lane.sending.pop(task.id, None)
            lane.last_done = time.monotonic()
            if lane.waiting and not self._stopping:
                self._start(lane, *lane.waiting.popleft())
            elif not lane.sending and not lane.waiting:
                self._lanes.pop(row.webhook_id, None)

        sender.add_done_callback(_done)

    def _give_back(self, task: ClaimedTask, webhook_id: str) -> None:
        """Not now: the subscription's receiver is stalled. Due again in a moment, unattempted."""
        self._held.discard(task.id)
        self._result(Result(task, webhook_id, "defer"))

    def _give_back_stalled(self) -> None:
        """Deliveries waiting behind a stalled receiver go back to the queue, so that they hold
        none of the process's slots while it hangs (they would wait a timeout per attempt)."""
        now = time.monotonic()
        for webhook_id, lane in list(self._lanes.items()):
            if lane.waiting and lane.stalled(now):
                while lane.waiting:
                    self._give_back(lane.waiting.popleft()[0], webhook_id)
                if not lane.sending:
                    del self._lanes[webhook_id]

    async def _send(self, task: ClaimedTask, row: Row[Any]) -> None:
        """One attempt: resolve and check the host, POST the signed event to the address checked."""
        assert self._http is not None
        attempt = int(row.attempts) + 1
        at = utcnow()
        started = time.perf_counter()
        status_code: int | None = None
        error: str | None = None
        body: bytes = row.body
        answer = Answer()
        try:
            target = await resolve(
                row.url, allow_private=self.runtime.settings.webhook_allow_private
            )
            timestamp = str(int(at.timestamp()))
            headers = {
                "Content-Type": "application/json",
                "webhook-id": row.id,
                "webhook-timestamp": timestamp,
                "webhook-signature": signature(self._signing_key(row), row.id, timestamp, body),
            }
            async with asyncio.timeout(self.timeout):
                status_code = await self._http.post(target, body, headers, ANSWER_BYTES, answer)
        except TargetRefused as exc:
            error = str(exc)[:255]
        except TimeoutError:
            error = f"timed out after {self.timeout:g} s"
        except (ConnectError, ProtocolError, OSError) as exc:
            error = _describe(exc)
        status_code = answer.status
        duration = (time.perf_counter() - started) * 1000
        if error is not None and status_code is not None:
            error = None  # the answer's head arrived: its status is the outcome
        if status_code is not None and 200 <= status_code < 300:
            self.delivered += 1
        self._result(
            Result(
                task,
                row.webhook_id,
                "sent",
                attempt=attempt,
                time=at,
                status_code=status_code,
                error=error,
                duration_ms=duration,
            )
        )

    def _signing_key(self, row: Row[Any]) -> bytes:
        key = self._signing_keys.get((row.webhook_id, row.secret))
        if key is None:
            assert self._box is not None
            plain = self._box.open(row.webhook_id, row.secret)
            key = base64.b64decode(plain.removeprefix("whsec_"))
            if len(self._signing_keys) > 10_000:
                self._signing_keys.clear()
            self._signing_keys[row.webhook_id, row.secret] = key
        return key

    # --- recording --------------------------------------------------------------------------

    def _result(self, result: Result) -> None:
        self._results.append(result)
        if self._recorder is None or self._recorder.done():
            self._recorder = asyncio.create_task(self._flush(), name="webhook recorder")

    async def _flush(self) -> None:
        """Write every result gathered so far, one transaction a round (group commit)."""
        while self._results:
            batch, self._results = self._results, []
            try:
                disabled = await self.runtime.db.write(record, batch, self.policy)
            except Exception:
                # Not recorded: the leases expire and the deliveries are sent again (same id).
                log.exception("recording %d webhook attempts failed", len(batch))
                continue
            for webhook_id in disabled:
                log.warning(
                    "webhook %s disabled: every attempt failed for %g hours",
                    webhook_id,
                    self.policy.disable_after.total_seconds() / 3600,
                    extra={"webhook_id": webhook_id},
                )
            self.wake()  # slots are free

    # --- background -------------------------------------------------------------------------

    async def _events_loop(self) -> None:
        """Fan out as soon as events are recorded, in this process or any other: the feed's own
        wake-ups (db/notices.py: in-process, LISTEN on PostgreSQL, SQLite's WAL-index header),
        listened to only while some subscription is active, so an instance without webhooks
        pays nothing for them."""
        poll = self.runtime.settings.worker_poll_seconds
        while True:
            if not self._subscribed:
                await asyncio.sleep(poll)
                continue
            with self.runtime.notices.watch_events() as recorded:
                while self._subscribed:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(recorded.wait(), poll)
                    if recorded.is_set():
                        recorded.clear()
                        self.events_recorded()

    async def _heartbeat_loop(self) -> None:
        interval = max(0.5, self.lease_seconds / 3)
        while True:
            await asyncio.sleep(interval)
            ids = list(self._held)
            if ids:
                try:
                    await self.runtime.db.write(
                        tasks_repo.heartbeat,
                        ids,
                        worker_id=self.worker_id,
                        lease_seconds=self.lease_seconds,
                    )
                except Exception:
                    log.exception("webhook heartbeat failed")
