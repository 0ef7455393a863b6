"""Enrollment queries. Every read applies the FERPA rule (people/ferpa.py) through `visible_to`."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from typing import Any, cast

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Connection,
    Row,
    Select,
    String,
    Table,
    and_,
    any_,
    bindparam,
    func,
    insert,
    select,
    text,
    true,
    update,
)

from registrar.auth.client import Client
from registrar.db.prepared import PreparedRead
from registrar.enrollments.filters import FIELDS, confirmed_at
from registrar.enrollments.models import Enrollment, EnrollmentAudit, Section, Term
from registrar.paging.pages import CollectionSpec
from registrar.people import ferpa


def visible_to(client: Client) -> list[ColumnElement[bool]]:
    """Conditions that hide enrollments of confidential people (the FERPA rule, people/ferpa.py)."""
    return ferpa.visible_to(client, Enrollment.netid)


def hidden_from(client: Client) -> ColumnElement[bool] | None:
    return ferpa.hidden_from(client, Enrollment.netid)


# Plain columns, not ORM objects: a page builds a hundred rows, and entity loading would cost more
# than the query. The names are unique across the three tables, so rows read as `row.netid`.
_ROW_COLUMNS = (
    Enrollment.pk,
    Enrollment.id,
    Enrollment.netid,
    Enrollment.role,
    Enrollment.school_id,
    Enrollment.section_id,
    Enrollment.term_id,
    Enrollment.is_active,
    Enrollment.is_in_session,
    Enrollment.final_grade,
    Enrollment.credit_hours_earned,
    Enrollment.course_submit_date,
    Enrollment.course_opt_out_date,
    Enrollment.cache_date,
    # A complete load confirms every enrollment without writing them: a reader's cache_date is the
    # later of the row's own and this (`cache_date` below). An uncorrelated subquery, run once
    # per statement: one index probe (ix_sis_loads_complete_loaded_at).
    confirmed_at().label("confirmed_at"),
    Section.lms_section_id,
    Section.sis_section_id,
    Term.lms_term_id,
    Term.sis_ptrm_code,
    Term.sis_term_code,
)


def cache_date(row: Row[Any]) -> Any:
    """When the SIS last confirmed this enrollment (a row of `enrollment_rows`)."""
    return later(row.cache_date, row.confirmed_at)


def later(cache_date: Any, confirmed_at: Any) -> Any:
    """A row's cache_date as a reader sees it: the later of its column and the newest complete
    load's time (`confirmed_at`, None before any)."""
    return cache_date if confirmed_at is None or cache_date > confirmed_at else confirmed_at


# The names, in order (enrollments/service.py unpacks rows by position).
ROW_FIELDS = tuple(column.key for column in _ROW_COLUMNS)

# Built once: a page's statements are built around it (paging/pages.py keeps those it builds
# once per representation).
_ENROLLMENT_ROWS = (
    select(*_ROW_COLUMNS)
    .join(Section, Section.id == Enrollment.section_id)
    .join(Term, Term.id == Enrollment.term_id)
)


def enrollment_rows() -> Select[Any]:
    """An enrollment with its section's and term's attributes: the representation, one query."""
    return _ENROLLMENT_ROWS


def visible_with(sees_private: bool) -> list[ColumnElement[bool]]:
    """`visible_to` for statements built once, ahead of any caller: by the private scope alone."""
    return ferpa.visible_with(sees_private, Enrollment.netid)


def _by_id(sees_private: bool) -> Select[Any]:
    return enrollment_rows().where(
        Enrollment.id == bindparam("enrollment_id"), *visible_with(sees_private)
    )


# Built once: the hottest query of the API skips statement construction and cache-key work.
_BY_ID = {True: _by_id(True), False: _by_id(False)}


def _by_id_plan(enrollment_id: str, sees_private: bool) -> tuple[Select[Any], dict[str, Any]]:
    return _BY_ID[sees_private], {"enrollment_id": enrollment_id}


# The enrollment with this id if it exists and the caller may see it; else None (→ 404). A
# prepared read (db/prepared.py): one round trip on PostgreSQL.
visible_enrollment = PreparedRead(_by_id_plan, first=True)


def visible_enrollments(
    connection: Connection, ids: list[str], sees_private: bool
) -> dict[str, Row[Any]]:
    """The enrollments with these ids that the caller may see, by id: one query (a feed page)."""
    query = enrollment_rows().where(
        Enrollment.id.in_(bindparam("ids", expanding=True)), *visible_with(sees_private)
    )
    return {row.id: row for row in connection.execute(query, {"ids": ids})}


def collection_spec() -> CollectionSpec:
    return CollectionSpec(
        resource="enrollments",
        key=Enrollment.pk,
        table=Enrollment,
        fields=FIELDS,
        visibility=visible_to,
        hidden=hidden_from,
    )


