"""Spec section 6 from the SIS's side, over HTTP: `--as-of` keeps API writes newer than the extract
(and a later extract wins again; between extracts the one loaded last wins), also with `--replace`
and with the worker applying tasks while a load runs; cache_date is confirmed without rewriting
rows; dates before year 1000; statistics in the load's transaction; every problem of a bad line."""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from registrar.auth.scopes import (
    ENROLLMENTS_READ,
    ENROLLMENTS_READ_SENSITIVE,
    ENROLLMENTS_WRITE,
    PEOPLE_PRIVATE,
)
from tests.support.accounts import cli
from tests.support.databases import backend
from tests.support.extracts import execute, line, write_extract
from tests.support.tasks import patch_body, wait_task

SCOPES = [ENROLLMENTS_READ, ENROLLMENTS_READ_SENSITIVE, ENROLLMENTS_WRITE, PEOPLE_PRIVATE]
EXTRACT_VALUE = {"submit_date": "2020-03-05T17:53:46Z", "opt_out_date": None}
API_VALUE = {"submit_date": None, "opt_out_date": "2021-01-02T03:04:05Z"}


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def load(url: str, path: Path, *args: str) -> str:
    code, out, err = cli(url, "load", str(path), *args)
    assert code == 0, err
    return out


def get(accounts: Any, enrollment_id: str) -> dict[str, Any]:
    response = accounts.api.get(
        f"/api/academic/enrollments/{enrollment_id}", headers=accounts.headers(SCOPES)
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def patch(accounts: Any, enrollment_id: str, value: dict[str, Any]) -> None:
    headers = accounts.headers(SCOPES)
    response = accounts.api.patch(
        f"/api/academic/enrollments/{enrollment_id}",
        json={"course_assessment": value},
        headers=headers,
    )
    assert response.status_code == 202, response.text
    assert wait_task(accounts.api, response.headers["Location"], headers)["status"] == "complete"


@pytest.mark.parametrize("replace", [False, True], ids=["upsert", "replace"])
def test_as_of_keeps_newer_api_writes_and_a_later_extract_wins(
    database_url: str, tmp_path: Path, accounts: Any, replace: bool
) -> None:
    flags = ["--replace"] if replace else []
    netid = "f100rpl" if replace else "f100ups"
    record = line(netid, course_assessment=EXTRACT_VALUE)
    other = line(netid + "x")
    extract = write_extract(tmp_path / "x.jsonl", [record, other])
    load(database_url, extract, *flags)
    before_write = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=2)
    patch(accounts, record["id"], API_VALUE)

    # The SIS took this extract before the write reached it: the write is kept, and counted.
    out = load(database_url, extract, "--as-of", iso(before_write), *flags)
    assert "kept 1 API writes" in out and "0 updated" in out, out
    assert get(accounts, record["id"])["course_assessment"] == API_VALUE
    # The default as-of is the file's modification time: the same, for a file written before.
    stamp = before_write.timestamp()
    os.utime(extract, (stamp, stamp))
    assert "kept 1 API writes" in load(database_url, extract, *flags)
    assert get(accounts, record["id"])["course_assessment"] == API_VALUE

    # An extract taken after the write wins: the SIS has seen it and says otherwise.
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2)
    out = load(database_url, extract, "--as-of", iso(later), *flags)
    assert "kept 0 API writes" in out and "1 updated" in out, out
    assert get(accounts, record["id"])["course_assessment"] == EXTRACT_VALUE
    # Between extracts the one loaded last wins, even an older one: as-of protects API writes only.
    changed = write_extract(tmp_path / "y.jsonl", [line(netid, course_assessment=API_VALUE), other])
    out = load(database_url, changed, "--as-of", iso(before_write), *flags)
    assert "kept 0 API writes" in out and "1 updated" in out, out
    assert get(accounts, record["id"])["course_assessment"] == API_VALUE
    out = load(database_url, extract, "--as-of", "2000-01-01T00:00:00Z", *flags)
    assert "kept 0 API writes" in out
    assert get(accounts, record["id"])["course_assessment"] == EXTRACT_VALUE


def test_a_kept_write_does_not_hold_back_the_other_fields(
    database_url: str, tmp_path: Path, accounts: Any
) -> None:
    record = line("f101oth", course_assessment=EXTRACT_VALUE, final_grade="A")
    load(database_url, write_extract(tmp_path / "a.jsonl", [record]))
    since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=2)
    patch(accounts, record["id"], API_VALUE)
    regraded = write_extract(tmp_path / "b.jsonl", [dict(record, final_grade="B")])
    out = load(database_url, regraded, "--as-of", iso(since))
    assert "1 updated" in out and "kept 1 API writes" in out, out
    body = get(accounts, record["id"])
    assert body["final_grade"] == "B" and body["course_assessment"] == API_VALUE


