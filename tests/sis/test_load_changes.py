"""What a load records of its changes (the events table, origin `sis`), in its own transaction:
created, updated with which representation keys, deleted; confidentiality flips; nothing for what
did not change."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from registrar.auth.scopes import ENROLLMENTS_READ, ENROLLMENTS_READ_SENSITIVE, PEOPLE_PRIVATE
from tests.support.accounts import cli
from tests.support.extracts import SECTION, execute, line, snapshot, write_extract

OTHER = {
    "id": "COSC.001.01-202001-U-10201",
    "lms_section_id": "COSC.001.01-WI20",
    "sis_section_id": "COSC.001.01-WI20",
}


def load(url: str, path: Path, *args: str) -> str:
    code, out, err = cli(url, "load", str(path), *args)
    assert code == 0, err
    return out


def last_position(url: str) -> int:
    return int(execute(url, "SELECT coalesce(max(position), 0) FROM events")[0][0])


def events_after(url: str, position: int) -> list[tuple[str, str, str, str | None, Any]]:
    """(type, subject, origin, netid, changed) of the events after `position`, in order."""
    rows = execute(
        url,
        "SELECT type, subject, origin, netid, changed FROM events WHERE position > :p "
        "ORDER BY position",
        p=position,
    )
    out = []
    for kind, subject, origin, netid, changed in rows:
        if isinstance(changed, str):
            changed = json.loads(changed)
        out.append((kind, subject, origin, netid, changed))
    return out


def test_a_load_records_created_updated_and_deleted(fresh_db: str, tmp_path: Path) -> None:
    first = [line("f001aaa"), line("f002bbb"), line("f003ccc", section=OTHER)]
    load(fresh_db, write_extract(tmp_path / "a.jsonl", first))
    created = events_after(fresh_db, 0)
    assert created == [("enrollment.created", r["id"], "sis", r["netid"], None) for r in first], (
        "one created event per new enrollment, in extract order"
    )

    mark = last_position(fresh_db)
    second = [
        line("f001aaa", final_grade="B"),  # updated: one key
        line(
            "f002bbb",
            is_active=True,
            course_assessment={"submit_date": None, "opt_out_date": "2020-03-07T00:00:00Z"},
        ),
        line("f004ddd"),  # created; f003ccc deleted
    ]
    load(fresh_db, write_extract(tmp_path / "b.jsonl", second), "--replace")
    got = events_after(fresh_db, mark)
    assert sorted(got, key=lambda e: e[1]) == sorted(
        [
            ("enrollment.updated", second[0]["id"], "sis", "f001aaa", ["final_grade"]),
            (
                "enrollment.updated",
                second[1]["id"],
                "sis",
                "f002bbb",
                ["course_assessment", "is_active"],
            ),
            ("enrollment.deleted", first[2]["id"], "sis", "f003ccc", None),
            ("enrollment.created", second[2]["id"], "sis", "f004ddd", None),
        ],
        key=lambda e: e[1],
    )

    # The same extract again changes nothing and records nothing.
    mark = last_position(fresh_db)
    load(fresh_db, write_extract(tmp_path / "c.jsonl", second), "--replace")
    assert events_after(fresh_db, mark) == []


def test_section_and_term_changes_are_recorded_for_their_enrollments(
    fresh_db: str, tmp_path: Path
) -> None:
    records = [line("f001aaa"), line("f002bbb"), line("f003ccc", section=OTHER)]
    load(fresh_db, write_extract(tmp_path / "a.jsonl", records))
    mark = last_position(fresh_db)
    renamed = [dict(r, section=dict(r["section"])) for r in records]
    for r in renamed[:2]:
        r["section"]["lms_section_id"] = "AAAS.010.01-WI20-X"
    # A partial extract: f002bbb is not in it, but its section changed, so its record did too.
    load(fresh_db, write_extract(tmp_path / "b.jsonl", [renamed[0], renamed[2]]))
    got = sorted(events_after(fresh_db, mark), key=lambda e: e[1])
    assert got == sorted(
        [
            ("enrollment.updated", records[0]["id"], "sis", "f001aaa", ["section"]),
            ("enrollment.updated", records[1]["id"], "sis", "f002bbb", ["section"]),
        ],
        key=lambda e: e[1],
    )
    assert SECTION["id"] in records[0]["id"]


def test_a_confidentiality_flip_is_recorded_and_hides_the_records(
    database_url: str, tmp_path: Path, accounts: Any
) -> None:
    plain = accounts.headers([ENROLLMENTS_READ, ENROLLMENTS_READ_SENSITIVE])
    private = accounts.headers([ENROLLMENTS_READ, ENROLLMENTS_READ_SENSITIVE, PEOPLE_PRIVATE])
    mine = [line("f070flp"), line("f070flp", section=OTHER), line("f071stv")]
    load(database_url, write_extract(tmp_path / "a.jsonl", mine))
    for record in mine:
        got = accounts.api.get(f"/api/academic/enrollments/{record['id']}", headers=plain)
        assert got.status_code == 200, got.text
    mark = last_position(database_url)
    flipped = [dict(mine[0], confidential=True), mine[1], mine[2]]
    load(database_url, write_extract(tmp_path / "b.jsonl", flipped))
    # Every enrollment of that person, not only the line that said so; nothing for the others.
    assert sorted(events_after(database_url, mark)) == sorted(
        ("enrollment.updated", r["id"], "sis", "f070flp", ["confidential"]) for r in mine[:2]
    )
    for record in mine[:2]:
        url = f"/api/academic/enrollments/{record['id']}"
        assert accounts.api.get(url, headers=plain).status_code == 404
        assert accounts.api.get(url, headers=private).status_code == 200
    listed = accounts.api.get("/api/academic/enrollments?netid=f070flp", headers=plain)
    assert listed.status_code == 200 and listed.json() == []


def test_a_failed_load_records_nothing(fresh_db: str, tmp_path: Path) -> None:
    load(fresh_db, write_extract(tmp_path / "a.jsonl", [line("f001aaa")]))
    before = snapshot(fresh_db), last_position(fresh_db)
    bad: list[Any] = [line("f001aaa", final_grade="B"), line("f002bbb"), b"{not json"]
    code, _out, err = cli(fresh_db, "load", str(write_extract(tmp_path / "b.jsonl", bad)))
    assert code == 1 and "line 3" in err
    assert (snapshot(fresh_db), last_position(fresh_db)) == before
    assert execute(fresh_db, "SELECT count(*) FROM sis_loads")[0][0] == 1