def any_enrollment(connection: Connection) -> bool:
    """Whether any enrollment exists (`registrar demo --if-empty`)."""
    return connection.scalar(select(Enrollment.pk).limit(1)) is not None


# The task handler's statements (jobs.apply_course_assessments), built once: they run for every
# batch of tasks, the worker's hot path, and building a statement (and its cache key) costs more
# than running it. Core on the Tables, not ORM objects. Each serves a whole batch: one statement
# for a hundred enrollments, not one each. Keyed by dialect: PostgreSQL takes a list as one array
# parameter (`= ANY(:ids)`, so the statement's text, and its prepared statement, is the same for
# any batch size), SQLite an expanding IN.
_ENROLLMENTS = cast(Table, Enrollment.__table__)
_AUDITS = cast(Table, EnrollmentAudit.__table__)


def _among(column: ColumnElement[Any], name: str, postgresql: bool) -> ColumnElement[bool]:
    if postgresql:
        return column == any_(bindparam(name, type_=ARRAY(String)))
    return column.in_(bindparam(name, expanding=True))


def _current(postgresql: bool) -> Select[Any]:
    """Per enrollment: its assessment, and whether everyone may see it (the FERPA rule: a task
    without the private scope may not touch the others)."""
    query = (
        select(
            Enrollment.pk,
            Enrollment.id,
            Enrollment.course_submit_date,
            Enrollment.course_opt_out_date,
            Enrollment.netid,
            and_(true(), *visible_with(False)).label("public"),
        )
        .where(_among(_ENROLLMENTS.c.id, "ids", postgresql))
        .order_by(Enrollment.id)
    )
    # PostgreSQL: row locks, taken in id order (so two batches cannot deadlock), so that tasks on
    # one enrollment record true before/after values in request order. (SQLite's write
    # transaction already excludes every other writer.)
    return query.with_for_update(of=Enrollment) if postgresql else query


def _newest(postgresql: bool) -> Select[Any]:
    """Per enrollment: when the newest request applied to it was made, an index probe on
    (enrollment_id, requested_at) however long its history. A statement of its own, run once the
    rows are locked: a subquery in the locking statement would read the audit as it was before
    the lock was granted, blind to what the transaction that held it had just applied."""
    newest = (
        select(func.max(_AUDITS.c.requested_at))
        .where(_AUDITS.c.enrollment_id == Enrollment.id)
        .scalar_subquery()
    )
    return select(Enrollment.id, newest).where(_among(_ENROLLMENTS.c.id, "ids", postgresql))


_CURRENT = {postgresql: _current(postgresql) for postgresql in (False, True)}
_NEWEST = {postgresql: _newest(postgresql) for postgresql in (False, True)}
# Which of these tasks were applied already (the audit row is unique per task).
_APPLIED = {
    postgresql: select(_AUDITS.c.task_id).where(_among(_AUDITS.c.task_id, "task_ids", postgresql))
    for postgresql in (False, True)
}
_WRITE = (
    update(_ENROLLMENTS)
    .where(_ENROLLMENTS.c.pk == bindparam("enrollment_pk"))
    .values(
        course_submit_date=bindparam("submit"),
        course_opt_out_date=bindparam("opt_out"),
        api_changed_at=bindparam("changed_at"),
    )
)
_AUDIT = insert(_AUDITS)

# PostgreSQL: a batch's writes in one statement each, the values side by side in arrays (an
# executemany is one round trip but still one execution, and its overhead, per row). Measured
# (bench/task_bench.py --postgres --statements, 2026-12-02, 2 cores, PostgreSQL 15, 5,000 tasks,
# one worker): the executemany UPDATE 0.063 ms/task and INSERT 0.013 ms/task of executor time.
_WRITE_MANY = text(
    """
    UPDATE enrollments SET course_submit_date = w.submit, course_opt_out_date = w.opt_out,
        api_changed_at = w.changed_at
    FROM unnest(CAST(:pks AS integer[]), CAST(:submits AS timestamptz[]),
                CAST(:opt_outs AS timestamptz[]), CAST(:changed_ats AS timestamptz[]))
        AS w(pk, submit, opt_out, changed_at)
    WHERE enrollments.pk = w.pk
    """
)
_AUDIT_MANY = text(
    """
    INSERT INTO enrollment_audit (enrollment_id, task_id, actor_sub, worker_id, changed_at,
        started_at, before, after, note, requested_at)
    SELECT a.enrollment_id, a.task_id, a.actor_sub, a.worker_id, a.changed_at, a.started_at,
        CAST(a.before AS json), CAST(a.after AS json), a.note, a.requested_at
    FROM unnest(CAST(:enrollment_ids AS text[]), CAST(:task_ids AS text[]),
                CAST(:actor_subs AS text[]), CAST(:worker_ids AS text[]),
                CAST(:changed_ats AS timestamptz[]), CAST(:started_ats AS timestamptz[]),
                CAST(:befores AS text[]), CAST(:afters AS text[]), CAST(:notes AS text[]),
                CAST(:requested_ats AS timestamptz[]))
        WITH ORDINALITY AS a(enrollment_id, task_id, actor_sub, worker_id, changed_at,
            started_at, before, after, note, requested_at, n)
    ORDER BY a.n
    """
)


