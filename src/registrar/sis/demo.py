"""`registrar demo`: a believable (Dartmouth-like) university, loaded through the real load path.

The generator builds enrollments in the extract's representation (the same dicts a SIS extract line
parses to) and hands them to `service.load_records`, so demo data is validated and upserted exactly
as an operator's extract would be. The same seed on the same day gives the same records, so running
demo again finds everything unchanged; the calendar follows today, so the current term is current.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from registrar.auth.scopes import ALL_SCOPES
from registrar.auth.service import issue_service_account
from registrar.core.clock import iso_z
from registrar.core.settings import Settings
from registrar.db.database import Database
from registrar.enrollments.repository import any_enrollment
from registrar.sis.service import LoadResult, load_records

DEMO_SUB = "demo"

SUBJECTS = (
    "AAAS",
    "ANTH",
    "ARTH",
    "ASTR",
    "BIOL",
    "CHEM",
    "CLST",
    "COLT",
    "COSC",
    "EARS",
    "ECON",
    "EDUC",
    "ENGL",
    "ENGS",
    "ENVS",
    "FILM",
    "FREN",
    "GEOG",
    "GERM",
    "GOVT",
    "HIST",
    "ITAL",
    "JAPN",
    "LACS",
    "LING",
    "MATH",
    "MUS",
    "NAS",
    "PHIL",
    "PHYS",
    "PSYC",
    "QSS",
    "REL",
    "RUSS",
    "SOCY",
    "SPAN",
    "THEA",
    "WGSS",
    "WRIT",
)
# (season code, LMS prefix, first day, last day): Dartmouth's quarter system.
SEASONS = (
    ("01", "WI", (1, 4), (3, 14)),
    ("03", "SP", (3, 27), (6, 10)),
    ("06", "SU", (6, 22), (8, 26)),
    ("09", "FA", (9, 11), (11, 24)),
)
SCHOOLS = (("UG", 86), ("GR", 7), ("TU", 3), ("MED", 2), ("TH", 2))
GRADES = (
    ("A", 26),
    ("A-", 22),
    ("B+", 14),
    ("B", 10),
    ("B-", 6),
    ("C+", 3),
    ("C", 2),
    ("C-", 1),
    ("D", 1),
    ("E", 1),
    ("CT", 3),
    ("NC", 1),
    ("NR", 1),
    ("W", 2),
    ("I", 1),
)
NO_CREDIT = frozenset({"E", "NC", "NR", "W", "I"})
NETID_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789"
CONFIDENTIAL_SHARE = 0.03
TERMS_BACK = 16  # four years of history before the current term


@dataclass(frozen=True)
class DemoTerm:
    index: int
    code: str  # 202001
    lms: str  # WI20
    start: dt.date
    end: dt.date
    weight: float

    @property
    def id(self) -> str:
        return f"{self.code}-U"


def calendar(today: dt.date) -> tuple[list[DemoTerm], int]:
    """Terms from four years back to the next one, and the index of the current term.

    The current term is the last one that has started, so between terms it is the one just ended
    (not in session, still active for data feeds); the next one is open for registration.
    """
    starts: list[tuple[dt.date, int, int]] = []
    for year in range(today.year - 5, today.year + 2):
        for season in range(4):
            month, day = SEASONS[season][2]
            starts.append((dt.date(year, month, day), year, season))
    current = max(i for i, (start, _y, _s) in enumerate(starts) if start <= today)
    terms = []
    for index, (start, year, season) in enumerate(starts[current - TERMS_BACK : current + 2]):
        code, prefix, _first, (end_month, end_day) = SEASONS[season]
        terms.append(
            DemoTerm(
                index=index,
                code=f"{year}{code}",
                lms=f"{prefix}{year % 100:02d}",
                start=start,
                end=dt.date(year, end_month, end_day),
                weight=0.35 if code == "06" else 1.0,
            )
        )
    return terms, TERMS_BACK


class University:
    """People and courses, drawn once from the seed."""

    def __init__(self, total: int, seed: int, today: dt.date) -> None:
        self.rng = random.Random(seed)
        self.total = total
        self.today = today
        self.terms, self.current = calendar(today)
        self._netids: set[str] = set()
        # About 25 students and one instructor per section; a student takes ~3 courses a term for
        # 12 terms, which sizes the student body from the number of enrollments asked for.
        sections = max(1, total // 26)
        self.students = [self._person(student=True) for _ in range(max(30, total // 33))]
        self.instructors = {
            subject: [self._person(student=False) for _ in range(max(2, sections // 400))]
            for subject in SUBJECTS
        }
        self.courses = {
            subject: sorted(
                {
                    self.rng.choice(
                        (
                            1,
                            2,
                            3,
                            5,
                            7,
                            10,
                            12,
                            15,
                            16,
                            17,
                            20,
                            22,
                            25,
                            27,
                            30,
                            31,
                            34,
                            36,
                            40,
                            43,
                            45,
                            48,
                            50,
                            52,
                            55,
                            60,
                            62,
                            65,
                            70,
                            74,
                            76,
                            80,
                            85,
                            89,
                            90,
                            94,
                            97,
                            101,
                            107,
                            114,
                            119,
                            124,
                            131,
                            149,
                            174,
                        )
                    )
                    for _ in range(14)
                }
            )
            for subject in SUBJECTS
        }

    def _netid(self) -> str:
        rng = self.rng
        while True:
            netid = f"f{rng.randrange(1000):03d}" + "".join(rng.choices(NETID_CHARS, k=3))
            if netid not in self._netids:
                self._netids.add(netid)
                return netid

    def _person(self, *, student: bool) -> tuple[str, str, bool, int]:
        """(netid, school, confidential, first term index) of a student or instructor."""
        rng = self.rng
        school = rng.choices(_SCHOOL_NAMES, _SCHOOL_WEIGHTS)[0] if student else "UG"
        confidential = student and rng.random() < CONFIDENTIAL_SHARE
        # Students enter in a fall (or any term, for the graduate schools); a cohort spans 12 terms.
        first = rng.randrange(-11, len(self.terms)) if student else 0
        return self._netid(), school, confidential, first

    def enrollments(self) -> Iterator[dict[str, Any]]:
        rng = self.rng
        weights = [t.weight for t in self.terms]
        per_term = [w / sum(weights) for w in weights]
        emitted = 0
        for term in self.terms:
            quota = (
                round(self.total * per_term[term.index])
                if term.index < len(self.terms) - 1
                else self.total - emitted
            )
            term_dict = {
                "id": term.id,
                "lms_term_id": term.lms,
                "sis_ptrm_code": "U",
                "sis_term_code": term.code,
            }
            past = term.end < self.today
            in_session = term.start <= self.today <= term.end
            active = term.index >= self.current
            active_students = [
                s for s in self.students if s[3] <= term.index < s[3] + 12
            ] or self.students
            crn = 10000 + rng.randrange(200)
            produced = 0
            used_sections: set[str] = set()
            while produced < quota and emitted < self.total:
                subject = rng.choice(SUBJECTS)
                number = rng.choice(self.courses[subject])
                crn += rng.randrange(1, 14)
                course = f"{subject}.{number:03d}"
                section_no = 1
                while f"{course}.{section_no:02d}" in used_sections:
                    section_no += 1
                course_section = f"{course}.{section_no:02d}"
                used_sections.add(course_section)
                section_id = f"{course_section}-{term.id}-{crn}"
                lms_section = f"{course_section}-{term.lms}"
                section = {
                    "id": section_id,
                    "lms_section_id": lms_section,
                    "sis_section_id": lms_section,
                }
                size = (
                    rng.randint(40, 110)
                    if number < 10
                    else rng.randint(8, 16)
                    if number >= 80
                    else rng.randint(14, 35)
                )
                staff = [("instructor", rng.choice(self.instructors[subject]))]
                if size > 40 and rng.random() < 0.5:
                    ta = rng.choice(self.students)
                    staff.append(("ta", ta))
                taken = {p[0] for _role, p in staff}
                roster = [
                    s
                    for s in rng.sample(active_students, min(size, len(active_students)))
                    if s[0] not in taken
                ]
                members = staff + [("student", s) for s in roster]
                for role, (netid, school, confidential, _first) in members:
                    if emitted >= self.total:
                        break
                    record: dict[str, Any] = {
                        "id": f"{section_id}-{netid}-{role}",
                        "is_active": active,
                        "is_in_session": in_session,
                        "netid": netid,
                        "role": role,
                        "school_id": school,
                        "section": section,
                        "term": term_dict,
                        "final_grade": None,
                        "credit_hours_earned": None,
                        "course_assessment": None,
                    }
                    if role == "student":
                        if past:
                            grade = rng.choices(_GRADE_NAMES, _GRADE_WEIGHTS)[0]
                            record["final_grade"] = grade
                            record["credit_hours_earned"] = 0 if grade in NO_CREDIT else 1
                        if past or in_session:
                            record["course_assessment"] = self._assessment(term)
                    if confidential:
                        record["confidential"] = True
                    yield record
                    emitted += 1
                    produced += 1

    def _assessment(self, term: DemoTerm) -> dict[str, str | None] | None:
        """Course assessments open in the last two weeks of a term: most submit, a few opt out."""
        rng = self.rng
        draw = rng.random()
        if draw >= 0.5:
            return None
        moment = dt.datetime.combine(term.end, dt.time(12), dt.UTC) - dt.timedelta(
            seconds=rng.randrange(14 * 86400)
        )
        if moment.date() > self.today:
            return None
        if draw < 0.45:
            return {"submit_date": iso_z(moment), "opt_out_date": None}
        return {"submit_date": None, "opt_out_date": iso_z(moment)}


_SCHOOL_NAMES = [s for s, _ in SCHOOLS]
_SCHOOL_WEIGHTS = [w for _, w in SCHOOLS]
_GRADE_NAMES = [g for g, _ in GRADES]
_GRADE_WEIGHTS = [w for _, w in GRADES]


def generate(total: int, seed: int, today: dt.date | None = None) -> Iterator[dict[str, Any]]:
    """`total` enrollments of a generated university, in the extract's representation."""
    yield from University(total, seed, today or dt.date.today()).enrollments()


@dataclass
class Demo:
    """What `registrar demo` did: the load (None when it left a non-empty database alone) and the
    demo account's new API key."""

    load: LoadResult | None
    sub: str
    key: str


async def load_demo(
    db: Database,
    settings: Settings,
    *,
    enrollments: int,
    seed: int,
    if_empty: bool = False,
    on_batch: Callable[[int], None] | None = None,
    on_phase: Callable[[str], None] | None = None,
) -> Demo:
    """Load a generated university through the real load path (unless `if_empty` and the database
    holds enrollments), then give the `demo` service account every scope and a new key.

    Re-running demo gives the same account a new key (the old one stops working), un-revokes it and
    grants every scope again: one demo account, always usable, instead of demo-2, demo-3, ...
    """
    result = None
    if not (if_empty and await db.read(any_enrollment)):
        records = ((n, r) for n, r in enumerate(generate(enrollments, seed), start=1))
        result = await load_records(db, records, on_batch=on_batch, on_phase=on_phase)
    key = await issue_service_account(
        db,
        settings,
        sub=DEMO_SUB,
        name="Registrar demo",
        email="demo@example.edu",
        scopes=" ".join(ALL_SCOPES),
    )
    return Demo(result, DEMO_SUB, key)
