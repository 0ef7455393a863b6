"""The peers' side of bench/peers_bench.py: the same task on dramatiq + Redis, Celery + Redis and
procrastinate (PostgreSQL), queued directly and run by each one's own worker.

The task is what a registrar PATCH task does at its core, without registrar's extras (the lease,
newest-request-wins, idempotency, the change record): in ONE PostgreSQL transaction, update one
enrollment's course_submit_date and insert one audit row. Each worker thread keeps one psycopg
connection (autocommit off: one transaction per task, committed at its end).

    python bench/peers_worker.py enqueue PEER N   # queue N tasks (ids on stdin, one a line)
    python bench/peers_worker.py work PEER        # run a worker until SIGTERM ("started" first)

Environment: PEERS_DATABASE_URL (the bench database, registrar-migrated and seeded),
PEERS_REDIS_URL (redis://127.0.0.1:6379/11 by default; the bench flushes that db only).
Needs the `peers` extra: pip install -e '.[peers]'.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import signal
import sys
import threading
import uuid
from typing import Any

DB = os.environ.get("PEERS_DATABASE_URL", "")
REDIS = os.environ.get("PEERS_REDIS_URL", "redis://127.0.0.1:6379/11")
THREADS = int(os.environ.get("PEERS_THREADS", "8"))

_local = threading.local()

UPDATE = "UPDATE enrollments SET course_submit_date = %s, course_opt_out_date = NULL WHERE id = %s"
AUDIT = (
    "INSERT INTO enrollment_audit (enrollment_id, task_id, actor_sub, worker_id, changed_at,"
    " started_at, before, after, note, requested_at)"
    " VALUES (%s, %s, 'bench', %s, %s, %s, 'null', %s, 'PATCH course_assessment', %s)"
)


def apply(enrollment_id: str, submit: str, requested_at: str) -> None:
    """The task: one enrollment updated and one audit row, in one transaction."""
    import psycopg

    conn = getattr(_local, "conn", None)
    if conn is None or conn.closed:
        conn = _local.conn = psycopg.connect(DB)
    now = dt.datetime.now(dt.UTC)
    after = json.dumps({"course_assessment": {"submit_date": submit, "opt_out_date": None}})
    with conn.cursor() as cur:
        cur.execute(UPDATE, (submit, enrollment_id))
        worker = f"{os.getpid()}:{threading.get_ident()}"
        cur.execute(
            AUDIT,
            (enrollment_id, uuid.uuid4().hex[:24], worker, now, now, after, requested_at),
        )
    conn.commit()


def args_of(enrollment_id: str, k: int) -> tuple[str, str, str]:
    submit = f"2020-03-05T17:{k // 60 % 60:02d}:{k % 60:02d}Z"
    return enrollment_id, submit, dt.datetime.now(dt.UTC).isoformat()


# --- dramatiq ---------------------------------------------------------------------------------


def _dramatiq() -> tuple[Any, Any]:
    import dramatiq
    from dramatiq.brokers.redis import RedisBroker

    broker = RedisBroker(url=REDIS)
    dramatiq.set_broker(broker)
    return broker, dramatiq.actor(apply, actor_name="apply", max_retries=3)


def dramatiq_enqueue(ids: list[str]) -> None:
    _broker, actor = _dramatiq()
    for k, eid in enumerate(ids):
        actor.send(*args_of(eid, k))


def dramatiq_work(stop: threading.Event) -> None:
    import dramatiq

    broker, _actor = _dramatiq()
    worker = dramatiq.Worker(broker, worker_threads=THREADS)
    worker.start()
    print("started", flush=True)
    stop.wait()
    worker.stop()


# --- Celery -----------------------------------------------------------------------------------


def _celery() -> tuple[Any, Any]:
    from celery import Celery

    app = Celery("peers", broker=REDIS)
    app.conf.update(
        task_acks_late=True,  # acknowledged once it ran: the nearest to "nothing accepted lost"
        task_ignore_result=True,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
    )
    return app, app.task(name="apply")(apply)


def celery_enqueue(ids: list[str]) -> None:
    _app, task = _celery()
    for k, eid in enumerate(ids):
        task.delay(*args_of(eid, k))


def celery_work(_stop: threading.Event) -> None:
    from celery.signals import worker_ready

    app, _task = _celery()
    worker_ready.connect(lambda **_kw: print("started", flush=True), weak=False)
    # Prefork, one child per core (Celery's default), as deployed; SIGTERM is a warm shutdown.
    app.worker_main(
        [
            "worker",
            "--pool=prefork",
            f"--concurrency={os.cpu_count()}",
            "--loglevel=WARNING",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ]
    )


# --- procrastinate ----------------------------------------------------------------------------


def _procrastinate() -> tuple[Any, Any]:
    import procrastinate

    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=DB))
    return app, app.task(name="apply", pass_context=False)(apply)


def procrastinate_enqueue(ids: list[str]) -> None:
    app, task = _procrastinate()
    with app.open():
        app.schema_manager.apply_schema()
        task.batch_defer(
            *(
                {"enrollment_id": a, "submit": b, "requested_at": c}
                for a, b, c in (args_of(eid, k) for k, eid in enumerate(ids))
            )
        )


def procrastinate_work(_stop: threading.Event) -> None:
    app, _task = _procrastinate()

    async def main() -> None:
        async with app.open_async():
            print("started", flush=True)
            # Sync tasks run in threads: THREADS of them, as dramatiq's.
            await app.run_worker_async(concurrency=THREADS, install_signal_handlers=True)

    asyncio.run(main())


def main() -> None:
    verb, peer = sys.argv[1], sys.argv[2]
    if verb == "enqueue":
        ids = [line.strip() for line in sys.stdin if line.strip()]
        globals()[f"{peer}_enqueue"](ids)
        return
    stop = threading.Event()
    if peer == "dramatiq":
        signal.signal(signal.SIGTERM, lambda *_a: stop.set())
    globals()[f"{peer}_work"](stop)


if __name__ == "__main__":
    main()
