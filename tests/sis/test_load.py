"""`registrar load`: counts, upserts, --replace, and all-or-nothing on a bad line."""

from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path
from typing import Any

import orjson
import pytest

from registrar.sis.demo import generate
from tests.support.accounts import cli
from tests.support.extracts import SECTION, enrollments, execute, line, snapshot, write_extract

OTHER_SECTION = {
    "id": "COSC.001.01-202001-U-10201",
    "lms_section_id": "COSC.001.01-WI20",
    "sis_section_id": "COSC.001.01-WI20",
}


def three() -> list[dict[str, Any]]:
    return [
        line("f002nkd", "instructor"),
        line("f001nkx"),
        line(
            "f003abc",
            section=OTHER_SECTION,
            course_assessment=None,
            final_grade=None,
            credit_hours_earned=None,
            confidential=True,
        ),
    ]


def load(database_url: str, path: Path, *args: str) -> tuple[int, str, str]:
    return cli(database_url, "load", str(path), *args)


def test_good_load_inserts_and_counts(fresh_db: str, tmp_path: Path) -> None:
    before = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=2)
    code, out, err = load(fresh_db, write_extract(tmp_path / "x.jsonl", three()))
    assert code == 0, err
    assert "3 inserted, 0 updated, 0 unchanged, 0 removed" in out
    rows = enrollments(fresh_db)
    assert set(rows) == {
        "AAAS.010.01-202001-U-10188-f002nkd-instructor",
        "AAAS.010.01-202001-U-10188-f001nkx-student",
        "COSC.001.01-202001-U-10201-f003abc-student",
    }
    student = rows["AAAS.010.01-202001-U-10188-f001nkx-student"]
    assert student["final_grade"] == "A"
    assert student["credit_hours_earned"] == 1.0
    assert student["course_opt_out_date"] is None
    assert str(student["course_submit_date"]).startswith("2020-03-05")
    assert student["section_id"] == SECTION["id"] and student["term_id"] == "202001-U"
    # cache_date is the time of the load, the same for every row, not the extract's value.
    cache_dates = {str(r["cache_date"]) for r in rows.values()}
    assert len(cache_dates) == 1
    assert not cache_dates.pop().startswith("2020-06-15")
    # pk follows the extract's order.
    by_pk = sorted(rows.values(), key=lambda r: r["pk"])
    assert [r["netid"] for r in by_pk] == ["f002nkd", "f001nkx", "f003abc"]
    data = snapshot(fresh_db)
    assert [(n, bool(c)) for n, c in data["people"]] == [
        ("f001nkx", False),
        ("f002nkd", False),
        ("f003abc", True),
    ]
    assert len(data["sections"]) == 2 and len(data["terms"]) == 1
    assert before.year >= 2020


def test_reload_is_unchanged_and_refreshes_cache_date(fresh_db: str, tmp_path: Path) -> None:
    path = write_extract(tmp_path / "x.jsonl", three())
    assert load(fresh_db, path)[0] == 0
    first = enrollments(fresh_db)
    code, out, err = load(fresh_db, path)
    assert code == 0, err
    assert "0 inserted, 0 updated, 3 unchanged, 0 removed" in out
    second = enrollments(fresh_db)
    for key, row in second.items():
        assert row["pk"] == first[key]["pk"]
        assert str(row["cache_date"]) >= str(first[key]["cache_date"])
        assert {k: v for k, v in row.items() if k != "cache_date"} == {
            k: v for k, v in first[key].items() if k != "cache_date"
        }


def test_update_keeps_pk(fresh_db: str, tmp_path: Path) -> None:
    assert load(fresh_db, write_extract(tmp_path / "a.jsonl", three()))[0] == 0
    before = enrollments(fresh_db)
    changed = three()
    changed[1]["final_grade"] = "B+"
    changed[1]["course_assessment"] = {"submit_date": None, "opt_out_date": "2020-03-06T10:00:00Z"}
    changed.append(line("f004new", section=OTHER_SECTION))
    code, out, err = load(fresh_db, write_extract(tmp_path / "b.jsonl", changed))
    assert code == 0, err
    assert "1 inserted, 1 updated, 2 unchanged, 0 removed" in out
    after = enrollments(fresh_db)
    key = "AAAS.010.01-202001-U-10188-f001nkx-student"
    assert after[key]["pk"] == before[key]["pk"]
    assert after[key]["final_grade"] == "B+"
    assert after[key]["course_submit_date"] is None
    assert str(after[key]["course_opt_out_date"]).startswith("2020-03-06")
    assert after["COSC.001.01-202001-U-10201-f004new-student"]["pk"] > max(
        r["pk"] for r in before.values()
    )


