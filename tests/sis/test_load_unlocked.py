"""A refresh (`--replace` from a file) on SQLite reads and stages before it takes the write lock
(sis/service.py, "before the write lock"): a PATCH sent while it parses is answered 202 at once,
its task is applied, and the load keeps that write as if it had held the lock from its start.

Each load runs in this process on a thread of its own, with a hook on its parse phase (its first
progress report: the lines are staged, the write transaction not begun), and the PATCHes go over
HTTP to the app with its in-process worker. On PostgreSQL the load holds the API write lock from
its start: the PATCH is answered 202 all the same, and its task applied after the load.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from registrar.auth.scopes import (
    ENROLLMENTS_READ,
    ENROLLMENTS_READ_SENSITIVE,
    ENROLLMENTS_WRITE,
    PEOPLE_PRIVATE,
)
from registrar.db.engine import create_database
from registrar.sis.service import LoadResult, load
from tests.support.accounts import cli
from tests.support.databases import backend, make_settings
from tests.support.extracts import enrollments, line, write_extract
from tests.support.tasks import wait_task

SCOPES = [ENROLLMENTS_READ, ENROLLMENTS_READ_SENSITIVE, ENROLLMENTS_WRITE, PEOPLE_PRIVATE]
API_VALUE = {"submit_date": None, "opt_out_date": "2021-01-02T03:04:05Z"}
sqlite_only = pytest.mark.skipif(backend() != "sqlite", reason="SQLite's write lock")


def records(prefix: str, count: int = 50) -> list[dict[str, Any]]:
    return [line(f"{prefix}{n:03d}ul") for n in range(count)]


def extract(path: Path, lines: list[dict[str, Any]]) -> Path:
    """An extract taken 10 s ago (its modification time, the default as-of)."""
    write_extract(path, lines)
    stamp = time.time() - 10
    os.utime(path, (stamp, stamp))
    return path


def load_while(
    url: str, path: Path, during: Callable[[], None], as_of: dt.datetime | None = None
) -> LoadResult:
    """`load(path, replace=True)` on a thread, running `during()` in its parse phase (it waits
    for it): the load's result."""
    called: list[bool] = []
    outcome: list[LoadResult] = []
    failed: list[BaseException] = []

    def hook(_lines: int, _bytes: int) -> None:
        if not called:
            called.append(True)
            during()

    async def run() -> LoadResult:
        db = create_database(make_settings(url))
        try:
            return await load(db, path, replace=True, as_of=as_of, on_batch=hook)
        finally:
            await db.dispose()

    def main() -> None:
        try:
            outcome.append(asyncio.run(run()))
        except BaseException as exc:
            failed.append(exc)

    thread = threading.Thread(target=main)
    thread.start()
    thread.join(120)
    assert not thread.is_alive(), "the load did not finish"
    if failed:
        raise failed[0]
    assert called, "the load never reported its parse phase"
    return outcome[0]


def write_lock_free(url: str) -> bool:
    """Whether another connection gets SQLite's write lock at some moment within about 2 s. A
    load holding it holds it throughout; the test app's own worker, scheduler and deliverer take
    it for a moment now and then (one such moment failed a single try, timeout 0, in the full
    suite), so one success among tries says the load does not hold it."""
    for _ in range(40):
        other = sqlite3.connect(make_url(url).database or "", timeout=0, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
            return True
        except sqlite3.OperationalError as exc:
            assert "locked" in str(exc), exc
        finally:
            other.close()
        time.sleep(0.05)
    return False


def test_a_patch_sent_while_a_refresh_parses_is_accepted_and_kept(
    database_url: str, tmp_path: Path, accounts: Any
) -> None:
    lines = records("f5")
    load_while(database_url, extract(tmp_path / "a.jsonl", lines), lambda: None)
    # The refresh changes one line; PATCHes reach that row and one whose line it skips.
    lines[1] = dict(lines[1], final_grade="C")
    path = extract(tmp_path / "b.jsonl", lines)
    headers = accounts.headers(SCOPES)
    locations: list[str] = []
    accepted_while_parsing: list[bool] = []

    def during() -> None:
        if backend() == "sqlite":
            # The staged lines are in TEMP tables, in an open transaction: no write lock.
            assert write_lock_free(database_url)
        for record in lines[:2]:
            response = accounts.api.patch(
                f"/api/academic/enrollments/{record['id']}",
                json={"course_assessment": API_VALUE},
                headers=headers,
            )
            assert response.status_code == 202, response.text
            locations.append(response.headers["Location"])
        accepted_while_parsing.append(True)  # the load waits for this function to return
        if backend() == "sqlite":
            # Applied while the load parses: the load must find and keep them.
            for location in locations:
                assert wait_task(accounts.api, location, headers)["status"] == "complete"

    result = load_while(database_url, path, during)
    assert accepted_while_parsing == [True]
    for location in locations:
        assert wait_task(accounts.api, location, headers, timeout=30)["status"] == "complete"
    assert (result.inserted, result.updated, result.removed) == (0, 1, 0), result
    assert result.unchanged == len(lines) - 1
    # SQLite: both writes were applied before the load's write transaction, after its as-of:
    # kept, and counted (the skipped line's row too). PostgreSQL: applied after the load.
    assert result.kept == (2 if backend() == "sqlite" else 0), result
    rows = enrollments(database_url)
    assert len(rows) == len(lines)
    for record in lines[:2]:
        response = accounts.api.get(f"/api/academic/enrollments/{record['id']}", headers=headers)
        assert response.status_code == 200, response.text
        assert response.json()["course_assessment"] == API_VALUE, response.json()
    assert rows[lines[1]["id"]]["final_grade"] == "C"
    # A refresh of the same file again changes nothing and keeps both writes.
    again = load_while(database_url, path, lambda: None)
    assert (again.updated, again.unchanged, again.kept) == (0, len(lines), 2), again


@sqlite_only
def test_a_load_committed_while_a_refresh_parses_makes_it_take_the_lock_first(
    database_url: str, tmp_path: Path
) -> None:
    """Another load commits between the refresh's reading of the hashes and its write lock: the
    refresh starts again holding the lock, and its result is as if it came after that load."""
    lines = records("f6")
    path = extract(tmp_path / "a.jsonl", lines)
    load_while(database_url, path, lambda: None)
    newcomer = line("f6new")
    partial = write_extract(tmp_path / "partial.jsonl", [dict(lines[2], final_grade="D"), newcomer])

    def during() -> None:
        # `registrar load` on a thread of its own (the hook runs on the refresh's event loop).
        done: list[tuple[int, str, str]] = []
        other = threading.Thread(
            target=lambda: done.append(cli(database_url, "load", str(partial)))
        )
        other.start()
        other.join(60)
        assert done and done[0][0] == 0, done

    result = load_while(database_url, path, during)
    assert (result.inserted, result.updated, result.removed) == (0, 1, 1), result
    rows = enrollments(database_url)
    assert newcomer["id"] not in rows
    assert rows[lines[2]["id"]]["final_grade"] == "A"
    assert len(rows) == len(lines)


@sqlite_only
def test_a_refresh_as_of_after_its_start_holds_the_lock_from_the_start(
    database_url: str, tmp_path: Path
) -> None:
    lines = records("f7")
    path = extract(tmp_path / "a.jsonl", lines)
    load_while(database_url, path, lambda: None)
    free: list[bool] = []
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
    load_while(database_url, path, lambda: free.append(write_lock_free(database_url)), later)
    assert free == [False]
    load_while(database_url, path, lambda: free.append(write_lock_free(database_url)))
    assert free == [False, True]