def test_bad_as_of_is_one_line(database_url: str, tmp_path: Path) -> None:
    path = write_extract(tmp_path / "a.jsonl", [line("f102bad")])
    for value in ("yesterday", "2020-03-05T17:53:46+05:00", "2020-02-30T00:00:00Z"):
        code, _out, err = cli(database_url, "load", str(path), "--as-of", value)
        assert code == 1 and err.startswith("error: --as-of must be an ISO 8601 UTC"), err
        assert len(err.strip().splitlines()) == 1


def test_no_update_is_lost_while_the_worker_and_a_load_run_at_once(
    database_url: str, tmp_path: Path, accounts: Any
) -> None:
    """PATCHes applied by the worker while a --replace load of an older extract runs: every one
    of them survives (as-of before them all), and the load's own changes survive too."""
    records = [line(f"f2{n:03d}rc", course_assessment=EXTRACT_VALUE) for n in range(120)]
    load(database_url, write_extract(tmp_path / "a.jsonl", records))
    as_of = iso(dt.datetime.now(dt.UTC) - dt.timedelta(seconds=2))
    # The load changes what the API cannot write (final_grade) and course_assessment as well.
    regraded = [
        dict(r, final_grade="C", course_assessment={"submit_date": None, "opt_out_date": None})
        for r in records
    ]
    big = regraded + [line(f"f3{n:04d}pd") for n in range(3000)]  # a load that takes a while
    path = write_extract(tmp_path / "b.jsonl", big)
    outcome: list[str] = []
    loader = threading.Thread(
        target=lambda: outcome.append(load(database_url, path, "--replace", "--as-of", as_of))
    )
    headers = accounts.headers(SCOPES)
    loader.start()
    locations = []
    for n, record in enumerate(records):
        response = accounts.api.patch(
            f"/api/academic/enrollments/{record['id']}",
            json=patch_body(opt_out=f"2021-01-02T03:04:{n % 60:02d}Z"),
            headers=headers,
        )
        assert response.status_code == 202, response.text
        locations.append(response.headers["Location"])
        if n % 10 == 0:
            time.sleep(0.01)
    loader.join(60)
    assert outcome, "the load did not finish"
    for location in locations:
        assert wait_task(accounts.api, location, headers, timeout=60)["status"] == "complete"
    for n, record in enumerate(records):
        body = get(accounts, record["id"])
        assert body["final_grade"] == "C", body
        assert body["course_assessment"] == {
            "submit_date": None,
            "opt_out_date": f"2021-01-02T03:04:{n % 60:02d}Z",
        }, (n, outcome[0])


def _rows_written(url: str) -> int:
    """Enrollment rows inserted, updated or deleted so far (by anyone)."""
    if backend() == "sqlite":
        return int(execute(url, "SELECT n FROM test_rows_written")[0][0])
    # PostgreSQL's counters arrive when a backend reports them (at the latest when it exits).
    last = -1
    for _ in range(50):
        now = int(
            execute(
                url,
                "SELECT n_tup_ins + n_tup_upd + n_tup_del FROM pg_stat_user_tables "
                "WHERE relname = 'enrollments' AND schemaname = 'public'",
            )[0][0]
        )
        if now == last:
            return now
        last = now
        time.sleep(0.2)
    return last


def _count_rows_written(url: str) -> None:
    """SQLite: triggers count every row written to enrollments (changes() cannot be read from
    another process); PostgreSQL counts them itself."""
    if backend() != "sqlite":
        return
    execute(url, "CREATE TABLE test_rows_written (n INTEGER NOT NULL)")
    execute(url, "INSERT INTO test_rows_written VALUES (0)")
    for event in ("INSERT", "UPDATE", "DELETE"):
        execute(
            url,
            f"CREATE TRIGGER test_count_{event.lower()} AFTER {event} ON enrollments "
            "BEGIN UPDATE test_rows_written SET n = n + 1; END",
        )


