"""What recording its events adds to a SIS refresh changing 10,000 records (issue 13: under 2 s).

    .venv/bin/python bench/load_events_bench.py [--lines 200000] [--changes 10000] [--rounds 2]
        [--postgres URL] [--no-sqlite]

Writes an N-line extract with the demo generator and a copy in which `--changes` records changed
(`is_active` and `final_grade`, as bench/refresh_bench.py does). On a fresh database (SQLite, and
PostgreSQL with --postgres) it loads the extract, then runs refreshes (`--replace`) through the
very function `registrar load` calls (registrar.sis.service.load), alternating the changed copy and
the extract, so that each refresh changes the same number of records: first with the change
record written as usual, then with it replaced by a no-op, `--rounds` times each.

Prints, per database: the median refresh with events and without (the difference is what the
events cost, their commit included), and the median time of the recording statements themselves
(`Stage.record_changes`, timed from outside: the bench edits no load code), and checks that each
recorded refresh wrote one event per changed record.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import fresh_database, registrar
from refresh_bench import write_extracts

from registrar.core.runtime import Runtime
from registrar.core.settings import Settings
from registrar.events.repository import newest_position
from registrar.sis import repository as sis_repository
from registrar.sis.service import LoadResult, load

ORIGINAL = sis_repository.Stage.record_changes
PHASE: list[float] = []


async def timed_record_changes(self: sis_repository.Stage, created_after: int) -> None:
    started = time.perf_counter()
    await ORIGINAL(self, created_after)
    PHASE.append(time.perf_counter() - started)


async def no_record_changes(self: sis_repository.Stage, created_after: int) -> None:
    return None


def with_runtime(url: str, fn: Callable[[Runtime], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        runtime = Runtime.build(Settings(database_url=url, log_json=False))  # type: ignore[call-arg]
        try:
            return await fn(runtime)
        finally:
            await runtime.close()

    return asyncio.run(main())


def refresh(url: str, extract: Path) -> tuple[float, LoadResult, int]:
    """(seconds, the load's result, events it added) of one `--replace` load."""

    async def run(runtime: Runtime) -> tuple[float, LoadResult, int]:
        before = await runtime.db.read(newest_position)
        started = time.perf_counter()
        result = await load(runtime.db, extract, replace=True)
        seconds = time.perf_counter() - started
        return seconds, result, await runtime.db.read(newest_position) - before

    return with_runtime(url, run)  # type: ignore[no-any-return]


def bench(url: str, label: str, base: Path, changed: Path, changes: int, rounds: int) -> None:
    registrar("migrate", env={"REGISTRAR_DATABASE_URL": url})
    seconds, result, _n = refresh(url, base)
    print(f"{label}: first load {seconds:.1f} s ({result.inserted:,} inserted)")
    figures: dict[bool, list[float]] = {True: [], False: []}
    phases: list[float] = []
    for recording in (True, False):
        sis_repository.Stage.record_changes = (  # type: ignore[method-assign]
            timed_record_changes if recording else no_record_changes
        )
        for _round in range(rounds):
            for extract in (changed, base):
                PHASE.clear()
                seconds, result, events = refresh(url, extract)
                assert result.updated == changes, result.summary()
                assert events == (changes if recording else 0), events
                figures[recording].append(seconds)
                phases += PHASE
                what = f"events {PHASE[0]:.2f} s" if recording else "no events"
                print(f"  refresh ({result.updated:,} updated): {seconds:.2f} s, {what}")
    sis_repository.Stage.record_changes = ORIGINAL  # type: ignore[method-assign]
    with_events, without = statistics.median(figures[True]), statistics.median(figures[False])
    print(
        f"  median refresh changing {changes:,}: {with_events:.2f} s with its events, "
        f"{without:.2f} s without: {with_events - without:+.2f} s; the recording statements "
        f"{statistics.median(phases):.2f} s (max {max(phases):.2f} s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--changes", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seed", type=int, default=2020)
    parser.add_argument(
        "--postgres", help="admin URL, e.g. postgresql://postgres@127.0.0.1/postgres"
    )
    parser.add_argument("--no-sqlite", action="store_true")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="registrar-load-events-"))
    base, changed = workdir / "extract.jsonl", workdir / "changed.jsonl"
    _ids, altered = write_extracts(base, changed, args.lines, args.seed, args.changes / args.lines)
    print(f"extract: {args.lines:,} lines, {altered:,} changed in the copy")
    try:
        if not args.no_sqlite:
            url, _drop = fresh_database(workdir)
            bench(url, "SQLite", base, changed, altered, args.rounds)
        if args.postgres:
            url, drop = fresh_database(workdir, args.postgres)
            try:
                bench(url, "PostgreSQL", base, changed, altered, args.rounds)
            finally:
                drop()
    finally:
        for path in workdir.iterdir():
            path.unlink()
        workdir.rmdir()


if __name__ == "__main__":
    main()
