"""`registrar demo`: a believable (Dartmouth-like) university, loaded through the real load path.

The generator builds enrollments in the extract's representation (the same dicts a SIS extract line
parses to) and hands them to `service.load_records`, so demo data is validated and upserted exactly
as an operator's extract would be. The same seed on the same day gives the same records, so running
demo again finds everything unchanged.

The calendar is generated around today: terms from winter 2019 (the seeds' era) to the one after
today's, and a term stays in session from its first day until the next one starts (a real calendar
has breaks, on which nothing is in session; a demo that answered `is_in_session=true` with `[]` one
day in five would only confuse). So on every day of the year one term is in session and active,
and the next one is active too (open for registration).

Besides the generated university, the demo holds the portal pages' own records (`seeds.py`): the
enrollments, people and petition their samples name, and the sample tasks, owned by the demo
account, so that every sample request of the seeds works verbatim.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from registrar.auth.scopes import ALL_SCOPES
from registrar.auth.service import issue_service_account
from registrar.core.clock import iso_z, utcnow, whole_second
from registrar.core.settings import Settings
from registrar.db.database import Database
from registrar.enrollments.repository import any_enrollment
from registrar.petitions.repository import add_petitions
from registrar.sis import seeds
from registrar.sis.service import LoadResult, load_records
from registrar.tasks.repository import put_finished_tasks
from registrar.webhooks import service as webhooks

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


FIRST_YEAR = 2019  # the seeds' era: winter 2020 (202001) and the range 201901..202003


@dataclass(frozen=True)
class DemoTerm:
    index: int
    code: str  # 202001
    lms: str  # WI20
    start: dt.date
    end: dt.date  # the last day of classes (course assessments close then)
    next_start: dt.date  # the term is in session until the day before this
    weight: float

    @property
    def id(self) -> str:
        return f"{self.code}-U"

    def in_session(self, today: dt.date) -> bool:
        return self.start <= today < self.next_start

    def active(self, today: dt.date) -> bool:
        """Current or future: open for registration and data feeds."""
        return today < self.next_start

    def past(self, today: dt.date) -> bool:
        return self.next_start <= today


def _season_start(year: int, season: int) -> dt.date:
    month, day = SEASONS[season][2]
    return dt.date(year, month, day)


def _term(index: int, year: int, season: int) -> DemoTerm:
    code, prefix, _first, (end_month, end_day) = SEASONS[season]
    next_year, next_season = (year + 1, 0) if season == 3 else (year, season + 1)
    return DemoTerm(
        index=index,
        code=f"{year}{code}",
        lms=f"{prefix}{year % 100:02d}",
        start=_season_start(year, season),
        end=dt.date(year, end_month, end_day),
        next_start=_season_start(next_year, next_season),
        weight=0.35 if code == "06" else 1.0,
    )


def term_of(code: str) -> DemoTerm:
    """The demo term with this code (202001), wherever it falls in the calendar."""
    year, season = int(code[:4]), [s[0] for s in SEASONS].index(code[4:])
    return _term(-1, year, season)


def calendar(today: dt.date) -> tuple[list[DemoTerm], int]:
    """Terms from winter 2019 (or four years back, if that is earlier) to the one after today's,
    and the index of the current term: the last one that has started, in session until the next
    one starts."""
    starts = [
        (year, season)
        for year in range(min(FIRST_YEAR, today.year - 5), today.year + 2)
        for season in range(4)
    ]
    current = max(i for i, (y, s) in enumerate(starts) if _season_start(y, s) <= today)
    first = min(current - TERMS_BACK, starts.index((FIRST_YEAR, 0)))
    chosen = starts[first : current + 2]
    terms = [_term(index, year, season) for index, (year, season) in enumerate(chosen)]
    return terms, current - first


class University:
    """People and courses, drawn once from the seed."""

    def __init__(self, total: int, seed: int, today: dt.date) -> None:
        self.rng = random.Random(seed)
        self.total = total
        self.today = today
        self.terms, self.current = calendar(today)
        self.current_code = self.terms[self.current].code
        self.seeds = seeds.seed_enrollments(self.current_code, self._term_fields)
        self.reserved = seeds.seed_sections(self.current_code)
        self._netids: set[str] = set(seeds.SEED_PEOPLE)
        # Who was enrolled, as what, in which terms: the generated petitions are theirs.
        self.enrolled: dict[str, tuple[str, str, list[DemoTerm]]] = {}
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

    def _term_fields(self, code: str) -> tuple[dict[str, str], dict[str, bool]]:
        """A term's representation and its flags on the demo's day."""
        term = term_of(code)
        fields = {
            "id": term.id,
            "lms_term_id": term.lms,
            "sis_ptrm_code": "U",
            "sis_term_code": term.code,
        }
        flags = {"is_active": term.active(self.today), "is_in_session": term.in_session(self.today)}
        return fields, flags

    def enrollments(self) -> Iterator[dict[str, Any]]:
        """The seeds' records first, then generated ones up to `total` in all."""
        rng = self.rng
        weights = [t.weight for t in self.terms]
        per_term = [w / sum(weights) for w in weights]
        yield from self.seeds
        emitted = len(self.seeds)
        for term in self.terms:
            quota = (
                round((self.total - len(self.seeds)) * per_term[term.index])
                if term.index < len(self.terms) - 1
                else self.total - emitted
            )
            term_dict = {
                "id": term.id,
                "lms_term_id": term.lms,
                "sis_ptrm_code": "U",
                "sis_term_code": term.code,
            }
            past = term.past(self.today)
            in_session = term.in_session(self.today)
            active = term.active(self.today)
            active_students = [
                s for s in self.students if s[3] <= term.index < s[3] + 12
            ] or self.students
            crn = 10000 + rng.randrange(200)
            produced = 0
            used_sections = {course for code, course in self.reserved if code == term.code}
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
                    if emitted >= self.total or produced >= quota:
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
                    known = self.enrolled.setdefault(netid, (role, school, []))
                    if not known[2] or known[2][-1] is not term:
                        known[2].append(term)
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

    def petitions(self, count: int, now: dt.datetime) -> list[dict[str, Any]]:
        """`count` petitions of students enrolled above (call after `enrollments`), in the shape
        of the petitions table: Banner event codes, origins of the student's school, a decision,
        the grade term of a term they attended."""
        rng = self.rng
        students = sorted(n for n, (role, _s, _t) in self.enrolled.items() if role == "student")
        staff = sorted(n for n, (role, _s, _t) in self.enrolled.items() if role == "instructor")
        if not students:
            return []
        rows = []
        for _ in range(count):
            netid = rng.choice(students)
            _role, school, terms = self.enrolled[netid]
            term = rng.choice(terms)
            effective = dt.datetime.combine(term.start, dt.time(9), dt.UTC) + dt.timedelta(
                seconds=rng.randrange(60 * 86400)
            )
            if effective > now:
                effective = now
            rows.append(
                {
                    "id": f"{rng.getrandbits(96):024x}",
                    "netid": netid,
                    "petition_code": rng.choice(PETITION_CODES),
                    "origin_code": rng.choice(ORIGINS.get(school, ("PREG",))),
                    "school": school,
                    "decision": rng.choice(DECISIONS),
                    "grade_term": grade_term(term),
                    "user_netid": rng.choice(staff) if staff and rng.random() < 0.7 else None,
                    "effective_date": effective,
                    "cache_date": now,
                    "created_by_task": None,
                }
            )
        return rows