def test_replace_removes_absent_and_keeps_audit(fresh_db: str, tmp_path: Path) -> None:
    assert load(fresh_db, write_extract(tmp_path / "a.jsonl", three()))[0] == 0
    gone = "AAAS.010.01-202001-U-10188-f002nkd-instructor"
    execute(
        fresh_db,
        "INSERT INTO enrollment_audit (enrollment_id, task_id, actor_sub, changed_at) "
        "VALUES (:e, :t, 'someone', CURRENT_TIMESTAMP)",
        e=gone,
        t="a" * 24,
    )
    smaller = write_extract(tmp_path / "b.jsonl", three()[1:])
    code, out, err = load(fresh_db, smaller)  # without --replace nothing goes
    assert code == 0, err
    assert "0 removed" in out and gone in enrollments(fresh_db)
    code, out, err = load(fresh_db, smaller, "--replace")
    assert code == 0, err
    assert "0 inserted, 0 updated, 2 unchanged, 1 removed" in out
    assert gone not in enrollments(fresh_db)
    assert snapshot(fresh_db)["enrollment_audit"] == [(1, gone)]


def test_blank_lines_are_skipped_and_counted(fresh_db: str, tmp_path: Path) -> None:
    records: list[Any] = three()
    records.insert(1, "")
    records.insert(2, "   ")
    path = write_extract(tmp_path / "x.jsonl", records)
    code, out, err = load(fresh_db, path)
    assert code == 0, err
    assert "loaded 3 enrollments" in out


def _without(key: str) -> Any:
    def mutate(record: dict[str, Any]) -> Any:
        del record[key]
        return record

    return mutate


def _set(key: str, value: Any, nested: str | None = None) -> Any:
    def mutate(record: dict[str, Any]) -> Any:
        (record[nested] if nested else record)[key] = value
        return record

    return mutate


BAD_LINES = [
    ("bad JSON", lambda r: orjson.dumps(r)[:-3], "not valid JSON"),
    ("not an object", lambda r: [r], "must be a JSON object"),
    ("not UTF-8", lambda r: orjson.dumps(r).replace(b"f001nkx", b"f001nk\xff"), "not valid UTF-8"),
    ("missing key", _without("netid"), "missing key(s): netid"),
    (
        "missing nested key",
        lambda r: (r["term"].pop("sis_term_code"), r)[1],
        "term: missing key(s): sis_term_code",
    ),
    ("unknown key", _set("grade", "A"), 'unknown key(s): "grade"'),
    ("wrong type", _set("is_active", "yes"), "is_active must be true or false"),
    ("number as string", _set("credit_hours_earned", "1"), "credit_hours_earned must be a number"),
    ("bool as number", _set("credit_hours_earned", True), "credit_hours_earned must be a number"),
    ("netid too long", lambda r: {**r, "netid": "x" * 65}, "netid is longer than 64"),
    ("id mismatch", _set("id", "AAAS.010.01-202001-U-10188-f001nkx-instructor"), "id must be"),
    (
        "bad date",
        _set("course_assessment", {"submit_date": "2020-03-05 17:53", "opt_out_date": None}),
        "course_assessment.submit_date must be an ISO 8601 UTC date-time",
    ),
    (
        "not UTC",
        _set(
            "course_assessment", {"submit_date": "2020-03-05T17:53:46+05:00", "opt_out_date": None}
        ),
        "course_assessment.submit_date must be an ISO 8601 UTC",
    ),
    (
        "impossible date",
        _set("course_assessment", {"submit_date": "2020-02-30T17:53:46Z", "opt_out_date": None}),
        "course_assessment.submit_date must be an ISO 8601 UTC",
    ),
    (
        "both assessment dates",
        _set(
            "course_assessment",
            {"submit_date": "2020-03-05T17:53:46Z", "opt_out_date": "2020-03-06T17:53:46Z"},
        ),
        "at most one of submit_date and opt_out_date",
    ),
    (
        "assessment missing key",
        _set("course_assessment", {"submit_date": None}),
        "course_assessment: missing key(s): opt_out_date",
    ),
    ("confidential not bool", _set("confidential", 1), "confidential must be true or false"),
    ("NUL character", _set("school_id", "U\x00G"), "school_id contains a NUL character"),
    (
        "section described twice",
        _set("lms_section_id", "OTHER", nested="section"),
        "differs from its description on line 1",
    ),
    ("duplicate id", lambda r: line("f002nkd", "instructor"), "duplicate id"),
]


