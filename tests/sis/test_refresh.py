"""The scheduled SIS refresh (sis/refresh.py) with live processes: `registrar serve --no-worker`
and two `registrar worker` processes refreshing from REGISTRAR_SIS_EXTRACT every 2 s, on SQLite
and PostgreSQL.

- each change of the file is loaded exactly once, however many workers look (and an unchanged
  file is not loaded again);
- a bad extract changes nothing, ends its task `error` at once with the load's line number and
  problem, is not retried, while GETs answer with the last good data; the next change loads;
- a worker SIGKILLed mid-refresh leaves the data whole; the task runs again and completes;
- `registrar sis status`, /metrics and /health say how refreshes went.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Connection, text

from registrar.auth.scopes import ENROLLMENTS_READ, ENROLLMENTS_READ_SENSITIVE
from tests.support.accounts import cli, create_account
from tests.support.databases import make_settings, read
from tests.support.extracts import enrollments, line, snapshot, write_extract
from tests.support.servers import Proc, free_port, login, serve

ENV = {
    "REGISTRAR_SIS_REFRESH_SECONDS": "2",
    "REGISTRAR_LOG_LEVEL": "INFO",
    "REGISTRAR_DB_POOL_SIZE": "4",
    "REGISTRAR_DB_MAX_OVERFLOW": "2",
}
ENROLLMENTS = "/api/academic/enrollments"


def records(count: int, grade: str = "A") -> list[dict[str, Any]]:
    return [line(f"n{i:06d}", final_grade=grade) for i in range(count)]


def attempts(database_url: str) -> list[dict[str, Any]]:
    def rows(connection: Connection) -> list[dict[str, Any]]:
        found = connection.execute(text("SELECT * FROM sis_refreshes ORDER BY id"))
        return [dict(r) for r in found.mappings().all()]

    return read(make_settings(database_url), rows)


def refresh_tasks(database_url: str) -> list[dict[str, Any]]:
    def rows(connection: Connection) -> list[dict[str, Any]]:
        found = connection.execute(
            text("SELECT * FROM tasks WHERE resource = 'sis.refresh' ORDER BY request_date")
        )
        return [dict(r) for r in found.mappings().all()]

    return read(make_settings(database_url), rows)


def wait_for(what: str, check: Callable[[], Any], timeout: float = 90.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def wait_attempts(database_url: str, count: int, last: str) -> list[dict[str, Any]]:
    """Until `count` attempts are recorded and the newest ended `last`."""

    def done() -> list[dict[str, Any]] | None:
        rows = attempts(database_url)
        return rows if len(rows) == count and rows[-1]["status"] == last else None

    return wait_for(f"{count} attempts, the last {last}", done)  # type: ignore[no-any-return]


def loads(database_url: str) -> list[dict[str, Any]]:
    """The refresh tasks that loaded the file (every other one found nothing to do)."""
    return [t for t in refresh_tasks(database_url) if (t["message"] or "").startswith("Refreshed")]


def slots(count: int) -> None:
    """Let `count` refresh slots pass."""
    time.sleep(2.0 * count + 0.5)


@pytest.fixture
def extract(tmp_path: Path) -> Path:
    return tmp_path / "extract.jsonl"


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[list[Proc]]:
    started: list[Proc] = []
    yield started
    for p in started:
        p.ensure_dead()


def test_each_change_once_bad_extracts_and_watching(
    fresh_db: str, extract: Path, tmp_path: Path, processes: list[Proc]
) -> None:
    url = fresh_db
    code, _out, err = cli(url, "migrate")
    assert code == 0, err
    key = create_account(url, "svc-reader", [ENROLLMENTS_READ, ENROLLMENTS_READ_SENSITIVE])
    write_extract(extract, records(300))
    env = {**ENV, "REGISTRAR_SIS_EXTRACT": str(extract)}
    port = free_port()
    processes.append(serve(url, port, "--no-worker", log_file=tmp_path / "api.log", **env))
    for i in range(2):
        processes.append(Proc(url, "worker", log_file=tmp_path / f"worker{i}.log", **env))
    base = f"http://127.0.0.1:{port}"
    headers = login(base, key)

    # The first slot loads the file, once, whichever worker took it.
    first = wait_attempts(url, 1, "ok")[0]
    assert (first["lines"], first["inserted"], first["removed"]) == (300, 300, 0)
    assert len(enrollments(url)) == 300
    # Unchanged: slot after slot, nothing is loaded again.
    slots(3)
    assert len(attempts(url)) == 1
    tasks = refresh_tasks(url)
    assert len(tasks) >= 3, tasks
    assert [t["id"] for t in loads(url)] == [first["task_id"]]
    done = [t for t in tasks if t["status"] != "accepted"]
    assert all(t["status"] == "complete" for t in done), done
    assert any("is unchanged since the refresh of" in t["message"] for t in done), done

    health = httpx.get(f"{base}/health").json()
    assert health["status"] == "ok"
    assert health["sis_refresh"]["last_attempt"] == "ok"
    assert 0 <= health["sis_refresh"]["age_seconds"] < 60
    assert health["sis_refresh"]["last_success"].endswith("Z")

    # A bad extract: the first line would change a grade, the third is bad.
    before = snapshot(url)
    bad = records(300)
    bad[0]["final_grade"] = "B"
    del bad[2]["netid"]
    write_extract(extract, bad)
    failed = wait_attempts(url, 2, "failed")[-1]
    assert failed["message"].startswith("line 3: "), failed
    assert "netid" in failed["message"] and failed["message"].endswith("nothing was loaded")
    assert snapshot(url) == before
    task = next(t for t in refresh_tasks(url) if t["id"] == failed["task_id"])
    assert task["status"] == "error" and task["attempts"] == 1, task
    assert task["message"] == f"['{failed['message']}']"
    one = httpx.get(f"{base}{ENROLLMENTS}/{bad[0]['id']}", headers=headers)
    assert one.status_code == 200 and one.json()["final_grade"] == "A", one.text
    # Not retried: the same bad file stays one failed attempt.
    slots(2)
    assert len(attempts(url)) == 2
    health = httpx.get(f"{base}/health")
    assert health.status_code == 200
    assert health.json()["sis_refresh"]["last_attempt"] == "failed"
    assert health.json()["sis_refresh"]["last_success"] is not None
    metrics = httpx.get(f"{base}/metrics").text
    assert 'registrar_sis_refresh_last_attempt{outcome="failed"} 1.0' in metrics
    assert 'registrar_sis_refresh_last_attempt{outcome="ok"} 0.0' in metrics
    assert "registrar_sis_refresh_failures 1.0" in metrics
    stamp = re.search(
        r"^registrar_sis_refresh_last_success_timestamp_seconds (\S+)$", metrics, re.M
    )
    assert stamp is not None and abs(float(stamp.group(1)) - time.time()) < 120
    code, out, err = cli(url, "sis", "status")
    assert code == 0, err
    assert "last refresh: failed at " in out, out
    assert f"file: {extract} (" in out and "line 3: " in out, out
    assert "last success: " in out and "failed refreshes: 1" in out, out

    # The file changes again (fixed, one line fewer): loaded once, with --replace.
    fixed = records(299)
    fixed[0]["final_grade"] = "B"
    write_extract(extract, fixed)
    last = wait_attempts(url, 3, "ok")[-1]
    assert (last["updated"], last["removed"], last["inserted"]) == (1, 1, 0), last
    assert len(enrollments(url)) == 299
    one = httpx.get(f"{base}{ENROLLMENTS}/{fixed[0]['id']}", headers=headers)
    assert one.json()["final_grade"] == "B", one.text
    slots(2)
    assert len(attempts(url)) == 3
    assert len(loads(url)) == 2
    code, out, err = cli(url, "sis", "status")
    assert code == 0, err
    assert "last refresh: ok at " in out, out
    assert "299 lines: 0 inserted, 1 updated, 298 unchanged, 1 removed" in out, out
    metrics = httpx.get(f"{base}/metrics").text
    assert 'registrar_sis_refresh_last_attempt{outcome="ok"} 1.0' in metrics
    for p in processes:
        assert p.terminate(uvicorn=p is processes[0]) == 0


def test_a_worker_killed_mid_refresh(
    fresh_db: str, extract: Path, tmp_path: Path, processes: list[Proc]
) -> None:
    """SIGKILL while the load runs: nothing of it is committed; the task's lease expires, it runs
    again on the other worker, and the whole file is loaded, once."""
    url = fresh_db
    write_extract(extract, records(300))
    code, _out, err = cli(url, "load", str(extract))
    assert code == 0, err
    before = snapshot(url)
    big = 60_000
    write_extract(extract, records(big, grade="C"))
    env = {**ENV, "REGISTRAR_SIS_EXTRACT": str(extract)}
    victim = Proc(url, "worker", log_file=tmp_path / "victim.log", **env)
    processes.append(victim)
    running = wait_attempts(url, 1, "running")[0]
    time.sleep(0.3)
    victim.kill()
    now = attempts(url)
    assert [a["status"] for a in now] == ["running"], (
        "the load finished before the kill: make the extract bigger"
    )
    assert snapshot(url) == before  # all or nothing: nothing of the load is visible
    # Leases of 2 s: the rescuer's heartbeat must keep its own alive through the whole load.
    processes.append(Proc(url, "worker", log_file=tmp_path / "rescuer.log", **env))
    done = wait_attempts(url, 1, "ok")[0]
    assert done["task_id"] == running["task_id"]  # the same task, run again
    assert (done["lines"], done["inserted"], done["updated"]) == (big, big - 300, 300)
    rows = enrollments(url)
    assert len(rows) == big and {r["final_grade"] for r in rows.values()} == {"C"}
    assert done["task_attempt"] == 2  # the rescuer's run of the task loaded it

    def ended() -> dict[str, Any] | None:
        task = next(t for t in refresh_tasks(url) if t["id"] == running["task_id"])
        return task if task["completed_date"] is not None else None

    task = wait_for("the task's end", ended)
    # Claimed twice, no more: the load renews the lease in its own transaction (on SQLite the
    # rescuer's heartbeat cannot write while its load holds the write lock, and the lease of 2 s
    # lapsed; the first writer after the commit claimed the task a third time).
    assert task["status"] == "complete" and task["attempts"] == 2, task
    assert task["message"].startswith("Refreshed"), task
    assert [t["id"] for t in loads(url)] == [running["task_id"]]
