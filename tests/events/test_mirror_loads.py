"""A mirror fed by the event feed ends with what the collection answers, with REAL loads: the
extracts go through `registrar load` (the command an operator and the scheduled refresh run, with
`--replace` and `--as-of`), interleaved with PATCHes applied by the worker, a petition, deletions,
an update of a sensitive key and confidentiality flips both ways; for a full, a plain and a
sensitive reader. (tests/events/test_feed.py's mirror test simulates loads by writing rows and
events directly; this one trusts nothing but the load itself.)

`cache_date` is the one key compared apart: a refresh confirms every record it lists without an
event per record (README, *Keeping in sync*), so a mirror holds the record's last change and the
collection its last confirmation."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from registrar.auth.scopes import (
    ENROLLMENTS_READ,
    ENROLLMENTS_READ_SENSITIVE,
    ENROLLMENTS_WRITE,
    PEOPLE_PRIVATE,
    PETITIONS_READ,
    PETITIONS_WRITE,
)
from tests.support.accounts import Accounts, cli
from tests.support.events import Mirror, collection, read_all
from tests.support.extracts import SECTION, line, write_extract
from tests.support.tasks import JSON, patch_body, wait_task

README = Path(__file__).resolve().parents[2] / "README.md"
READERS = {
    "full": [ENROLLMENTS_READ, ENROLLMENTS_READ_SENSITIVE, PEOPLE_PRIVATE, PETITIONS_READ],
    "plain": [ENROLLMENTS_READ],
    "sensitive": [ENROLLMENTS_READ, ENROLLMENTS_READ_SENSITIVE],
}
OTHER = {
    "id": "COSC.001.01-202001-U-10201",
    "lms_section_id": "COSC.001.01-WI20",
    "sis_section_id": "COSC.001.01-WI20",
}
# Extracts taken long before any API write: such a write is kept over them.
OLD = "2020-06-01T00:00:00Z"


def without_cache_date(records: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    for record in records.values():
        assert "cache_date" in record  # compared apart, but always there
    return {key: {k: v for k, v in r.items() if k != "cache_date"} for key, r in records.items()}


def eid(netid: str, section: dict[str, str] = SECTION, role: str = "student") -> str:
    return f"{section['id']}-{netid}-{role}"


class Scene:
    """The readers' mirrors, a writer, and loads through the `registrar load` command."""

    def __init__(self, api: TestClient, accounts: Accounts, database_url: str, tmp: Path):
        self.api, self.url, self.tmp = api, database_url, tmp
        self.readers = {n: accounts.headers(s, sub=f"loads-{n}") for n, s in READERS.items()}
        self.writer = accounts.headers([ENROLLMENTS_WRITE, PEOPLE_PRIVATE], sub="loads-writer")
        self.petitioner = accounts.headers([PETITIONS_WRITE], sub="loads-petitioner")
        self.mirrors = {name: Mirror() for name in self.readers}
        self.loads = 0

    def load(self, records: list[dict[str, Any]], *args: str) -> str:
        self.loads += 1
        path = write_extract(self.tmp / f"extract-{self.loads}.jsonl", records)
        code, out, err = cli(self.url, "load", str(path), *args)
        assert code == 0, err
        return out

    def patch(self, enrollment_id: str, submit: str | None) -> None:
        r = self.api.patch(
            f"/api/academic/enrollments/{enrollment_id}",
            headers={**self.writer, **JSON},
            json=patch_body(submit),
        )
        assert r.status_code == 202, r.text
        task = wait_task(self.api, r.headers["location"], self.writer)
        assert task["status"] == "complete", task

    def petition(self, netid: str) -> None:
        body = {
            "petition": {
                "netid": netid,
                "petition_code": "Q41",
                "origin_code": "UREG",
                "school": "UG",
                "grade_term": "24F",
            }
        }
        r = self.api.post("/api/academic/petitions", headers={**self.petitioner, **JSON}, json=body)
        assert r.status_code == 202, r.text
        task = wait_task(self.api, r.headers["location"], self.petitioner)
        assert task["status"] == "complete", task

    def check(self) -> dict[str, dict[str, dict[str, Any]]]:
        """Every reader catches up; its mirror is the collection it reads (but cache_date).
        What each collection holds, by reader."""
        held = {}
        for name, headers in self.readers.items():
            self.mirrors[name].catch_up(self.api, headers)
            answered = collection(self.api, headers)
            mirrored = self.mirrors[name].enrollments
            assert without_cache_date(mirrored) == without_cache_date(answered), name
            held[name] = answered
        return held


