"""Whether this process's writes are being refused by storage (a full disk, a read-only database
or file system, an I/O error), for GET /health and the 503 a refused write gets.

Issue 9: with a full disk every write answered 503 while /health still said 200. Writes are
watched where they all pass, `Database.write`: a storage failure starts (or continues) a failing
spell, which ends once FORGET_AFTER_SECONDS pass without another. A successful write does not end
it: writes that add nothing (a worker's claim on an empty queue, every second) succeed on a full
disk too, and a small write can fit where a large one cannot. A process that a load balancer took
out of rotation gets no writes to fail, and so comes back to be tried. Nothing is written to
probe: a probe would contend with real writes (one writer on SQLite) and prove as little.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import time
from dataclasses import dataclass

from registrar.core.clock import utcnow

FORGET_AFTER_SECONDS = 30.0

# SQLite's extended result codes, by name (Python 3.11+ puts it on the exception).
_SQLITE = {
    "SQLITE_FULL": "disk full",
    "SQLITE_READONLY": "read-only database",
    "SQLITE_IOERR": "I/O error",
    "SQLITE_CANTOPEN": "cannot open the database file",
}
# PostgreSQL SQLSTATEs: class 53 (insufficient resources), 58 (system error), a read-only
# transaction (a standby, or default_transaction_read_only).
_POSTGRES = {
    "53100": "disk full",
    "53200": "out of memory",
    "53000": "insufficient resources",
    "25006": "read-only database",
    "58030": "I/O error",
}


def storage_failure(exc: BaseException) -> str | None:
    """What kind of storage failure `exc` is ("disk full", ...), or None for any other error."""
    seen: BaseException | None = exc
    for _ in range(6):  # SQLAlchemy error -> adapter error -> driver error
        if seen is None:
            return None
        if isinstance(seen, sqlite3.Error):
            name = getattr(seen, "sqlite_errorname", "") or ""
            for prefix, kind in _SQLITE.items():
                if name.startswith(prefix):
                    return kind
            return None
        code = getattr(seen, "sqlstate", None) or getattr(seen, "pgcode", None)
        if isinstance(code, str) and code in _POSTGRES:
            return _POSTGRES[code]
        seen = getattr(seen, "orig", None) or seen.__cause__ or seen.__context__
    return None


@dataclass
class WriteHealth:
    """The current failing spell of this process's writes, if any."""

    since: dt.datetime | None = None  # the spell's first failure
    last: dt.datetime | None = None  # its latest
    reason: str = ""
    _last_seen: float = -FORGET_AFTER_SECONDS - 1.0  # monotonic time of the latest

    def failed(self, reason: str) -> None:
        if not self.failing():
            self.since = utcnow()
        self.last, self.reason, self._last_seen = utcnow(), reason, time.monotonic()

    def failing(self) -> bool:
        return time.monotonic() - self._last_seen <= FORGET_AFTER_SECONDS
