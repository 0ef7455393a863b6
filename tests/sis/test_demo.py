"""`registrar demo` and its generator: believable data through the real load path, a working key."""

from __future__ import annotations

import collections
import datetime as dt
import itertools
import re
from pathlib import Path

from fastapi.testclient import TestClient

from registrar.auth.scopes import ALL_SCOPES
from registrar.sis import seeds
from registrar.sis.demo import calendar, generate
from registrar.sis.records import check
from tests.support.accounts import cli
from tests.support.extracts import snapshot

NETID = re.compile(r"f\d{3}[a-z0-9]{3}")
TODAY = dt.date(2024, 5, 1)  # spring 2024 is in session


def test_calendar_codes() -> None:
    terms, current = calendar(TODAY)
    assert terms[current].code == "202403" and terms[current].lms == "SP24"
    assert terms[current + 1].code == "202406" and terms[current + 1].lms == "SU24"
    # History reaches back to the seeds' era (their winter 2020 and a range over 2019).
    assert terms[0].code == "201901" and terms[0].id == "201901-U"
    assert [t.index for t in terms] == list(range(len(terms)))
    assert {t.code[4:] for t in terms} == {"01", "03", "06", "09"}
    # No gaps: each term is in session until the next one starts.
    for before, after in itertools.pairwise(terms):
        assert before.next_start == after.start


def test_every_day_of_a_leap_year_has_a_term_in_session_and_active_ones() -> None:
    """The demo's data on any day: `is_in_session=true` and `is_active=true` are never empty."""
    day = dt.date(2024, 1, 1)
    days = 0
    while day.year == 2024:
        terms, current = calendar(day)
        assert terms[current].in_session(day) and terms[current].active(day), day
        assert [t for t in terms if t.in_session(day)] == [terms[current]], day
        assert terms[current + 1].active(day) and not terms[current + 1].in_session(day), day
        records = list(generate(120, seed=3, today=day))
        assert len(records) == 120
        in_session = [r for r in records if r["is_in_session"]]
        assert in_session and all(r["is_active"] for r in in_session), day
        assert {r["term"]["sis_term_code"] for r in in_session} == {terms[current].code}, day
        assert any(r["is_active"] and not r["is_in_session"] for r in records), day
        day += dt.timedelta(days=1)
        days += 1
    assert days == 366


def test_the_seeds_own_records_are_in_the_demo() -> None:
    records = {r["id"]: r for r in generate(500, seed=5, today=TODAY)}
    instructor = records[seeds.SEED_002_ID]
    assert instructor["netid"] == "f002nkd" and instructor["role"] == "instructor"
    assert instructor["section"] == seeds.SECTION_202001
    assert instructor["term"] == {
        "id": "202001-U",
        "lms_term_id": "WI20",
        "sis_ptrm_code": "U",
        "sis_term_code": "202001",
    }
    assert not instructor["is_active"] and not instructor["is_in_session"]
    sensitive = records[seeds.SEED_002_SENSITIVE_ID]
    assert sensitive["final_grade"] == "A" and sensitive["credit_hours_earned"] == 1
    assert sensitive["course_assessment"] == {
        "submit_date": "2020-03-05T17:53:46Z",
        "opt_out_date": None,
    }
    assert seeds.SEED_000_ID in records
    netids = {r["netid"] for r in records.values()}
    assert {"f006kdf", "f006s0b"} <= netids
    # No generated record reuses a seed section (a section must be described one way).
    sections = collections.defaultdict(set)
    for r in records.values():
        sections[r["section"]["id"]].add(r["section"]["lms_section_id"])
    assert all(len(v) == 1 for v in sections.values())


def test_generator_is_valid_believable_and_repeatable() -> None:
    records = list(generate(5000, seed=11, today=TODAY))
    assert len(records) == 5000
    assert records == list(generate(5000, seed=11, today=TODAY))
    ids = [r["id"] for r in records]
    assert len(set(ids)) == len(ids)
    for number, record in enumerate(records, start=1):
        check(record, number)  # raises on anything the loader would refuse
        assert NETID.fullmatch(record["netid"])
        assert re.fullmatch(r"[A-Z]{2,4}\.\d{3}\.\d{2}-\d{6}-U-\d{5}", record["section"]["id"])
        assert record["section"]["lms_section_id"].endswith(record["term"]["lms_term_id"])
        code = record["term"]["sis_term_code"]
        if record["netid"] in seeds.SEED_PEOPLE:
            continue  # the seeds' records follow their pages (checked below)
        if code > "202403":  # the future: no grades, active, not in session
            assert record["final_grade"] is None and record["is_active"]
            assert not record["is_in_session"]
        elif code == "202403":
            assert record["is_in_session"] and record["is_active"]
            assert record["final_grade"] is None
        else:
            assert not record["is_active"] and not record["is_in_session"]
            if record["role"] == "student":
                assert record["final_grade"] is not None
                assert record["credit_hours_earned"] in (0, 1)
    roles = collections.Counter(r["role"] for r in records)
    assert roles["student"] > 0.85 * len(records) and roles["instructor"] > 0
    schools = collections.Counter(r["school_id"] for r in records)
    assert schools.most_common(1)[0][0] == "UG" and len(schools) >= 3
    people = {r["netid"]: r.get("confidential", False) for r in records}
    share = sum(people.values()) / len(people)
    assert 0.005 < share < 0.08
    assert any(r["course_assessment"] for r in records)