def current_assessments(
    connection: Connection, enrollment_ids: Iterable[str]
) -> dict[str, Row[Any]]:
    """Per enrollment id that exists: (pk, id, course_submit_date, course_opt_out_date, netid,
    public), locked on PostgreSQL; one statement."""
    postgresql = connection.dialect.name == "postgresql"
    rows = connection.execute(_CURRENT[postgresql], {"ids": sorted(set(enrollment_ids))})
    return {row.id: row for row in rows}


def newest_requests(connection: Connection, enrollment_ids: Iterable[str]) -> dict[str, Any]:
    """Per enrollment id: when the newest request applied to it was made (None: never); one
    statement, to run once `current_assessments` holds the rows."""
    postgresql = connection.dialect.name == "postgresql"
    rows = connection.execute(_NEWEST[postgresql], {"ids": list(enrollment_ids)})
    return {enrollment_id: newest for enrollment_id, newest in rows}


def applied_tasks(connection: Connection, task_ids: Iterable[str]) -> set[str]:
    """Which of these tasks' changes are applied already: one statement."""
    postgresql = connection.dialect.name == "postgresql"
    return set(connection.scalars(_APPLIED[postgresql], {"task_ids": list(task_ids)}))


def write_assessments(connection: Connection, writes: list[dict[str, Any]]) -> None:
    """Set course_assessment on many enrollments ({enrollment_pk, submit, opt_out, changed_at}
    each), and when the API wrote them (a load older than that keeps them): one statement on
    PostgreSQL (`unnest` arrays), an executemany on SQLite."""
    if not writes:
        return
    if connection.dialect.name == "postgresql":
        connection.execute(
            _WRITE_MANY,
            {
                "pks": [w["enrollment_pk"] for w in writes],
                "submits": [_utc(w["submit"]) for w in writes],
                "opt_outs": [_utc(w["opt_out"]) for w in writes],
                "changed_ats": [_utc(w["changed_at"]) for w in writes],
            },
        )
        return
    connection.execute(_WRITE, writes)


# API writes and SIS loads of enrollments exclude each other on PostgreSQL (SQLite has one writer):
# a batch of tasks takes this lock shared before it locks the rows it writes, a load takes it
# exclusive for its applying phase, so a load decides what to keep from API writes that all
# committed before it, and a batch applied while a load runs waits and is applied after it (no
# lost update either way). Any constant unique among the service's advisory locks (events use
# 7_402_731_116).
API_WRITE_LOCK = 7_402_731_117
_SHARE_LOCK = text("SELECT pg_advisory_xact_lock_shared(:k)").bindparams(k=API_WRITE_LOCK)
_EXCLUSIVE_LOCK = text("SELECT pg_advisory_xact_lock(:k)").bindparams(k=API_WRITE_LOCK)


def share_write_lock(connection: Connection) -> None:
    """A batch's side of the lock (re-entrant: an isolated rerun in the same transaction costs
    one round trip)."""
    if connection.dialect.name == "postgresql":
        connection.execute(_SHARE_LOCK)


def hold_write_lock(connection: Connection) -> None:
    """A load's side: wait for the batches being applied, hold off new ones until commit."""
    if connection.dialect.name == "postgresql":
        connection.execute(_EXCLUSIVE_LOCK)


def add_audits(connection: Connection, rows: list[dict[str, Any]]) -> None:
    """Insert audit rows (one statement on PostgreSQL, an executemany on SQLite)."""
    if not rows:
        return
    if connection.dialect.name == "postgresql":
        connection.execute(
            _AUDIT_MANY,
            {
                "enrollment_ids": [r["enrollment_id"] for r in rows],
                "task_ids": [r["task_id"] for r in rows],
                "actor_subs": [r["actor_sub"] for r in rows],
                "worker_ids": [r.get("worker_id") for r in rows],
                "changed_ats": [_utc(r["changed_at"]) for r in rows],
                "started_ats": [_utc(r.get("started_at")) for r in rows],
                "befores": [_json(r.get("before")) for r in rows],
                "afters": [_json(r.get("after")) for r in rows],
                "notes": [r.get("note") for r in rows],
                "requested_ats": [_utc(r.get("requested_at")) for r in rows],
            },
        )
        return
    connection.execute(_AUDIT, rows)


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    """A timestamp for an array parameter, which no column type converts: aware, in UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _json(value: Any) -> str:
    return json.dumps(value)  # None as JSON null, as the column type writes it
