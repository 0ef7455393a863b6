"""Point reads remembered until the database changes: never stale, on SQLite in WAL mode.

How it knows. SQLite in WAL mode keeps a header in the shared-memory file beside the database
(`<db>-shm`) that every committed write transaction rewrites, whatever connection or process made
it: its change counter goes up, and a checkpoint that restarts the log changes its salts. SQLite's
own readers take their snapshot from that header. We map the file's first page read-only and read
the header (a memory read, no system call, nothing that can block) before every cached lookup:
the same header means no commit since the entry was read, so the entry is the current row. Any
commit anywhere makes every entry stale: coarse, and therefore simple to trust. The header's layout
is SQLite's file format (https://www.sqlite.org/walformat.html, "the WAL-index header"), stable
because processes built with different SQLite versions share one database; it is checked (version
3007000, initialised, both copies equal) on every read, and anything unexpected means "changed".

Why the header is read before the lookup and not after: a commit between the two makes the
remembered header older than the row, so the next check sees a change and reads again; never the
other way round.

Only non-empty results are remembered: "not found" (unknown, or hidden by FERPA) always asks the
database, so a hidden record and a missing one cost the same. The FERPA rule and the scopes are in
the key (the caller passes what its query depends on); the representation is built per request.
"""

from __future__ import annotations

import collections
import logging
import mmap
import os
import struct
from collections.abc import Hashable
from typing import Any

log = logging.getLogger("registrar.db")

WAL_INDEX_VERSION = 3007000
_HEADER = 48  # one copy of the WAL-index header; the file holds two, back to back
MISSING: Any = object()


# Every mapping this process made of a `-shm` file, by (device, inode), for the life of the
# process. Never closed, and their file descriptors never closed either: POSIX drops ALL of a
# process's fcntl locks on a file when ANY descriptor of it is closed, and SQLite's locks on the
# -shm file (held by this process's connections) are such locks. Closing ours would release them:
# another process could then believe itself the first user, truncate the file under every mapping
# (SIGBUS here) and re-initialise it while our connections still use it.
# (An entry whose file was since deleted, its inode number perhaps reused, is replaced: the
# descriptor kept beside the mapping tells, by its link count.)
_MAPPINGS: dict[tuple[int, int], tuple[int, mmap.mmap]] = {}


class WalChangeCounter:
    """The identity of the database's latest commit, read from `<database>-shm`."""

    def __init__(self, database_path: str) -> None:
        self.shm_path = database_path + "-shm"
        self._map: mmap.mmap | None = None
        self._keeper: Any = None

    def attach(self) -> bool:
        """Map the header (blocking: call off the event loop).

        A connection of our own stays open for as long as the mapping is used: SQLite deletes
        or truncates the -shm file only when no connection at all has it open.
        """
        import sqlite3

        if self._map is not None:
            return True
        try:
            keeper = sqlite3.connect(self.shm_path.removesuffix("-shm"), check_same_thread=False)
        except sqlite3.Error as exc:
            log.info("read cache off: cannot open the database (%s)", exc)
            return False
        try:
            keeper.execute("PRAGMA query_only=ON")
            if keeper.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                raise ValueError("not in WAL mode")
            keeper.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()  # opens the -shm
            st = os.stat(self.shm_path)
            known = _MAPPINGS.get((st.st_dev, st.st_ino))
            if known is None or os.fstat(known[0]).st_nlink == 0:
                fd = os.open(self.shm_path, os.O_RDONLY)  # never closed: see _MAPPINGS
                mapping = mmap.mmap(fd, 2 * _HEADER, mmap.MAP_SHARED, mmap.PROT_READ)
                known = _MAPPINGS[(st.st_dev, st.st_ino)] = (fd, mapping)
            mapped = known[1]
        except (OSError, ValueError, sqlite3.Error) as exc:
            keeper.close()
            log.info("read cache off: cannot map %s (%s)", self.shm_path, exc)
            return False
        self._keeper, self._map = keeper, mapped
        return True

    def token(self) -> bytes | None:
        """Changes with every commit; None when the header cannot be trusted right now."""
        mapped = self._map
        if mapped is None:
            return None
        header = mapped[: 2 * _HEADER]
        if header[:_HEADER] != header[_HEADER:]:
            return None  # a writer is between its two copies
        version, _unused, _change, initialised = struct.unpack_from("=IIIB", header)
        if version != WAL_INDEX_VERSION or initialised != 1:
            return None
        # The change counter, the last frame, and the salts (a restarted log).
        return header[8:12] + header[16:20] + header[32:40]

    def close(self) -> None:
        """Stop using the mapping (it stays mapped: see _MAPPINGS) and close our connection."""
        self._map = None
        if self._keeper is not None:
            self._keeper.close()
            self._keeper = None


class ReadCache:
    """At most `entries` results, least recently used out first, each with the token it was
    read under. Used on the event loop only."""

    def __init__(self, counter: WalChangeCounter, entries: int) -> None:
        self.counter = counter
        self.entries = entries
        self.hits = 0
        self.misses = 0
        self._rows: collections.OrderedDict[Hashable, tuple[bytes, Any]] = collections.OrderedDict()
        self.attached: bool | None = None  # None: not tried yet

    def get(self, key: Hashable, token: bytes) -> Any:
        found = self._rows.get(key)
        if found is None or found[0] != token:
            self.misses += 1
            return MISSING
        self._rows.move_to_end(key)
        self.hits += 1
        return found[1]

    def put(self, key: Hashable, token: bytes, value: Any) -> None:
        self._rows[key] = (token, value)
        self._rows.move_to_end(key)
        while len(self._rows) > self.entries:
            self._rows.popitem(last=False)

    def __len__(self) -> int:
        return len(self._rows)

    def close(self) -> None:
        self._rows.clear()
        self.counter.close()