@pytest.fixture
def scene(api: TestClient, accounts: Accounts, database_url: str, tmp_path: Path) -> Scene:
    return Scene(api, accounts, database_url, tmp_path)


def test_the_readme_names_cache_date_as_the_one_exception() -> None:
    text = " ".join(README.read_text().split())
    assert "It then holds exactly what `GET /api/academic/enrollments` answers" in text
    assert (
        "but for `cache_date`: a refresh confirms every enrollment it lists without an event"
        in (text)
    )


def test_a_mirror_of_real_loads_ends_with_what_the_collection_answers(scene: Scene) -> None:
    def student(netid: str, **overrides: Any) -> dict[str, Any]:
        return line(netid, **overrides)

    base = {
        "a0": student("fml0a0"),
        "a1": student("fml0a1"),
        "a2": student("fml0a2"),
        "a3": student("fml0a3"),
        "a4": student("fml0a4"),
        "a5": student("fml0a5"),
        "i0": line("fml0i0", "instructor"),
        "c0": student("fml0c0", confidential=True),
        "c1": student("fml0c1", confidential=True),
        "b0": student("fml0b0", section=OTHER),
        "b1": student("fml0b1", section=OTHER),
    }
    out = scene.load(list(base.values()), "--replace", "--as-of", OLD)
    assert "11 inserted" in out
    held = scene.check()
    assert len(held["full"]) == 11 and len(held["plain"]) == 9

    # API writes through the worker, one of them to a confidential person's record.
    scene.patch(base["a0"]["id"], "2021-01-01T10:00:00Z")
    scene.patch(base["c0"]["id"], "2021-01-02T10:00:00Z")
    scene.check()

    # A refresh taken before those writes (they are kept), changing a sensitive key alone
    # (final_grade), a public one, deleting one enrollment (--replace) and adding one.
    first = dict(base)
    first["a1"] = student("fml0a1", final_grade="B")
    first["a2"] = student("fml0a2", is_active=True)
    del first["b1"]
    first["a6"] = student("fml0a6")
    out = scene.load(list(first.values()), "--replace", "--as-of", "2020-06-02T00:00:00Z")
    assert "1 inserted, 2 updated" in out and "1 removed" in out and "kept 2" in out
    held = scene.check()
    assert held["full"][base["a1"]["id"]]["final_grade"] == "B"
    assert held["full"][base["a0"]["id"]]["course_assessment"]["submit_date"] == (
        "2021-01-01T10:00:00Z"
    )
    assert base["b1"]["id"] not in held["plain"]

    scene.petition("fml0a3")
    scene.patch(base["a3"]["id"], "2021-02-03T10:00:00Z")
    scene.check()

    # A refresh taken after the writes: the SIS's value of a0 wins again; a4 becomes confidential.
    after = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    second = dict(first)
    second["a0"] = student(
        "fml0a0",
        course_assessment={"submit_date": None, "opt_out_date": "2021-01-05T00:00:00Z"},
    )
    second["a3"] = student(
        "fml0a3",
        course_assessment={"submit_date": "2021-02-03T10:00:00Z", "opt_out_date": None},
    )
    second["a4"] = student("fml0a4", confidential=True)
    scene.load(list(second.values()), "--replace", "--as-of", after)
    held = scene.check()
    assert base["a4"]["id"] in held["full"] and base["a4"]["id"] not in held["sensitive"]
    assert base["a4"]["id"] not in held["plain"]
    assert held["full"][base["a0"]["id"]]["course_assessment"]["opt_out_date"] == (
        "2021-01-05T00:00:00Z"
    )

    # Writes while a4 is confidential: only the private reader may know of them.
    scene.patch(base["a4"]["id"], "2021-03-04T10:00:00Z")
    scene.patch(base["a5"]["id"], "2021-03-05T10:00:00Z")
    scene.check()

    # Flips back (a4) and out of confidentiality from the start (c0), in the same refresh as a
    # sensitive change to a4, a deletion of a confidential record (c1) and a new one (c2).
    third = dict(second)
    third["a4"] = student(
        "fml0a4",
        final_grade="C",
        course_assessment={"submit_date": "2021-03-04T10:00:00Z", "opt_out_date": None},
    )
    third["c0"] = student(
        "fml0c0", course_assessment={"submit_date": "2021-01-02T10:00:00Z", "opt_out_date": None}
    )
    del third["c1"]
    third["c2"] = student("fml0c2", confidential=True)
    scene.load(list(third.values()), "--replace", "--as-of", "2020-06-03T00:00:00Z")
    held = scene.check()
    for key in ("a4", "c0"):
        assert base[key]["id"] in held["plain"] and base[key]["id"] in held["sensitive"]
    assert held["sensitive"][base["a4"]["id"]]["final_grade"] == "C"
    assert third["c2"]["id"] in held["full"] and third["c2"]["id"] not in held["plain"]
    assert base["c1"]["id"] not in held["full"]

    # A partial load (no --replace) flips c0 again and changes a public key elsewhere.
    scene.load(
        [student("fml0c0", confidential=True), student("fml0b0", section=OTHER, is_in_session=True)]
    )
    held = scene.check()
    assert base["c0"]["id"] not in held["plain"] and base["c0"]["id"] in held["full"]
    assert held["plain"][base["b0"]["id"]]["is_in_session"] is True

    # The plain reader's copy has no sensitive key; a reader starting now agrees with all three.
    assert all("final_grade" not in e for e in scene.mirrors["plain"].enrollments.values())
    for name, headers in scene.readers.items():
        fresh = Mirror()
        fresh.catch_up(scene.api, headers)
        assert without_cache_date(fresh.enrollments) == without_cache_date(
            scene.mirrors[name].enrollments
        ), name


