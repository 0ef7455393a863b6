"""The task that creates a petition (seed 003): validate every field, then insert one SHREVNT row.

The POST only checks the envelope; the fields are validated here, by the worker, because the
contract says the task "checks validity of the payload and then performs the task". Every problem
is collected (not just the first) and the task ends `error` with them all, formatted as seed 000's
failed sample: a list of sentences.

Rules decided here (see the README):
- Required: netid, petition_code, origin_code, school, grade_term. Optional (absent or null):
  decision, user_netid. Any other key is an error. Every value is a string.
- netid and user_netid name known people, matched case-insensitively, stored as the people table
  spells them (Dartmouth netids are lowercase). A confidential person is "unknown" to a requester
  without urn:dartmouth:people:private, so the task reveals nothing the requester may not see.
- petition_code, origin_code and school name known, active reference codes (case-insensitive,
  stored upper-case); inactive codes stay readable but take no new petitions.
- grade_term: two digits, a term letter (F fall, W winter, S spring, X summer), optionally `=` and
  one letter (24F, 24W=L); stored upper-case.
- Idempotent: the petition records the task that created it (unique), so a redelivered task finds
  it and reports the same success without creating a second.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

from sqlalchemy import Connection, Table, func, insert, select

from registrar.core.clock import utcnow
from registrar.people import ferpa
from registrar.people.models import Person
from registrar.petitions import repository
from registrar.petitions.models import Petition
from registrar.reference.models import Origin, PetitionType, School
from registrar.tasks.handlers import (
    ClaimedTask,
    HandlerResult,
    PermanentTaskError,
    absolute_url,
    register_handler,
)

RESOURCE = "academic.petitions"
ACTION = "POST"
SUCCESS_MESSAGE = "Petition created successfully."
MAX_ERRORS = 20

REQUIRED = ("netid", "petition_code", "origin_code", "school", "grade_term")
OPTIONAL = ("decision", "user_netid")
ALLOWED = REQUIRED + OPTIONAL
# Column widths (PostgreSQL enforces them; check on SQLite too so both behave alike).
MAX_LENGTH = {
    "netid": 64,
    "user_netid": 64,
    "petition_code": 16,
    "origin_code": 16,
    "school": 16,
    "grade_term": 16,
    "decision": 255,
}
CODE_FIELDS: dict[str, type[PetitionType] | type[Origin] | type[School]] = {
    "petition_code": PetitionType,
    "origin_code": Origin,
    "school": School,
}
PETITIONS: Table = Petition.__table__  # type: ignore[assignment]
GRADE_TERM = re.compile(r"[0-9]{2}[FWSX](?:=[A-Z])?")
GRADE_TERM_RULE = (
    "grade_term must look like 24F or 24W=L: two digits, a term letter (F, W, S or X), "
    "optionally = and one letter."
)


def _name(key: object) -> str:
    text = str(key)
    return text if len(text) <= 64 else text[:61] + "..."


def _show(value: str) -> str:
    return value if len(value) <= 64 else value[:61] + "..."


def check_fields(payload: Any) -> tuple[dict[str, str | None], list[str]]:
    """Shape and syntax: the cleaned values of the fields that passed, and every problem found."""
    if not isinstance(payload, dict):
        return {}, ["The petition must be a JSON object."]
    errors = [f"Unknown attribute: {_name(k)}." for k in payload if k not in ALLOWED]
    values: dict[str, str | None] = {}
    for key in ALLOWED:
        raw = payload.get(key)
        if raw is None:
            if key in REQUIRED:
                errors.append(f"Missing attribute: {key}.")
            else:
                values[key] = None
            continue
        if not isinstance(raw, str):
            errors.append(f"{key} must be a string.")
            continue
        text = raw.strip()
        if not text:
            if key in REQUIRED:
                errors.append(f"{key} must not be empty.")
            else:
                values[key] = None
            continue
        if len(text) > MAX_LENGTH[key]:
            errors.append(f"{key} is longer than {MAX_LENGTH[key]} characters.")
            continue
        if not text.isprintable():
            errors.append(f"{key} contains control characters.")
            continue
        if key in CODE_FIELDS or key == "grade_term":
            text = text.upper()
        if key == "grade_term" and not GRADE_TERM.fullmatch(text):
            errors.append(GRADE_TERM_RULE)
            continue
        values[key] = text
    return values, errors


def _people(connection: Connection, netids: list[str], *, private: bool) -> dict[str, str]:
    """Map each given netid (lower-cased) to the people table's spelling, if the requester may
    see that person (the FERPA rule, common/ferpa.py: a hidden person is exactly an unknown one,
    and costs the same to look for). Exact and lower-case spellings hit the primary key; only a
    miss falls back to a case-insensitive scan."""
    visible = ferpa.person_visible(private)
    wanted = {n.lower() for n in netids}
    candidates = set(netids) | wanted
    rows = list(
        connection.scalars(select(Person.netid).where(Person.netid.in_(candidates), *visible))
    )
    missing = wanted - {netid.lower() for netid in rows}
    if missing:
        rows += connection.scalars(
            select(Person.netid)
            .where(func.lower(Person.netid).in_(missing), *visible)
            .order_by(Person.netid)
        )
    found: dict[str, str] = {}
    for netid in rows:
        # Prefer the exact spelling the caller gave, then the first in order.
        key = netid.lower()
        if key not in found or netid in netids:
            found[key] = netid
    return found


def check_references(
    connection: Connection, values: dict[str, str | None], *, private: bool, errors: list[str]
) -> dict[str, str | None]:
    """Resolve people and codes; append a problem for each unknown one. Returns stored values."""
    resolved = dict(values)
    netids = [v for k in ("netid", "user_netid") if (v := values.get(k))]
    people = _people(connection, netids, private=private) if netids else {}
    for key in ("netid", "user_netid"):
        given = values.get(key)
        if given is None:
            continue
        canonical = people.get(given.lower())
        if canonical is None:
            errors.append(f"Unknown {key}: {_show(given)}.")
        resolved[key] = canonical
    for key, model in CODE_FIELDS.items():
        code_id = values.get(key)
        if code_id is None:
            continue
        is_active = connection.scalar(select(model.is_active).where(model.id == code_id))
        if is_active is None:
            errors.append(f"Unknown {key}: {_show(code_id)}.")
        elif not is_active:
            errors.append(f"{key} {code_id} is not active.")
    return resolved


def petition_url(task: ClaimedTask, petition_id: str) -> str:
    return absolute_url(task, f"/api/academic/petitions/{petition_id}")


def create_petition(connection: Connection, task: ClaimedTask) -> HandlerResult:
    """The task handler: one petition per task, however often the task is delivered."""
    existing = repository.find_by_task(connection, task.id)
    if existing is not None:
        return HandlerResult(petition_url(task, existing), SUCCESS_MESSAGE)
    values, errors = check_fields(task.payload)
    resolved = check_references(connection, values, private=task.private_scope, errors=errors)
    if errors:
        raise PermanentTaskError(str(errors[:MAX_ERRORS]))
    now = utcnow()
    petition_id = secrets.token_hex(12)
    # A concurrent run of the same task fails here on the unique created_by_task; the worker
    # retries it as transient, and the retry finds this petition above.
    connection.execute(
        insert(PETITIONS).values(
            id=petition_id,
            netid=resolved["netid"],
            petition_code=resolved["petition_code"],
            origin_code=resolved["origin_code"],
            school=resolved["school"],
            decision=resolved.get("decision"),
            grade_term=resolved["grade_term"],
            user_netid=resolved.get("user_netid"),
            effective_date=now,
            cache_date=now,
            created_by_task=task.id,
        )
    )
    return HandlerResult(petition_url(task, petition_id), SUCCESS_MESSAGE)


register_handler(RESOURCE, ACTION, create_petition)
