"""Webhook subscriptions through the client against a live `registrar serve`, sync and async:
create (an Idempotency-Key: the same subscription when repeated), list, get, update, a real
delivery to a local receiver checked with `registrar_client.webhooks.verify`, the delivery log,
sending a delivery again, delete."""

from __future__ import annotations

import asyncio
import secrets

import pytest
from registrar_client import NotFound, Webhook, WebhookVerificationError, webhooks

from tests.support.client import (
    ALL_SCOPES,
    LiveServer,
    close,
    collect,
    make_client,
    resolve,
    student,
)
from tests.support.receivers import receiver


async def test_subscribe_receive_verify_log_resend_delete(flavor: str, feed: LiveServer) -> None:
    c = make_client(flavor, feed.base_url, feed.key(f"hooks-{flavor}", ALL_SCOPES))
    eid = student("201809", "f004stu", "MATH.003.01")
    when = f"2018-1{1 if flavor == 'sync' else 2}-01T09:00:00Z"
    path = f"/hook-{flavor}"
    with receiver() as rx:
        try:
            key = f"hook-{secrets.token_hex(6)}"
            created = await resolve(
                c.webhooks.create(rx.url(path), ["petition.created"], idempotency_key=key)
            )
            again = await resolve(
                c.webhooks.create(rx.url(path), ["petition.created"], idempotency_key=key)
            )
            assert isinstance(created, Webhook)
            assert created.secret.startswith("whsec_")
            assert (again.id, again.secret) == (created.id, created.secret)
            assert created.status == "active"
            listed = await collect(c.webhooks.list())
            assert [h.id for h in listed] == [created.id]  # the repeat made no second one
            fetched = await resolve(c.webhooks.get(created.id))
            assert "secret" not in fetched
            assert fetched.url == rx.url(path)
            changed = await resolve(c.webhooks.update(created.id, types=["enrollment.updated"]))
            assert changed.types == ["enrollment.updated"]

            task = await resolve(c.enrollments.set_course_assessment(eid, submit_date=when))
            await resolve(task.wait(timeout=30))
            (first,) = await asyncio.to_thread(rx.wait_for, path, 1)
            event = webhooks.verify(created.secret, first.headers, first.body)
            assert event.type == "enrollment.updated"
            assert event.subject == eid
            assert event.data.course_assessment.submit_date == when
            assert event.id != first.headers["webhook-id"]  # that is the delivery's id
            with pytest.raises(WebhookVerificationError):
                webhooks.verify(created.secret, first.headers, first.body.replace(b"20", b"21"))

            # The attempt is logged once it ended (after the receiver answered): look until it is.
            for _ in range(100):
                attempts = await collect(c.webhooks.deliveries(created.id))
                if attempts:
                    break
                await asyncio.sleep(0.1)
            (attempt,) = attempts
            assert attempt.id == first.headers["webhook-id"]
            assert attempt.event == event.id
            assert attempt.attempt == 1
            assert attempt.status_code == 200 and attempt.error is None
            assert attempt.duration_ms >= 0

            queued = await resolve(c.webhooks.retry_delivery(created.id, attempt.id))
            assert queued.id == attempt.id and queued.status == "pending"
            _first, second = await asyncio.to_thread(rx.wait_for, path, 2)
            assert second.headers["webhook-id"] == first.headers["webhook-id"]
            assert webhooks.verify(created.secret, second.headers, second.body).id == event.id

            assert await resolve(c.webhooks.delete(created.id)) is None
            with pytest.raises(NotFound):
                await resolve(c.webhooks.get(created.id))
            assert await collect(c.webhooks.list()) == []
        finally:
            await close(c)
