"""What it costs the scheduled SIS refresh to ask "did the extract change?" (sis/refresh.py).

    .venv/bin/python bench/extract_change_bench.py [--lines 1000000] [--seed 2020] [--file PATH]

Writes an N-line extract with the demo generator (or takes --file), then times the two ways of
telling a changed file: one `stat` (size and modification time, what the refresh does) and a
BLAKE2b / SHA-256 hash of the whole content, read from the page cache (the file was just written)
and, with --cold (needs root), after dropping the page cache. Prints microseconds or seconds per
check. Every slot (REGISTRAR_SIS_REFRESH_SECONDS) of every worker pays this once.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load_bench import write_extract


def timed(fn: Callable[[], object], n: int) -> float:
    runs = []
    for _ in range(n):
        started = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - started)
    return statistics.median(runs)


def hashed(path: Path, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def drop_page_cache() -> bool:
    try:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("1\n")
        return True
    except OSError:
        return False


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=2020)
    parser.add_argument("--file", type=Path)
    parser.add_argument("--cold", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.file
        if path is None:
            path = Path(tmp) / "extract.jsonl"
            write_extract(path, args.lines, args.seed)
        size = path.stat().st_size
        print(f"extract: {path}, {size / 2**20:.0f} MiB")
        print(f"stat (size + mtime): {timed(lambda: os.stat(path), 1000) * 1e6:.1f} us")
        for algorithm in ("blake2b", "sha256"):
            warm = timed(lambda a=algorithm: hashed(path, a), 3)
            print(f"{algorithm} of the content, page cache: {warm:.2f} s")
            if args.cold and drop_page_cache():
                started = time.perf_counter()
                hashed(path, algorithm)
                print(f"{algorithm}, cold: {time.perf_counter() - started:.2f} s")


if __name__ == "__main__":
    main()