@pytest.mark.parametrize(("fault", "mutate", "message"), BAD_LINES, ids=[b[0] for b in BAD_LINES])
def test_bad_line_stops_the_load_and_writes_nothing(
    database_url: str, tmp_path: Path, fault: str, mutate: Any, message: str
) -> None:
    # The module's database holds a first load; every failed load must leave it exactly so.
    base = write_extract(tmp_path / "base.jsonl", [line("f009aaa"), line("f002nkd", "instructor")])
    code, _out, err = load(database_url, base)
    assert code == 0, err
    before = snapshot(database_url)
    good = three()
    records: list[Any] = [good[0], good[2], "", mutate(copy.deepcopy(good[1])), line("f005zzz")]
    code, out, err = load(database_url, write_extract(tmp_path / "bad.jsonl", records))
    assert code == 1, (fault, out)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "line 4: " in lines[0], lines[0]
    assert message in lines[0], lines[0]
    assert "nothing was loaded" in lines[0]
    assert "Traceback" not in err
    assert snapshot(database_url) == before


def test_bad_line_after_many_batches_rolls_everything_back(fresh_db: str, tmp_path: Path) -> None:
    records: list[Any] = list(generate(45_000, seed=3, today=dt.date(2024, 5, 1)))
    assert load(fresh_db, write_extract(tmp_path / "a.jsonl", records[:100]))[0] == 0
    before = snapshot(fresh_db)
    records.insert(44_000, {**records[44_000], "is_in_session": None})
    code, _out, err = load(fresh_db, write_extract(tmp_path / "b.jsonl", records))
    assert code == 1
    assert "line 44001: is_in_session must be true or false" in err
    assert snapshot(fresh_db) == before


@pytest.mark.parametrize("kind", ["missing", "directory", "unreadable"])
def test_unreadable_file_is_one_line(database_url: str, tmp_path: Path, kind: str) -> None:
    path = tmp_path / "nope.jsonl"
    if kind == "directory":
        path = tmp_path
    elif kind == "unreadable":
        path.write_text("{}\n")
        path.chmod(0)
        try:
            path.open("rb").close()
            pytest.skip("running as a user that reads mode-0 files")
        except PermissionError:
            pass
    code, out, err = load(database_url, path)
    assert code == 1
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("error: cannot read")
    assert "Traceback" not in err + out


