"""Failed logins per client address: past REGISTRAR_LOGIN_FAILURES_PER_MINUTE (20) failures in a
minute, every login attempt from that address is refused (429, Retry-After: the rest of the
minute), valid key or not, until the minute ends. Only failures count, so a client that logs in
correctly is never slowed.

The minute is fixed (epoch minutes), as the rate limiter's. On PostgreSQL the counts are shared by
every API process (the UNLOGGED `login_failures` table: one read per login, one upsert per
failure); on SQLite, one process, they are kept in memory (a write per failure would queue behind
SQLite's one writer). What "address" means (the peer, or the client a trusted proxy names; an IPv6
client's /64) is decided by the web layer (http/middleware/hosts.py, auth/router.py).
"""

from __future__ import annotations

import logging
import math
import time

from registrar.auth import repository
from registrar.db.database import Database

log = logging.getLogger("registrar.auth")

WINDOW_SECONDS = 60
# SQLite: addresses remembered per minute at most (about 100 bytes each); past it, new addresses
# go uncounted for the rest of the minute, and that is logged.
MAX_ADDRESSES = 100_000


def current_window(now: float) -> tuple[int, int]:
    """The epoch minute and the whole seconds left in it (at least 1)."""
    window = int(now // WINDOW_SECONDS)
    return window, max(1, math.ceil((window + 1) * WINDOW_SECONDS - now))


class LoginThrottle:
    def __init__(self, db: Database, *, limit: int) -> None:
        self.db = db
        self.limit = limit
        self.shared = db.dialect == "postgresql"
        self._window = -1
        self._counts: dict[str, int] = {}
        self._purged_window = -1

    async def retry_after(self, address: str) -> int | None:
        """Seconds until `address` may try again; None when it may now."""
        if self.limit <= 0:
            return None
        window, left = current_window(time.time())
        if self.shared:
            failures = await self.db.read(repository.login_failures, address, window)
        else:
            failures = self._counts.get(address, 0) if window == self._window else 0
        return left if failures >= self.limit else None

    async def failed(self, address: str) -> None:
        """One more failed login from `address`."""
        if self.limit <= 0:
            return
        window, _left = current_window(time.time())
        if self.shared:
            count = await self.db.write(repository.add_login_failure, address, window)
            if window != self._purged_window:
                self._purged_window = window
                await self.db.write(repository.forget_login_failures, window - 1)
        else:
            if window != self._window:
                self._window, self._counts = window, {}
            if address not in self._counts and len(self._counts) >= MAX_ADDRESSES:
                log.warning("login throttle: %d addresses this minute; no more", MAX_ADDRESSES)
                return
            count = self._counts[address] = self._counts.get(address, 0) + 1
        if count == self.limit:
            log.warning(
                "login throttle: %d failed logins from %s this minute; refusing it until the "
                "minute ends",
                count,
                address[:64],
            )
