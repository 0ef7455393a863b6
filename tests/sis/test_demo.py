"""`registrar demo` and its generator: believable data through the real load path, a working key."""

from __future__ import annotations

import collections
import datetime as dt
import re

from fastapi.testclient import TestClient

from registrar.auth.scopes import ALL_SCOPES
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
    assert terms[0].code == "202003" and terms[0].id == "202003-U"
    assert {t.code[4:] for t in terms} == {"01", "03", "06", "09"}


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
    assert "demo data left as it is" in out and "inserted" not in out
    assert len(snapshot(database_url)["enrollments"]) == 3000
    newest = next(x for x in out.splitlines() if x.startswith("KEY=")).removeprefix("KEY=")
    assert api.post("/api/jwt", headers={"Authorization": newest}).status_code == 200
