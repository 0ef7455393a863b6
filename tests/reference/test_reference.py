"""Reference codes: the shipped defaults, the GET endpoints, and `registrar reference load`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from registrar.reference.service import ReferenceLineError, default_codes, parse_lines
from tests.support.accounts import Accounts, cli

DATE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


@pytest.fixture(scope="module")
def anyone(accounts: Accounts) -> dict[str, str]:
    """A valid token with no scope at all: enough to read reference codes."""
    return accounts.headers([], sub="no-scopes")


def jsonl(*rows: dict[str, Any]) -> str:
    return "\n".join(orjson.dumps(r).decode() for r in rows) + "\n"


def test_defaults_are_valid_and_realistic() -> None:
    codes = default_codes()
    by_table: dict[str, dict[str, str]] = {}
    for c in codes:
        by_table.setdefault(c.table, {})[c.id] = c.name
    assert by_table["petition_types"]["Q14"] == "Additional 2-Course Load"
    assert by_table["petition_types"]["Q25"] == "Reduce Sr Yr Residence Req"
    assert {"Q24", "Q41"} <= set(by_table["petition_types"])
    assert len(by_table["petition_types"]) >= 12
    assert by_table["origins"]["UREG"] == "UG - Registrar"
    assert {"UG", "GR", "TU", "MED"} <= set(by_table["schools"])


@pytest.mark.parametrize(
    ("path", "first", "count"),
    [("/api/petition_types", "Q10", 14), ("/api/origins", "GDEAN", 7), ("/api/schools", "DCAL", 6)],
)
def test_lists_need_only_a_valid_token(
    api: TestClient, anyone: dict[str, str], path: str, first: str, count: int
) -> None:
    assert api.get(path).status_code == 401
    r = api.get(path, headers=anyone)
    assert r.status_code == 200
    body = r.json()
    assert len(body) >= count and body[0]["id"] == first
    assert [b["id"] for b in body] == sorted(b["id"] for b in body)
    for item in body:
        assert list(item) == ["id", "name", "is_active", "cache_date"]
        assert DATE.fullmatch(item["cache_date"])
    active = api.get(path, params={"is_active": "true"}, headers=anyone).json()
    assert all(a["is_active"] for a in active)
    assert api.get(path, params={"is_active": "maybe"}, headers=anyone).status_code == 400


def test_by_id(api: TestClient, anyone: dict[str, str]) -> None:
    r = api.get("/api/petition_types/Q14", headers=anyone)
    assert r.status_code == 200
    assert r.json()["name"] == "Additional 2-Course Load"
    assert r.json()["is_active"] is True
    assert api.get("/api/origins/UREG", headers=anyone).json()["name"] == "UG - Registrar"
    assert api.get("/api/schools/UG", headers=anyone).status_code == 200
    assert api.get("/api/petition_types/R10", headers=anyone).json()["is_active"] is False
    # Codes match case-insensitively, as petitions match them.
    assert api.get("/api/petition_types/q14", headers=anyone).json()["id"] == "Q14"
    assert api.get("/api/origins/ureg", headers=anyone).json()["id"] == "UREG"
    assert api.get("/api/schools/Ug", headers=anyone).json()["id"] == "UG"
    for bad in ("Q99", "x" * 500, "%00", "Q1%0A4"):
        r = api.get(f"/api/petition_types/{bad}", headers=anyone)
        assert r.status_code == 404, bad
        assert r.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("path", ["/api/petition_types", "/api/origins", "/api/schools"])
def test_lists_page_like_every_collection(
    api: TestClient, anyone: dict[str, str], path: str
) -> None:
    whole = api.get(path, headers=anyone)
    total = int(whole.headers["x-total-count"])
    assert total == len(whole.json()) >= 3
    first = api.get(path, params={"pagesize": 2, "color": "blue"}, headers=anyone)
    assert first.status_code == 200
    assert len(first.json()) == 2
    assert first.headers["x-total-count"] == str(total)
    assert first.headers["x-ignored-parameters"] == "color"
    assert 'rel="next"' in first.headers["link"]
    # The found set pages on: every code once, in the whole list's order.
    seen = list(first.json())
    key = first.headers["x-request-id"]
    page = 2
    while len(seen) < total:
        more = api.get(
            path, params={"continuation_key": key, "page": page, "pagesize": 2}, headers=anyone
        )
        assert more.status_code == 200 and more.json()
        seen += more.json()
        page += 1
    assert seen == whole.json()
    assert api.get(path, params={"pagesize": 0}, headers=anyone).status_code == 400
    # Filters as everywhere: on any attribute, with the grammar's operators.
    named = api.get(path, params={"id": whole.json()[0]["id"]}, headers=anyone).json()
    assert named == [whole.json()[0]]


def test_cli_load_upserts(
    api: TestClient, anyone: dict[str, str], database_url: str, tmp_path: Path
) -> None:
    file = tmp_path / "codes.jsonl"
    file.write_text(
        jsonl(
            {"table": "petition_types", "id": "Q14", "name": "Additional Course Load (2)"},
            {"table": "petition_types", "id": "Q77", "name": "New Petition", "is_active": False},
            {"table": "origins", "id": "TREG", "name": "Tuck - Registrar"},
            {"table": "schools", "id": "UG", "name": "Undergraduate"},
        )
        + "\n"  # blank lines are skipped
    )
    code, out, err = cli(database_url, "reference", "load", str(file))
    assert code == 0, err
    assert "petition_types: 1 inserted, 1 updated" in out
    assert "origins: 1 inserted, 0 updated" in out
    assert api.get("/api/petition_types/Q14", headers=anyone).json()["name"] == (
        "Additional Course Load (2)"
    )
    q77 = api.get("/api/petition_types/Q77", headers=anyone).json()
    assert q77["is_active"] is False
    assert api.get("/api/origins/TREG", headers=anyone).status_code == 200


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ('{"table": "schools", "id": "ZZ", "name": "Z"}\n{bad json\n', "line 2: not JSON"),
        ('{"table": "courses", "id": "ZZ", "name": "Z"}\n', "line 1: table must be one of"),
        ('{"table": "schools", "id": "ZZ"}\n', "line 1: missing key 'name'"),
        ('{"table": "schools", "id": "ZZ", "name": "Z", "x": 1}\n', 'line 1: unknown key "x"'),
        ('\n\n{"table": "petition_types", "id": "A1", "name": "Z"}\n', 'line 3: id "A1"'),
        ('{"table": "schools", "id": "zz", "name": "Z"}\n', 'line 1: id "zz"'),
        ('{"table": "schools", "id": "ZZ", "name": ""}\n', "line 1: name must be"),
        (
            '{"table": "schools", "id": "ZZ", "name": "Z", "is_active": "yes"}\n',
            "line 1: is_active must be true or false",
        ),
        (
            '{"table": "schools", "id": "ZZ", "name": "Z"}\n'
            '{"table": "schools", "id": "ZZ", "name": "Y"}\n',
            "line 2: schools ZZ already given",
        ),
        ("[1, 2]\n", "line 1: expected a JSON object"),
        ("\n\n", "line 1: the file holds no codes"),
    ],
)
def test_cli_bad_line_changes_nothing(
    api: TestClient,
    anyone: dict[str, str],
    database_url: str,
    tmp_path: Path,
    lines: str,
    message: str,
) -> None:
    before = api.get("/api/schools", headers=anyone).json()
    file = tmp_path / "bad.jsonl"
    # Where a good line precedes the bad one, it must not be applied either.
    file.write_text(lines)
    code, _out, err = cli(database_url, "reference", "load", str(file))
    assert code == 1
    # (Rich wraps stderr at the terminal width: compare the message unwrapped.)
    err = " ".join(err.split())
    assert err.startswith("error: ") and message in err, err
    assert "nothing was loaded" in err
    assert api.get("/api/schools", headers=anyone).json() == before


def test_cli_missing_file(database_url: str, tmp_path: Path) -> None:
    code, _out, err = cli(database_url, "reference", "load", str(tmp_path / "absent.jsonl"))
    assert code == 1 and err.startswith("error: cannot read")
    code, _out, err = cli(database_url, "reference", "load", str(tmp_path))
    assert code == 1 and "is a directory" in " ".join(err.split())


def test_parse_lines_rejects_non_utf8() -> None:
    with pytest.raises(ReferenceLineError, match="line 1: not JSON"):
        parse_lines(b'{"table": "schools", "id": "\xff", "name": "x"}')
