"""Reference codes: reading them, and checking codes to load (`registrar reference load FILE` and
the shipped defaults).

The load file is JSON Lines, one code per line, naming its table:

    {"table": "petition_types", "id": "Q14", "name": "Additional 2-Course Load", "is_active": true}
    {"table": "origins", "id": "UREG", "name": "UG - Registrar"}
    {"table": "schools", "id": "UG", "name": "Undergraduate (Arts and Sciences)"}

`is_active` is optional (default true). Every line is validated before anything is written; then one
transaction upserts by (table, id) and sets `cache_date` to the time of the load. Nothing is ever
deleted: petitions keep pointing at their codes, so a code is retired with `"is_active": false`.
A bad line stops the load with `line N: problem` and the database stays as it was.

The defaults shipped in `defaults/*.json` (a JSON array per table) are checked by the same rules
(tests do) and inserted by migration 0002.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import orjson
from sqlalchemy import Row

from registrar.auth.client import Client
from registrar.core.clock import iso_z, utcnow, whole_second
from registrar.core.problems import not_found
from registrar.core.text import show, usable_id
from registrar.db.base import width
from registrar.db.database import Database
from registrar.paging.pages import Page, PageQuery, find_page
from registrar.reference import repository
from registrar.reference.models import PetitionType

MODELS = repository.TABLES
TABLES = tuple(MODELS)
# Banner event codes for petitions start with Q or R; other codes are short upper-case tokens.
ID_PATTERNS = {
    "petition_types": re.compile(r"[QR][A-Z0-9]{1,15}"),
    "origins": re.compile(r"[A-Z0-9][A-Z0-9_-]{0,15}"),
    "schools": re.compile(r"[A-Z0-9][A-Z0-9_-]{0,15}"),
}
ID_RULES = {
    "petition_types": "Q or R then 1 to 15 upper-case letters or digits",
    "origins": "1 to 16 upper-case letters, digits, _ or -",
    "schools": "1 to 16 upper-case letters, digits, _ or -",
}
MAX_NAME = 255
KEYS = frozenset({"table", "id", "name", "is_active"})
MAX_LINE_BYTES = 64 * 1024
_ORJSON_WHERE = re.compile(r": line \d+ column (\d+) \(char \d+\)$")


class ReferenceLineError(ValueError):
    """A bad line (or default entry): the load stops and writes nothing."""

    def __init__(self, line: int, problem: str) -> None:
        super().__init__(f"line {line}: {problem}")
        self.line = line


@dataclass(frozen=True)
class Code:
    table: str
    id: str
    name: str
    is_active: bool


@dataclass
class LoadResult:
    inserted: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TABLES, 0))
    updated: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TABLES, 0))

    def summary(self) -> str:
        return "; ".join(
            f"{t}: {self.inserted[t]} inserted, {self.updated[t]} updated" for t in TABLES
        )


def _printable(text: str) -> bool:
    return text.isprintable() and text.strip() == text


def check_code(obj: Any, line: int, table: str | None = None) -> Code:
    """Validate one code. `table` is given for the defaults (one file per table)."""
    if not isinstance(obj, dict):
        raise ReferenceLineError(line, "expected a JSON object")
    allowed = KEYS if table is None else KEYS - {"table"}
    unknown = sorted(str(k) for k in obj if k not in allowed)
    if unknown:
        raise ReferenceLineError(line, f"unknown key {show(unknown[0])}")
    if table is None:
        table = obj.get("table")
        if table not in MODELS:
            raise ReferenceLineError(
                line, f"table must be one of {', '.join(TABLES)}, not {show(table)}"
            )
    for key in ("id", "name"):
        if key not in obj:
            raise ReferenceLineError(line, f"missing key {key!r}")
    code_id, name = obj["id"], obj["name"]
    if not isinstance(code_id, str) or not ID_PATTERNS[table].fullmatch(code_id):
        raise ReferenceLineError(
            line, f"id {show(code_id)} is not a valid {table} code ({ID_RULES[table]})"
        )
    if not isinstance(name, str) or not name or len(name) > MAX_NAME or not _printable(name):
        raise ReferenceLineError(
            line, f"name must be 1 to {MAX_NAME} printable characters, not {show(name)}"
        )
    is_active = obj.get("is_active", True)
    if not isinstance(is_active, bool):
        raise ReferenceLineError(line, f"is_active must be true or false, not {show(is_active)}")
    return Code(table=table, id=code_id, name=name, is_active=is_active)


def parse_lines(data: bytes) -> list[Code]:
    """Every line validated, duplicates refused; raises ReferenceLineError on the first problem."""
    codes: list[Code] = []
    seen: dict[tuple[str, str], int] = {}
    for number, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        if len(raw) > MAX_LINE_BYTES:
            raise ReferenceLineError(number, f"line longer than {MAX_LINE_BYTES} bytes")
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            # orjson's own "line 1 column 2" counts within the line: keep only the column.
            reason = (str(exc).splitlines() or ["malformed JSON"])[0]
            reason = _ORJSON_WHERE.sub(r" at column \1", reason)[:120]
            raise ReferenceLineError(number, f"not JSON: {reason}") from None
        code = check_code(obj, number)
        first = seen.setdefault((code.table, code.id), number)
        if first != number:
            raise ReferenceLineError(
                number, f"{code.table} {code.id} already given on line {first}"
            )
        codes.append(code)
    if not codes:
        raise ReferenceLineError(1, "the file holds no codes")
    return codes


def default_codes() -> list[Code]:
    """The shipped defaults, validated (a broken default is a bug: it raises)."""
    codes = []
    for table in TABLES:
        text = (resources.files("registrar.reference") / "defaults" / f"{table}.json").read_text()
        for index, obj in enumerate(json.loads(text), start=1):
            codes.append(check_code(obj, index, table))
    return codes


async def load_codes(db: Database, codes: list[Code]) -> LoadResult:
    """Upsert checked codes in one transaction (all or nothing); what was inserted and updated."""
    inserted, updated = await db.write(repository.upsert_codes, codes, whole_second(utcnow()))
    return LoadResult(inserted=inserted, updated=updated)


MAX_ID_LENGTH = width(PetitionType.id)
WHAT = {"petition_types": "petition type", "origins": "origin", "schools": "school"}


def represent(code: Row[Any]) -> dict[str, Any]:
    return {
        "id": code.id,
        "name": code.name,
        "is_active": code.is_active,
        "cache_date": iso_z(code.cache_date),
    }


async def list_codes(
    db: Database, client: Client, table: str, query: PageQuery
) -> tuple[list[dict[str, Any]], Page]:
    """A reference table as a collection: filters, paging and found sets as for every other."""
    spec, rows = repository.collection_spec(table), repository.code_rows(table)
    page = await find_page(db, spec, client, query, rows=rows)
    return [represent(c) for c in page.rows], page


async def get_code(db: Database, table: str, code_id: str) -> dict[str, Any]:
    """One code, matched case-insensitively (codes are stored upper-case), as petitions match
    them: `/api/petition_types/q14` is Q14."""
    found = None
    if usable_id(code_id, MAX_ID_LENGTH):
        found = await db.read(repository.code, MODELS[table], code_id.upper())
    if found is None:
        raise not_found(WHAT[table])
    return represent(found)
