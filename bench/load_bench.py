"""Time `registrar load` on a generated extract.

    .venv/bin/python bench/load_bench.py [--lines 1000000] [--seed 2020] [--postgres URL] [--keep]

Writes an N-line extract with the demo generator to a temp file, then runs the real `registrar load`
command in a child process on a fresh SQLite database (and on a fresh PostgreSQL database created
from the admin URL given with --postgres), twice each: the first load inserts everything, the second
finds everything unchanged. Prints seconds, lines per second and the child's peak RSS.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import command, fresh_database

from registrar.sis.demo import generate


def write_extract(path: Path, lines: int, seed: int) -> float:
    started = time.perf_counter()
    with path.open("wb") as out:
        buffer: list[bytes] = []
        for record in generate(lines, seed):
            buffer.append(orjson.dumps(record))
            if len(buffer) >= 10_000:
                out.write(b"\n".join(buffer) + b"\n")
                buffer.clear()
        if buffer:
            out.write(b"\n".join(buffer) + b"\n")
    return time.perf_counter() - started


def timed_load(database_url: str, extract: Path, lines: int, label: str) -> None:
    env = {**os.environ, "REGISTRAR_DATABASE_URL": database_url}
    # Migrate first so the figure is the load alone.
    subprocess.run([*command(), "migrate"], env=env, check=True, capture_output=True)
    for attempt in ("first load (inserts)", "second load (unchanged)"):
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        before, cpu_before = usage.ru_maxrss, usage.ru_utime + usage.ru_stime
        started = time.perf_counter()
        proc = subprocess.run(
            [*command(), "load", str(extract)], env=env, capture_output=True, text=True
        )
        seconds = time.perf_counter() - started
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        peak, cpu = usage.ru_maxrss, usage.ru_utime + usage.ru_stime - cpu_before
        if proc.returncode != 0:
            print(f"{label}: load failed: {proc.stderr.strip()}")
            raise SystemExit(1)
        rss = f"{peak / 1024:.0f} MiB" if peak > before else f"<= {peak / 1024:.0f} MiB"
        # CPU time of the loading process: the figure that does not depend on other load on the
        # machine (the database server's own work on PostgreSQL is not in it).
        print(
            f"{label}, {attempt}: {seconds:.1f} s, {lines / seconds:,.0f} lines/s, "
            f"CPU {cpu:.1f} s, peak RSS {rss}, load average {os.getloadavg()[0]:.1f}"
        )
        print("    " + proc.stdout.strip().replace("\n", "\n    "))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=2020)
    parser.add_argument(
        "--postgres", help="admin URL, e.g. postgresql://postgres@127.0.0.1/postgres"
    )
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the extract and the SQLite file")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="registrar-bench-"))
    extract = workdir / "extract.jsonl"
    seconds = write_extract(extract, args.lines, args.seed)
    size = extract.stat().st_size / 1024 / 1024
    print(
        f"extract: {args.lines:,} lines, {size:.0f} MiB, generated in {seconds:.1f} s ({extract})"
    )

    if not args.no_sqlite:
        db = workdir / "bench.db"
        timed_load(f"sqlite:///{db}", extract, args.lines, "SQLite")
        if not args.keep:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{db}{suffix}").unlink(missing_ok=True)
    if args.postgres:
        url, drop = fresh_database(workdir, args.postgres)
        try:
            timed_load(url, extract, args.lines, "PostgreSQL")
        finally:
            drop()
    if not args.keep:
        extract.unlink()
        workdir.rmdir()


if __name__ == "__main__":
    main()