def test_demo_loads_data_and_prints_a_working_key(database_url: str, api: TestClient) -> None:
    code, out, err = cli(database_url, "demo", "--enrollments", "3000", "--seed", "5")
    assert code == 0, err
    assert "3000 inserted" in out
    key = next(x for x in out.splitlines() if x.startswith("KEY=")).removeprefix("KEY=")
    assert 'curl -s -X POST -H "Authorization: $KEY" http://127.0.0.1:8000/api/jwt' in out
    assert "shown only now; any earlier demo key no longer works" in out
    login = api.post("/api/jwt", headers={"Authorization": key})
    assert login.status_code == 200, login.text
    assert set(login.json()["accepted_scopes"]) == set(ALL_SCOPES)
    data = snapshot(database_url)
    assert len(data["enrollments"]) == 3000
    assert any(bool(confidential) for _netid, confidential in data["people"])

    headers = {"Authorization": f"Bearer {login.json()['jwt']}"}
    listed = api.get("/api/academic/enrollments", params={"pagesize": 5}, headers=headers)
    assert listed.status_code == 200, listed.text
    assert len(listed.json()) == 5
    one = listed.json()[0]
    assert api.get(f"/api/academic/enrollments/{one['id']}", headers=headers).status_code == 200

    # Again: nothing fails, the data is unchanged, the account gets a new key, the old one stops.
    code, out, err = cli(database_url, "demo", "--enrollments", "3000", "--seed", "5")
    assert code == 0, err
    assert "0 inserted, 0 updated, 3000 unchanged" in out
    new_key = next(x for x in out.splitlines() if x.startswith("KEY=")).removeprefix("KEY=")
    assert new_key != key
    assert api.post("/api/jwt", headers={"Authorization": key}).status_code == 401
    assert api.post("/api/jwt", headers={"Authorization": new_key}).status_code == 200

    # --if-empty (what `make run` uses) leaves existing data alone but still hands out a key.
    code, out, err = cli(database_url, "demo", "--enrollments", "50", "--seed", "9", "--if-empty")
    assert code == 0, err
    assert "generated data left as it is" in out and "inserted" not in out
    assert len(snapshot(database_url)["enrollments"]) == 3000
    newest = next(x for x in out.splitlines() if x.startswith("KEY=")).removeprefix("KEY=")
    assert api.post("/api/jwt", headers={"Authorization": newest}).status_code == 200


def test_a_rerun_keeps_the_saved_key_and_says_so(
    database_url: str, api: TestClient, tmp_path: Path
) -> None:
    """What `make run` does on every run: the key saved by the first run keeps working."""
    key_file = tmp_path / "demo-key"
    args = ("demo", "--enrollments", "200", "--if-empty", "--key-file", str(key_file))
    code, out, err = cli(database_url, *args, "--url", "http://127.0.0.1:8001")
    assert code == 0, err
    first = next(x for x in out.splitlines() if x.startswith("KEY=")).removeprefix("KEY=")
    assert key_file.read_text().strip() == first
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert "saved in" in out and "any earlier demo key no longer works" in out
    # The curl lines name the port the API will be served on.
    assert "http://127.0.0.1:8001/api/jwt" in out and "127.0.0.1:8000" not in out
    code, out, err = cli(database_url, *args)
    assert code == 0, err
    again = next(x for x in out.splitlines() if x.startswith("KEY=")).removeprefix("KEY=")
    assert again == first and "still works (unchanged)" in out
    assert api.post("/api/jwt", headers={"Authorization": first}).status_code == 200
    # A saved key that no longer works (another run without the file) is replaced, and saved.
    code, out, err = cli(database_url, "demo", "--enrollments", "200", "--if-empty")
    assert code == 0, err
    code, out, err = cli(database_url, *args)
    assert code == 0, err
    replaced = next(x for x in out.splitlines() if x.startswith("KEY=")).removeprefix("KEY=")
    assert replaced != first and key_file.read_text().strip() == replaced
    assert api.post("/api/jwt", headers={"Authorization": replaced}).status_code == 200
    assert api.post("/api/jwt", headers={"Authorization": first}).status_code == 401


def test_demo_refuses_fewer_enrollments_than_its_seeds(database_url: str) -> None:
    code, _out, err = cli(database_url, "demo", "--enrollments", "3")
    assert code == 1 and "at least" in err
    code, _out, err = cli(database_url, "demo", "--url", "ftp://x")
    assert code == 1 and "--url" in err
