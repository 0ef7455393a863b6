"""The portal pages' own records, as the demo holds them, so every sample request of the three
seed pages works verbatim on `make run`'s data:

- seed 002: `AAAS.010.01-202001-U-10188-f002nkd-instructor`, and f001nkx's enrollment in the same
  section with the sensitive sample's values (final grade A, 1 credit, submitted 2020-03-05);
- seed 000: the PATCH target `AAAS.010.01-202001-U-10188-f002qt1-student`, and the sample tasks
  (`5cddb466b68a450c3b102bfd`, the Location both write pages print, and the incomplete /
  successful / failed samples), owned by the demo account;
- seed 003: the people f006kdf and f006s0b (students, with an enrollment in the term in session),
  the petition the successful sample created (`673e4c83255f18cce280f5d7`) and its task.
The reference codes the samples use (Q41, UREG, UG) are among the shipped defaults.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

# Seed 002's section and term.
SECTION_202001 = {
    "id": "AAAS.010.01-202001-U-10188",
    "lms_section_id": "AAAS.010.01-WI20",
    "sis_section_id": "AAAS.010.01-WI20",
}
SEED_002_ID = "AAAS.010.01-202001-U-10188-f002nkd-instructor"
SEED_002_SENSITIVE_ID = "AAAS.010.01-202001-U-10188-f001nkx-student"
SEED_000_ID = "AAAS.010.01-202001-U-10188-f002qt1-student"
SUBMITTED = "2020-03-05T17:53:46Z"

# (netid, role, term code, course section, CRN, final grade, course assessment). A term code of
# None is the term in session on the day the demo runs.
SeedLine = tuple[str, str, str | None, str, int, str | None, dict[str, str | None] | None]
SEED_LINES: tuple[SeedLine, ...] = (
    ("f002nkd", "instructor", "202001", "AAAS.010.01", 10188, None, None),
    (
        "f001nkx",
        "student",
        "202001",
        "AAAS.010.01",
        10188,
        "A",
        {"submit_date": SUBMITTED, "opt_out_date": None},
    ),
    # As seed 000's sample PATCH left it.
    (
        "f002qt1",
        "student",
        "202001",
        "AAAS.010.01",
        10188,
        "A-",
        {"submit_date": SUBMITTED, "opt_out_date": None},
    ),
    # Seed 003's students: f006s0b's petition is for 24W, f006kdf's POST asks for 24F.
    ("f006s0b", "student", "202401", "GOVT.030.01", 10642, "B+", None),
    ("f006kdf", "student", "202409", "ECON.001.02", 10533, "A", None),
    ("f006s0b", "student", None, "WRIT.005.02", 10417, None, None),
    ("f006kdf", "student", None, "MATH.008.01", 10588, None, None),
)
SEED_PEOPLE = frozenset(netid for netid, *_rest in SEED_LINES)

# The petition seed 003's successful sample created ("mongo id 673e4c83255f18cce280f5d7").
SEED_PETITION = {
    "id": "673e4c83255f18cce280f5d7",
    "netid": "f006s0b",
    "petition_code": "Q41",
    "origin_code": "UREG",
    "school": "UG",
    "decision": "2023-2024",
    "grade_term": "24W",
    "user_netid": "f006s0b",
    "created_by_task": "673e4c82185254cacb8d2967",
}

# The tasks the seed pages show, owned by the demo account (a task is seen by its creator only).
SAMPLE_LOCATION_TASK = "5cddb466b68a450c3b102bfd"
SEED_000_PAYLOAD = {"course_assessment": {"submit_date": SUBMITTED, "opt_out_date": None}}
SEED_000_BOTH = {
    "course_assessment": {"submit_date": SUBMITTED, "opt_out_date": "2020-03-06T09:00:00Z"}
}
SEED_003_PAYLOAD = {
    "netid": "f006s0b",
    "petition_code": "Q41",
    "origin_code": "UREG",
    "school": "UG",
    "decision": "2023-2024",
    "grade_term": "24W",
    "user_netid": "F006S0B",
}
ENROLLMENT_UPDATED = "Enrollment updated successfully."
BOTH_DATES = "['Payload is invalid, contains values for both submit_date and opt_out_date.']"
# (id, resource, action, resource id, payload, status, path after the base URL, message)
SEED_TASKS: tuple[tuple[str, str, str, str | None, Any, str, str, str], ...] = (
    (
        SAMPLE_LOCATION_TASK,
        "academic.enrollments",
        "PATCH",
        SEED_000_ID,
        SEED_000_PAYLOAD,
        "complete",
        f"/api/academic/enrollments/{SEED_000_ID}",
        ENROLLMENT_UPDATED,
    ),
    (
        "630cf2e78b1c6c251cfbc125",
        "academic.enrollments",
        "PATCH",
        SEED_000_ID,
        SEED_000_PAYLOAD,
        "complete",
        f"/api/academic/enrollments/{SEED_000_ID}",
        ENROLLMENT_UPDATED,
    ),
    (
        "630cf3b161b5fada66eb9358",
        "academic.enrollments",
        "PATCH",
        SEED_000_ID,
        SEED_000_BOTH,
        "error",
        f"/api/academic/enrollments/{SEED_000_ID}",
        BOTH_DATES,
    ),
    (
        "673e4c82185254cacb8d2967",
        "academic.petitions",
        "POST",
        None,
        SEED_003_PAYLOAD,
        "complete",
        f"/api/academic/petitions/{SEED_PETITION['id']}",
        "Petition created successfully.",
    ),
)


def seed_enrollments(
    current_term: str, term_fields: Callable[[str], tuple[dict[str, str], dict[str, bool]]]
) -> list[dict[str, Any]]:
    """The seeds' enrollments as extract lines. `term_fields(code)` gives a term's representation
    and its flags (is_active, is_in_session) on the demo's day, as the generator computes them."""
    records = []
    for netid, role, code, course_section, crn, grade, assessment in SEED_LINES:
        term, flags = term_fields(code or current_term)
        section_id = f"{course_section}-{term['id']}-{crn}"
        lms = f"{course_section}-{term['lms_term_id']}"
        section = {"id": section_id, "lms_section_id": lms, "sis_section_id": lms}
        past = not flags["is_active"]
        records.append(
            {
                "id": f"{section_id}-{netid}-{role}",
                **flags,
                "netid": netid,
                "role": role,
                "school_id": "UG",
                "section": section,
                "term": term,
                "final_grade": grade if past else None,
                "credit_hours_earned": (1 if grade and past else None),
                "course_assessment": assessment,
            }
        )
    return records