def grade_term(term: DemoTerm) -> str:
    """Banner's grade term of a term: 24W, 24S, 24X, 24F."""
    letter = {"01": "W", "03": "S", "06": "X", "09": "F"}[term.code[4:]]
    return f"{term.code[2:4]}{letter}"


# Active petition types of the shipped defaults, and the origins a school's petitions come from.
PETITION_CODES = (
    "Q10",
    "Q14",
    "Q20",
    "Q21",
    "Q22",
    "Q24",
    "Q25",
    "Q30",
    "Q33",
    "Q41",
    "Q50",
    "R01",
)
ORIGINS = {"UG": ("UREG", "UDEAN", "UCAS", "UDEPT"), "GR": ("GREG", "GDEAN")}
DECISIONS = ("Approved", "Approved", "Approved", "Denied", "Pending", "IDP 095", "2023-2024")


_SCHOOL_NAMES = [s for s, _ in SCHOOLS]
_SCHOOL_WEIGHTS = [w for _, w in SCHOOLS]
_GRADE_NAMES = [g for g, _ in GRADES]
_GRADE_WEIGHTS = [w for _, w in GRADES]


def generate(total: int, seed: int, today: dt.date | None = None) -> Iterator[dict[str, Any]]:
    """`total` enrollments (the seeds' among them) of a generated university, in the extract's
    representation."""
    yield from University(total, seed, today or dt.date.today()).enrollments()