def test_an_unchanged_refresh_writes_no_enrollment_and_confirms_them_all(
    fresh_db: str, tmp_path: Path
) -> None:
    from registrar.app import create_app
    from tests.support.accounts import Accounts
    from tests.support.databases import make_settings

    records = [line(f"f4{n:02d}cd") for n in range(40)]
    path = write_extract(tmp_path / "a.jsonl", records)
    load(fresh_db, path, "--replace")
    _count_rows_written(fresh_db)
    from fastapi.testclient import TestClient

    with TestClient(create_app(make_settings(fresh_db)), base_url="http://testserver") as api:
        accounts = Accounts(fresh_db, api)
        first = get(accounts, records[0]["id"])["cache_date"]
        written = _rows_written(fresh_db)
        time.sleep(1.1)  # cache_date has whole seconds
        out = load(fresh_db, path, "--replace")
        assert "40 unchanged" in out
        assert _rows_written(fresh_db) == written, "an unchanged refresh wrote enrollment rows"
        confirmed = get(accounts, records[0]["id"])["cache_date"]
        assert confirmed > first
        listed = api.get(
            "/api/academic/enrollments?pagesize=100", headers=accounts.headers(SCOPES)
        ).json()
        assert {r["cache_date"] for r in listed} == {confirmed}
        # Filters ask the same question of cache_date as reads show it.
        for query, count in ((f">={confirmed}", 40), (f"<{confirmed}", 0), (confirmed, 40)):
            got = api.get(
                f"/api/academic/enrollments?cache_date={query}&pagesize=100",
                headers=accounts.headers(SCOPES),
            )
            assert got.status_code == 200 and len(got.json()) == count, (query, got.text)

        # One changed record: one row written; the others still read as confirmed now.
        time.sleep(1.1)
        changed = [dict(records[0], final_grade="B"), *records[1:]]
        out = load(fresh_db, write_extract(tmp_path / "b.jsonl", changed), "--replace")
        assert "1 updated, 39 unchanged" in out, out
        assert _rows_written(fresh_db) == written + 1
        latest = {get(accounts, r["id"])["cache_date"] for r in records}
        assert len(latest) == 1 and latest.pop() > confirmed

        # A partial load confirms what it lists (and only that): the others keep theirs.
        time.sleep(1.1)
        load(fresh_db, write_extract(tmp_path / "c.jsonl", records[:1]))
        assert (
            get(accounts, records[0]["id"])["cache_date"]
            > get(accounts, records[1]["id"])["cache_date"]
        )


def test_dates_before_year_1000_load_and_read_back(
    database_url: str, tmp_path: Path, accounts: Any
) -> None:
    """Issue 9 item 6: stored and read back exactly, as PATCH does; no 500 anywhere."""
    early = {"submit_date": "0999-05-01T00:00:00Z", "opt_out_date": None}
    record = line("f103old", course_assessment=early)
    load(database_url, write_extract(tmp_path / "a.jsonl", [record]))
    assert get(accounts, record["id"])["course_assessment"] == early
    headers = accounts.headers(SCOPES)
    for path in (
        "/api/academic/enrollments?netid=f103old",
        f"/api/academic/enrollments?section.id={record['section']['id']}&pagesize=1000",
        "/api/academic/enrollments?pagesize=1000",
        "/api/academic/enrollments?course_assessment.submit_date=<1000-01-01T00:00:00Z",
    ):
        response = accounts.api.get(path, headers=headers)
        assert response.status_code == 200, (path, response.text)
    found = accounts.api.get(
        "/api/academic/enrollments?course_assessment.submit_date=<1000-01-01T00:00:00Z",
        headers=headers,
    ).json()
    assert [r["id"] for r in found] == [record["id"]]
    # The same date through PATCH reads back the same.
    patch(accounts, record["id"], {"submit_date": None, "opt_out_date": "0999-05-02T00:00:00Z"})
    assert get(accounts, record["id"])["course_assessment"]["opt_out_date"] == (
        "0999-05-02T00:00:00Z"
    )


def _has_statistics(url: str) -> bool:
    if backend() == "sqlite":
        return bool(
            execute(url, "SELECT count(*) FROM sqlite_stat1 WHERE tbl = 'enrollments'")[0][0]
        )
    return bool(execute(url, "SELECT count(*) FROM pg_stats WHERE tablename = 'enrollments'")[0][0])


def test_statistics_commit_with_the_load_and_come_back_when_missing(
    fresh_db: str, tmp_path: Path
) -> None:
    """Issue 9 item 8: ANALYZE runs in the load's transaction, so no commit leaves new data
    without statistics; a database that lost them gets them back at the next load."""
    path = write_extract(tmp_path / "a.jsonl", [line(f"f5{n:02d}st") for n in range(30)])
    load(fresh_db, path)
    assert _has_statistics(fresh_db)
    # As a load killed between its commit and its ANALYZE left it, before this change.
    if backend() == "sqlite":
        execute(fresh_db, "DELETE FROM sqlite_stat1")
    else:
        execute(fresh_db, "DELETE FROM pg_statistic WHERE starelid = 'enrollments'::regclass")
    assert not _has_statistics(fresh_db)
    assert "30 unchanged" in load(fresh_db, path)
    assert _has_statistics(fresh_db)


def test_a_bad_line_names_every_problem(fresh_db: str, tmp_path: Path) -> None:
    """Issue 11 item 12."""
    bad = line("f104bad", is_active="yes", credit_hours_earned=-1, grade="A")
    bad["section"] = {"id": bad["section"]["id"], "lms_section_id": None}
    code, _out, err = cli(fresh_db, "load", str(write_extract(tmp_path / "a.jsonl", [bad])))
    assert code == 1 and len(err.strip().splitlines()) == 1, err
    for problem in (
        'unknown key(s): "grade"',
        "is_active must be true or false",
        "section: missing key(s): sis_section_id",
        "credit_hours_earned must be a number",
    ):
        assert problem in err, err
    assert err.count("line 1:") == 1 and "nothing was loaded" in err