def test_empty_file_loads_nothing(fresh_db: str, tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_bytes(b"")
    code, out, err = load(fresh_db, path)
    assert code == 0, err
    assert "0 inserted, 0 updated, 0 unchanged, 0 removed" in out


def test_confidential_any_line_and_extract_is_authoritative(fresh_db: str, tmp_path: Path) -> None:
    other = line("f001nkx", section=OTHER_SECTION, confidential=True)
    code, _out, err = load(fresh_db, write_extract(tmp_path / "a.jsonl", [line("f001nkx"), other]))
    assert code == 0, err
    assert ("f001nkx", True) in [(n, bool(c)) for n, c in snapshot(fresh_db)["people"]]
    # The next extract no longer flags the person: the SIS lifted the FERPA hold.
    code, out, err = load(fresh_db, write_extract(tmp_path / "b.jsonl", [line("f001nkx")]))
    assert code == 0, err
    assert "1 added or changed" in out
    assert ("f001nkx", False) in [(n, bool(c)) for n, c in snapshot(fresh_db)["people"]]


def test_replace_with_an_empty_extract_is_refused(fresh_db: str, tmp_path: Path) -> None:
    assert load(fresh_db, write_extract(tmp_path / "a.jsonl", three()))[0] == 0
    before = snapshot(fresh_db)
    path = tmp_path / "empty.jsonl"
    path.write_bytes(b"\n")
    code, _out, err = load(fresh_db, path, "--replace")
    assert code == 1
    assert "no enrollments" in err and len(err.strip().splitlines()) == 1
    assert snapshot(fresh_db) == before


def test_loaded_data_over_http(database_url: str, tmp_path: Path, accounts: Any) -> None:
    from registrar.auth.scopes import ENROLLMENTS_READ, ENROLLMENTS_READ_SENSITIVE, PEOPLE_PRIVATE

    hidden = line("f007hid", section=OTHER_SECTION, confidential=True)
    shown = line("f008shw", section=OTHER_SECTION)
    code, _out, err = load(database_url, write_extract(tmp_path / "x.jsonl", [hidden, shown]))
    assert code == 0, err
    plain = accounts.headers([ENROLLMENTS_READ, ENROLLMENTS_READ_SENSITIVE])
    private = accounts.headers([ENROLLMENTS_READ, ENROLLMENTS_READ_SENSITIVE, PEOPLE_PRIVATE])
    api = accounts.api
    assert api.get(f"/api/academic/enrollments/{hidden['id']}", headers=plain).status_code == 404
    got = api.get(f"/api/academic/enrollments/{hidden['id']}", headers=private)
    assert got.status_code == 200, got.text
    body = api.get(f"/api/academic/enrollments/{shown['id']}", headers=plain).json()
    expected = {k: v for k, v in shown.items() if k != "cache_date"}
    assert {k: v for k, v in body.items() if k != "cache_date"} == expected
    assert body["cache_date"].endswith("Z") and body["cache_date"] != shown["cache_date"]


def test_section_and_term_attributes_follow_the_extract(fresh_db: str, tmp_path: Path) -> None:
    assert load(fresh_db, write_extract(tmp_path / "a.jsonl", three()))[0] == 0
    renamed = three()
    for record in renamed[:2]:
        record["section"]["lms_section_id"] = "AAAS.010.01-WI20-X"
        record["term"]["lms_term_id"] = "W20"
    renamed[2]["term"]["lms_term_id"] = "W20"
    code, out, err = load(fresh_db, write_extract(tmp_path / "b.jsonl", renamed))
    assert code == 0, err
    assert "3 unchanged" in out and "0 added or changed" in out
    data = snapshot(fresh_db)
    assert (SECTION["id"], "AAAS.010.01-WI20-X", SECTION["sis_section_id"]) in data["sections"]
    assert data["terms"] == [("202001-U", "W20", "U", "202001")]


def test_bulk_insert_rebuilds_the_same_indexes(
    fresh_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import registrar.sis.repository as load_module

    monkeypatch.setattr(load_module, "BULK_REBUILD_MIN", 10)
    sql = (
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' ORDER BY name"
        if fresh_db.startswith("sqlite")
        else "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'enrollments' "
        "ORDER BY indexname"
    )
    assert load(fresh_db, write_extract(tmp_path / "a.jsonl", three()))[0] == 0
    before = execute(fresh_db, sql)
    records = list(generate(500, seed=4, today=dt.date(2024, 5, 1)))
    # The demo holds the seeds' records, which the first extract may already have.
    new = [r for r in records if r["id"] not in {line["id"] for line in three()}]
    code, out, err = load(fresh_db, write_extract(tmp_path / "b.jsonl", records))
    assert code == 0, err
    assert f"{len(new)} inserted" in out
    assert execute(fresh_db, sql) == before
    assert len(enrollments(fresh_db)) == 3 + len(new)


CATALOG = {
    "sqlite": "SELECT name, sql FROM sqlite_master WHERE tbl_name = 'enrollments' ORDER BY name",
    # Indexes and constraints (foreign keys included) of the table.
    "postgresql": "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'enrollments' "
    "UNION ALL SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
    "WHERE conrelid = 'enrollments'::regclass ORDER BY 1",
}


def test_a_first_load_rebuilds_the_same_indexes_and_keys(
    fresh_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Into an empty table both backends drop the indexes (PostgreSQL: and the foreign keys) and
    build them again after the INSERT; a load that fails afterwards rolls the drops back."""
    import registrar.sis.repository as load_module

    monkeypatch.setattr(load_module, "BULK_REBUILD_MIN", 10)
    sql = CATALOG["sqlite" if fresh_db.startswith("sqlite") else "postgresql"]
    assert cli(fresh_db, "migrate")[0] == 0
    before = execute(fresh_db, sql)
    assert any("FOREIGN KEY" in str(row[1]) or "REFERENCES" in str(row[1]) for row in before)
    records = list(generate(200, seed=5, today=dt.date(2024, 5, 1)))
    extract = write_extract(tmp_path / "a.jsonl", records)

    dropped: list[int] = []
    drop = load_module.Stage._drop_indexes_for_bulk_insert

    async def counted(stage: Any, inserting: int) -> list[str]:
        rebuild = await drop(stage, inserting)
        dropped.append(len(rebuild))
        return rebuild

    monkeypatch.setattr(load_module.Stage, "_drop_indexes_for_bulk_insert", counted)

    async def fail(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("the disk is full")

    with monkeypatch.context() as patched:
        patched.setattr(load_module.Stage, "record_load", fail)
        code, _out, err = load(fresh_db, extract)
        assert code == 1 and "the disk is full" in err, err
    # The indexes were dropped (PostgreSQL: the foreign keys and the unique id too), then the
    # rollback put them back.
    assert dropped and dropped[0] >= 12, dropped
    assert execute(fresh_db, sql) == before
    assert enrollments(fresh_db) == {}

    code, out, err = load(fresh_db, extract)
    assert code == 0, err
    assert f"{len(records)} inserted" in out
    assert execute(fresh_db, sql) == before
    # The foreign keys hold again: an enrollment of an unknown person is refused.
    with pytest.raises(Exception, match=r"(?i)foreign key"):
        execute(
            fresh_db,
            "UPDATE enrollments SET netid = 'nobody' WHERE pk = (SELECT min(pk) FROM enrollments)",
        )
