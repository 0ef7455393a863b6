"""A complete load (`--replace`) skips the lines whose bytes a row's stored hash vouches for
(sis/service.py, "the unchanged lines"). What it decides must be what parsing every line decides:
each case here is one where the skipped lines matter, loaded through `registrar load` on both
databases, and compared with the message or state a load that parses everything gives."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support.accounts import cli
from tests.support.extracts import SECTION, enrollments, execute, line, snapshot, write_extract


def load(url: str, path: Path, *args: str) -> str:
    code, out, err = cli(url, "load", str(path), *args)
    assert code == 0, err
    return out


def refused(url: str, path: Path) -> str:
    """A refresh that must fail: its one-line message (and it changed nothing)."""
    before = snapshot(url)
    code, _out, err = cli(url, "load", str(path), "--replace")
    assert code == 1, err
    assert snapshot(url) == before
    return err.strip()


def hashes(url: str) -> dict[str, Any]:
    return {r[0]: r[1] for r in execute(url, "SELECT id, sis_line_hash FROM enrollments")}


def records(count: int, prefix: str = "f7") -> list[dict[str, Any]]:
    return [line(f"{prefix}{n:03d}ab") for n in range(count)]


def test_every_loaded_row_keeps_its_line_hash_and_an_unchanged_refresh_skips_all(
    fresh_db: str, tmp_path: Path
) -> None:
    lines = records(30)
    extract = write_extract(tmp_path / "a.jsonl", lines)
    load(fresh_db, extract, "--replace")
    first = hashes(fresh_db)
    assert len(first) == 30 and None not in first.values()
    assert len(set(first.values())) == 30
    out = load(fresh_db, extract, "--replace")
    assert "0 inserted, 0 updated, 30 unchanged, 0 removed" in out, out
    assert "people: 30 in the extract (0 added or changed), sections: 1, terms: 1" in out, out
    # A changed line: its row gets the new line's hash, the others keep theirs.
    lines[4] = dict(lines[4], final_grade="B")
    out = load(fresh_db, write_extract(tmp_path / "b.jsonl", lines), "--replace")
    assert "0 inserted, 1 updated, 29 unchanged, 0 removed" in out, out
    second = hashes(fresh_db)
    changed = {k for k in first if first[k] != second[k]}
    assert changed == {lines[4]["id"]}
    assert enrollments(fresh_db)[lines[4]["id"]]["final_grade"] == "B"


def test_rows_loaded_without_a_hash_get_one_from_the_next_refresh(
    fresh_db: str, tmp_path: Path
) -> None:
    """Rows from before migration 0014 (or from `registrar demo`): the next complete load parses
    their lines and stores the hashes (once), then skips them."""
    lines = records(5)
    extract = write_extract(tmp_path / "a.jsonl", lines)
    load(fresh_db, extract, "--replace")
    execute(fresh_db, "UPDATE enrollments SET sis_line_hash = NULL")
    out = load(fresh_db, extract, "--replace")
    assert "0 updated, 5 unchanged, 0 removed" in out, out
    assert None not in hashes(fresh_db).values()


def test_a_line_repeated_unchanged_is_refused_as_a_duplicate(fresh_db: str, tmp_path: Path) -> None:
    lines = records(6)
    load(fresh_db, write_extract(tmp_path / "a.jsonl", lines), "--replace")
    twice = write_extract(tmp_path / "b.jsonl", [*lines, lines[2]])
    message = refused(fresh_db, twice)
    assert f"line 7: duplicate id {lines[2]['id']!r} (first on line 3)" in message, message


def test_an_unchanged_and_a_changed_line_of_one_id_are_refused(
    fresh_db: str, tmp_path: Path
) -> None:
    lines = records(6)
    load(fresh_db, write_extract(tmp_path / "a.jsonl", lines), "--replace")
    both = write_extract(tmp_path / "b.jsonl", [*lines, dict(lines[1], final_grade="C")])
    message = refused(fresh_db, both)
    assert f"line 7: duplicate id {lines[1]['id']!r} (first on line 2)" in message, message


def test_a_bad_line_among_unchanged_ones_is_reported_as_a_full_load_reports_it(
    fresh_db: str, tmp_path: Path
) -> None:
    lines = records(6)
    load(fresh_db, write_extract(tmp_path / "a.jsonl", lines), "--replace")
    bad = write_extract(
        tmp_path / "b.jsonl", [*lines[:3], dict(lines[3], is_active="yes", role=""), *lines[4:]]
    )
    message = refused(fresh_db, bad)
    assert "line 4: " in message and "is_active must be true or false" in message, message
    assert "role must not be empty" in message, message


def test_a_changed_section_must_agree_with_the_unchanged_lines_describing_it(
    fresh_db: str, tmp_path: Path
) -> None:
    lines = records(6)
    load(fresh_db, write_extract(tmp_path / "a.jsonl", lines), "--replace")
    renamed = {**SECTION, "lms_section_id": "RENAMED"}
    moved = dict(lines[4], section=renamed)
    message = refused(fresh_db, write_extract(tmp_path / "b.jsonl", [*lines[:4], moved, lines[5]]))
    assert "line 5: section " in message and "differs from its description on line 1" in message
    # Every line saying so: loaded, and every enrollment of the section reads it.
    out = load(
        fresh_db,
        write_extract(tmp_path / "c.jsonl", [dict(r, section=renamed) for r in lines]),
        "--replace",
    )
    assert "6 updated" in out or "0 updated, 6 unchanged" in out, out
    assert execute(fresh_db, "SELECT lms_section_id FROM sections") == [("RENAMED",)]


def test_a_partial_load_that_redescribes_a_section_invalidates_the_other_lines(
    fresh_db: str, tmp_path: Path
) -> None:
    """A partial load renames the section through one line; the next complete extract still has
    the other lines with the old description (unchanged bytes since their load): refused, as a
    load that parses every line refuses it."""
    lines = records(4)
    load(fresh_db, write_extract(tmp_path / "a.jsonl", lines), "--replace")
    renamed = {**SECTION, "lms_section_id": "RENAMED"}
    load(fresh_db, write_extract(tmp_path / "b.jsonl", [dict(lines[0], section=renamed)]))
    after = hashes(fresh_db)
    assert after[lines[0]["id"]] is not None
    assert all(after[r["id"]] is None for r in lines[1:])
    mixed = write_extract(tmp_path / "c.jsonl", [dict(lines[0], section=renamed), *lines[1:]])
    message = refused(fresh_db, mixed)
    assert "line 2: section " in message and "differs from its description on line 1" in message


def test_a_person_stays_confidential_only_while_a_line_says_so(
    fresh_db: str, tmp_path: Path
) -> None:
    said = line("f7conf", confidential=True)
    other = line("f7conf", role="instructor")
    rest = records(3)
    load(fresh_db, write_extract(tmp_path / "a.jsonl", [said, other, *rest]), "--replace")
    assert execute(fresh_db, "SELECT confidential FROM people WHERE netid = 'f7conf'") == [(True,)]
    # The line that said so leaves the extract; the other one is unchanged (and skipped).
    out = load(fresh_db, write_extract(tmp_path / "b.jsonl", [other, *rest]), "--replace")
    assert "1 removed" in out and "1 added or changed" in out, out
    assert execute(fresh_db, "SELECT confidential FROM people WHERE netid = 'f7conf'") == [(False,)]
    # And back: a new line says so again.
    out = load(fresh_db, write_extract(tmp_path / "c.jsonl", [said, other, *rest]), "--replace")
    assert "1 inserted" in out and "1 added or changed" in out, out
    assert execute(fresh_db, "SELECT confidential FROM people WHERE netid = 'f7conf'") == [(True,)]


def test_removed_and_added_lines_next_to_skipped_ones(fresh_db: str, tmp_path: Path) -> None:
    lines = records(10)
    load(fresh_db, write_extract(tmp_path / "a.jsonl", lines), "--replace")
    new = line("f7new01")
    out = load(
        fresh_db, write_extract(tmp_path / "b.jsonl", [*lines[:3], new, *lines[5:]]), "--replace"
    )
    assert "1 inserted, 0 updated, 8 unchanged, 2 removed" in out, out
    assert set(enrollments(fresh_db)) == {r["id"] for r in [*lines[:3], new, *lines[5:]]}
    changes = execute(
        fresh_db, "SELECT type, subject FROM events WHERE origin = 'sis' ORDER BY 1, 2"
    )
    tail = sorted(c for c in changes if c[1] in {new["id"], lines[3]["id"], lines[4]["id"]})
    assert (
        ("enrollment.created", new["id"]) in tail
        and ("enrollment.deleted", lines[3]["id"]) in tail
        and ("enrollment.deleted", lines[4]["id"]) in tail
    ), tail