def test_a_flip_reaches_every_reader_as_it_may_see_it(scene: Scene) -> None:
    """What each reader is shown of a flip: the private reader nothing (no key it sees changed),
    the others a removal, then a creation."""
    netid = "fml1f0"
    record = line(netid, section=OTHER)
    scene.load([record])
    cursors = {name: read_all(scene.api, h)[1] for name, h in scene.readers.items()}

    def shown() -> dict[str, list[tuple[str, str]]]:
        seen = {}
        for name, headers in scene.readers.items():
            events, cursors[name] = read_all(scene.api, headers, cursors[name])
            seen[name] = [(e["type"], e["subject"]) for e in events if e["subject"] == record["id"]]
        return seen

    scene.load([dict(record, confidential=True)])
    assert shown() == {
        "full": [],
        "plain": [("enrollment.deleted", record["id"])],
        "sensitive": [("enrollment.deleted", record["id"])],
    }
    # A reader that begins after the flip never saw the record: nothing names it.
    for name, headers in scene.readers.items():
        late, _cursor = read_all(scene.api, headers)
        named = [e["type"] for e in late if e["subject"] == record["id"]]
        assert named == (["enrollment.created"] if name == "full" else []), name

    scene.load([record])
    assert shown() == {
        "full": [],
        "plain": [("enrollment.created", record["id"])],
        "sensitive": [("enrollment.created", record["id"])],
    }


def test_a_flip_is_filtered_by_the_type_it_is_shown_as(scene: Scene) -> None:
    """A reader without the private scope is shown a flip as enrollment.deleted / .created: a
    `type` filter selects it by that type (a mirror of creations and removals alone stays exact),
    never as the enrollment.updated it is stored as."""
    netid = "fml1f1"
    record = line(netid, section=OTHER)
    scene.load([record])
    plain = scene.readers["plain"]
    wanted = {"type": ["enrollment.created", "enrollment.deleted"]}
    _seen, kept = read_all(scene.api, plain, **wanted)
    _seen, updates = read_all(scene.api, plain, type="enrollment.updated")

    scene.load([dict(record, confidential=True)])
    events, kept = read_all(scene.api, plain, kept, **wanted)
    assert [(e["type"], e["subject"]) for e in events] == [("enrollment.deleted", record["id"])]

    scene.load([record])
    events, kept = read_all(scene.api, plain, kept, **wanted)
    assert [(e["type"], e["subject"]) for e in events] == [("enrollment.created", record["id"])]
    events, updates = read_all(scene.api, plain, updates, type="enrollment.updated")
    assert all(e["type"] == "enrollment.updated" for e in events), events
