"""Petitions: the representation, one petition and the caller's collections; and the rules a new
petition is checked by (seed 003), in the task that creates it (petitions/jobs.py).

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
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Row

from registrar.auth.client import Client
from registrar.core.clock import iso_z
from registrar.core.problems import not_found
from registrar.core.text import shorten, usable_id
from registrar.db.base import width
from registrar.db.database import Database
from registrar.paging.filters import literal
from registrar.paging.pages import Page, PageQuery, find_page
from registrar.people.models import Person
from registrar.people.repository import canonical_netids
from registrar.petitions import repository
from registrar.petitions.models import Petition
from registrar.reference import repository as reference
from registrar.reference.models import Origin, PetitionType, School
from registrar.reference.repository import CodeModel

PETITION_ID = re.compile(r"[0-9a-f]{24}")
RESOURCE = "academic.petitions"
ACTION = "POST"
SUCCESS_MESSAGE = "Petition created successfully."
MAX_ERRORS = 20

REQUIRED = ("netid", "petition_code", "origin_code", "school", "grade_term")
OPTIONAL = ("decision", "user_netid")
ALLOWED = REQUIRED + OPTIONAL
# The free text of a decision: a rule of ours (the column is TEXT).
DECISION_MAX = 255
# Column widths from the models (PostgreSQL enforces them; checked on SQLite too, to behave alike).
MAX_LENGTH = {
    "netid": width(Person.netid),
    "user_netid": width(Petition.user_netid),
    "petition_code": width(PetitionType.id),
    "origin_code": width(Origin.id),
    "school": width(School.id),
    "grade_term": width(Petition.grade_term),
    "decision": DECISION_MAX,
}
CODE_FIELDS: dict[str, CodeModel] = {
    "petition_code": PetitionType,
    "origin_code": Origin,
    "school": School,
}
GRADE_TERM = re.compile(r"[0-9]{2}[FWSX](?:=[A-Z])?")
GRADE_TERM_RULE = (
    "grade_term must look like 24F or 24W=L: two digits, a term letter (F, W, S or X), "
    "optionally = and one letter."
)


def represent(p: Row[Any]) -> dict[str, Any]:
    return {
        "id": p.id,
        "netid": p.netid,
        "petition_code": p.petition_code,
        "petition_name": p.petition_name,
        "origin_code": p.origin_code,
        "origin_name": p.origin_name,
        "school": p.school,
        "decision": p.decision,
        "grade_term": p.grade_term,
        "effective_date": iso_z(p.effective_date),
        "cache_date": iso_z(p.cache_date),
    }


async def get_petition(db: Database, petition_id: str, client: Client) -> dict[str, Any]:
    found = None
    if usable_id(petition_id, width(Petition.id)) and PETITION_ID.fullmatch(petition_id):
        found = await db.read_cached(repository.visible_petition, petition_id, client.sees_private)
    if found is None:
        raise not_found("petition")
    return represent(found)


def student_filter(netid: str) -> tuple[str, str]:
    """GET /api/students/{netid}/petitions: netids are matched as given or lower-cased. A netid
    no person can have (NUL, control characters, too long) is a student without petitions: the
    filter `netid=null` matches nothing (every petition has a netid), so the answer is an empty
    collection like any unknown student's, never a 400 about the filter grammar."""
    if not usable_id(netid, width(Person.netid)):
        return ("netid", "null")
    spellings = dict.fromkeys([netid, netid.lower()])
    return ("netid", ",".join(literal(n) for n in spellings))


async def list_student_petitions(
    db: Database, client: Client, query: PageQuery, netid: str
) -> tuple[list[dict[str, Any]], Page]:
    """A student's petitions: the collection with `netid` fixed by the path. A `netid` on the
    query string cannot change that: it is ignored and named as ignored, as any other would be."""
    own = PageQuery([p for p in query.params if p[0] != "netid"], query.settings, query.secret)
    body, page = await list_petitions(db, client, own, fixed_filters=[student_filter(netid)])
    if len(own.params) != len(query.params) and "netid" not in page.ignored:
        page.ignored.insert(0, "netid")
    return body, page


async def list_petitions(
    db: Database,
    client: Client,
    query: PageQuery,
    *,
    fixed_filters: Sequence[tuple[str, str]] = (),
) -> tuple[list[dict[str, Any]], Page]:
    spec, rows = repository.collection_spec(), repository.petition_rows()
    page = await find_page(db, spec, client, query, rows=rows, fixed_filters=fixed_filters)
    return [represent(r) for r in page.rows], page


def envelope_problems(body: Any) -> list[str]:
    """What the POST itself checks: a JSON object with a `petition` object and nothing else."""
    if not isinstance(body, dict):
        return ["The payload must be a JSON object with a petition attribute."]
    problems = [f"Unknown attribute: {shorten(str(k))}." for k in body if k != "petition"]
    problems = problems[:MAX_ERRORS]
    if "petition" not in body:
        problems.append("Missing attribute: petition.")
    elif not isinstance(body["petition"], dict):
        problems.append("petition must be a JSON object.")
    return problems


def check_fields(payload: Any) -> tuple[dict[str, str | None], list[str]]:
    """Shape and syntax: the cleaned values of the fields that passed, and every problem found."""
    if not isinstance(payload, dict):
        return {}, ["The petition must be a JSON object."]
    errors = [f"Unknown attribute: {shorten(str(k))}." for k in payload if k not in ALLOWED]
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


def check_references(
    connection: Connection, values: dict[str, str | None], *, private: bool, errors: list[str]
) -> dict[str, str | None]:
    """Resolve people and codes; append a problem for each unknown one. Returns stored values."""
    resolved = dict(values)
    netids = [v for k in ("netid", "user_netid") if (v := values.get(k))]
    people = canonical_netids(connection, netids, private=private) if netids else {}
    for key in ("netid", "user_netid"):
        given = values.get(key)
        if given is None:
            continue
        canonical = people.get(given.lower())
        if canonical is None:
            errors.append(f"Unknown {key}: {shorten(given)}.")
        resolved[key] = canonical
    for key, model in CODE_FIELDS.items():
        code_id = values.get(key)
        if code_id is None:
            continue
        is_active = reference.is_active(connection, model, code_id)
        if is_active is None:
            errors.append(f"Unknown {key}: {shorten(code_id)}.")
        elif not is_active:
            errors.append(f"{key} {code_id} is not active.")
    return resolved