def minimum_enrollments() -> int:
    """The seeds' enrollments: the fewest a demo can hold."""
    return len(seeds.SEED_LINES)


@dataclass
class Demo:
    """What `registrar demo` did: the load (None when it left a non-empty database alone), the
    petitions it added, and the demo account's API key (`kept`: the one it was given still works;
    else a new one, and earlier ones no longer work)."""

    load: LoadResult | None
    petitions: int
    sub: str
    key: str
    kept: bool


DEMO_NAME = "Registrar demo"
DEMO_EMAIL = "demo@example.edu"


async def load_demo(
    db: Database,
    settings: Settings,
    *,
    enrollments: int,
    seed: int,
    base_url: str,
    if_empty: bool = False,
    keep_key: str | None = None,
    today: dt.date | None = None,
    on_batch: Callable[[int], None] | None = None,
    on_phase: Callable[[str], None] | None = None,
) -> Demo:
    """Load a generated university through the real load path (unless `if_empty` and the database
    holds enrollments) with its petitions; then, always, the seeds' sample tasks (dated now, owned
    by the demo account, their URLs under `base_url`) and the `demo` service account with every
    scope.

    The account keeps `keep_key` when that is its current key (a rerun of `make run` keeps the key
    the user saved); otherwise it gets a new key and earlier ones stop working. It is un-revoked
    and granted every scope again either way: one demo account, always usable.
    """
    day = today or dt.date.today()
    now = whole_second(utcnow())
    result = None
    petitions = [seeds.seed_petition_row(now)]
    if if_empty and await db.read(any_enrollment):
        # The generated data stays as it is, but the seeds' own records are made sure of (a
        # database filled by an older demo may lack them): a load of those few lines.
        lines = University(minimum_enrollments(), seed, day).seeds
        await load_records(db, enumerate(lines, start=1))
    else:
        university = University(enrollments, seed, day)
        records = ((n, r) for n, r in enumerate(university.enrollments(), start=1))
        result = await load_records(db, records, on_batch=on_batch, on_phase=on_phase)
        petitions += university.petitions(_petition_count(enrollments), now)
    added = await db.write(add_petitions, petitions)
    key, kept = await issue_service_account(
        db,
        settings,
        sub=DEMO_SUB,
        name=DEMO_NAME,
        email=DEMO_EMAIL,
        scopes=" ".join(ALL_SCOPES),
        keep=keep_key,
    )
    requester = {
        "sub": DEMO_SUB,
        "name": DEMO_NAME,
        "email": DEMO_EMAIL,
        "scope": ",".join(ALL_SCOPES),
        "iat": str(int(now.timestamp())),
        "exp": str(int(now.timestamp()) + settings.token_lifetime_seconds),
    }
    tasks = seeds.seed_task_rows(sub=DEMO_SUB, requester=requester, base_url=base_url, now=now)
    await db.write(put_finished_tasks, tasks)
    await db.write(webhooks.put_samples, DEMO_SUB, tasks[0]["id"], now)
    return Demo(result, added, DEMO_SUB, key, kept)


def _petition_count(enrollments: int) -> int:
    """About one petition per 200 enrollments (a few per hundred students a year)."""
    return max(10, enrollments // 200)