def seed_sections(current_term: str) -> set[tuple[str, str]]:
    """(term code, course section) pairs the seeds use: the generator leaves them to the seeds."""
    return {(code or current_term, course) for _n, _r, code, course, *_rest in SEED_LINES}


def seed_task_rows(
    *, sub: str, requester: dict[str, Any], base_url: str, now: dt.datetime
) -> list[dict[str, Any]]:
    """The sample tasks as finished task rows of the demo account, dated now (finished tasks are
    pruned after the retention period, so each demo run dates them anew)."""
    base = base_url.rstrip("/")
    rows = []
    for task_id, resource, action, resource_id, payload, status, path, message in SEED_TASKS:
        called = "/api/academic/petitions" if action == "POST" else path
        rows.append(
            {
                "id": task_id,
                "resource": resource,
                "action": action,
                "resource_id": resource_id,
                "payload": payload,
                "requester": requester,
                "sub": sub,
                "private_scope": True,
                "status": status,
                "request_date": now - dt.timedelta(seconds=1),
                "completed_date": now,
                "path": base + path,
                "worker_data": {"worker": "demo", "attempts": 1},
                "message": message,
                "base_url": base,
                "called_url": base + called,
                "attempts": 1,
                "max_attempts": 1,
                "run_at": now - dt.timedelta(seconds=1),
            }
        )
    return rows


def seed_petition_row(now: dt.datetime) -> dict[str, Any]:
    """Seed 003's petition, effective in winter 2024 as its grade term says."""
    effective = dt.datetime(2024, 1, 15, 14, 0, tzinfo=dt.UTC)
    return {**SEED_PETITION, "effective_date": effective, "cache_date": now}
