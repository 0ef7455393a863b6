"""What a token may do now: its own scopes, cut by what its service account is granted today.

A JWT cannot be recalled, so revocation and a removed scope are applied where tokens are used:
every request's token is checked against its account's current grants (a revoked account's token
is 401, a scope no longer granted is dropped from the token's effective scopes, so a route needing
it answers 403), and the worker checks a task's requester the same way before applying it.

The API checks against a per-process view of the accounts, refreshed at most every
REGISTRAR_ACCOUNT_REFRESH_SECONDS (10) with one query for the rows whose `revision` is above the
highest it has seen (auth/repository.py), done by the first request after the interval: a change
reaches every process within that interval (the contract promises a minute), and a request pays
a dict lookup. A token whose account the view does not know yet (created after the last refresh)
makes it refresh at once; one whose account exists nowhere is 401. If the database cannot be read
the old view serves for up to STALE_LIMIT_SECONDS, then requests fail (503) rather than trust a
view older than the promise.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row

from registrar.auth import repository
from registrar.auth.client import Client
from registrar.auth.scopes import parse_scopes
from registrar.core.problems import unauthorized
from registrar.db.database import Database

log = logging.getLogger("registrar.auth")

# The contract: a revocation reaches issued tokens within a minute. A view older than this is not
# used, even when the database cannot be read to refresh it.
STALE_LIMIT_SECONDS = 60.0
# A token issued this long after the view was read may belong to an account the view missed.
ISSUE_SLACK_SECONDS = 2.0
RETRY_AFTER_FAILURE_SECONDS = 1.0

REVOKED = "The token's service account has been revoked."
UNKNOWN = "The token's service account does not exist."


@dataclass(frozen=True)
class Grants:
    """An account as token checks see it."""

    scopes: frozenset[str]
    revoked: bool
    tokens_not_before: int | None

    @classmethod
    def from_row(cls, row: Row[Any]) -> Grants:
        return cls(
            scopes=frozenset(parse_scopes(row.scopes)),
            revoked=row.revoked_at is not None,
            tokens_not_before=row.tokens_not_before,
        )

    def refuses(self, issued_at: Any) -> bool:
        """A token issued at `issued_at` (epoch seconds) is dead: the account is revoked, or
        was after the token was issued."""
        if self.revoked:
            return True
        if self.tokens_not_before is None:
            return False
        return not isinstance(issued_at, int | float) or issued_at < self.tokens_not_before


def effective(client: Client, grants: Grants | None) -> Client:
    """The client with the scopes its token carries AND its account still holds; 401 when the
    account is gone or revoked (or was, after this token was issued)."""
    if grants is None:
        raise unauthorized(UNKNOWN)
    if grants.refuses(client.claims.get("iat")):
        raise unauthorized(REVOKED)
    if client.scopes <= grants.scopes:
        return client
    return dataclasses.replace(client, scopes=client.scopes & grants.scopes)


class AccountView:
    """This process's copy of every account's grants, kept fresh by revision (see above)."""

    def __init__(self, db: Database, *, refresh_seconds: float) -> None:
        self._db = db
        self.refresh_seconds = max(0.0, refresh_seconds)
        self._grants: dict[str, Grants] = {}
        self.revision = -1
        # Monotonic time at which the view must be refreshed before it is used again.
        self._due = 0.0
        # When the last successful refresh started: monotonic (staleness), wall (vs. token iat).
        self._read_at = -float("inf")
        self._read_wall = -float("inf")
        self._lock = asyncio.Lock()
        self.refreshes = 0

    async def admit(self, client: Client) -> Client:
        """`effective(client, ...)` against a view at most `refresh_seconds` old."""
        if time.monotonic() >= self._due:
            await self._refresh()
        grants = self._grants.get(client.sub)
        if grants is None and self._may_have_missed(client):
            await self._refresh(missing=client)
            grants = self._grants.get(client.sub)
        return effective(client, grants)

    def _may_have_missed(self, client: Client) -> bool:
        """The token was issued after (or about when) the view was read: its account may be newer
        than the view. (PyJWT refuses an `iat` in the future beyond the leeway, so this holds for
        a bounded time per token.)"""
        iat = client.claims.get("iat")
        return isinstance(iat, int | float) and self._read_wall < iat + ISSUE_SLACK_SECONDS

    async def _refresh(self, *, missing: Client | None = None) -> None:
        async with self._lock:
            now = time.monotonic()
            if missing is not None:
                if missing.sub in self._grants or not self._may_have_missed(missing):
                    return  # another request's refresh answered the question
            elif now < self._due:
                return  # another request refreshed while this one waited
            started, started_wall = now, time.time()
            try:
                rows = await self._db.read(repository.accounts_changed_since, self.revision)
            except Exception:
                if now - self._read_at > STALE_LIMIT_SECONDS:
                    raise
                log.warning(
                    "accounts: cannot refresh the view; using the one read %.0f s ago",
                    now - self._read_at,
                )
                self._due = now + RETRY_AFTER_FAILURE_SECONDS
                return
            for row in rows:
                self._grants[row.sub] = Grants.from_row(row)
                self.revision = max(self.revision, int(row.revision))
            self._read_at, self._read_wall = started, started_wall
            self._due = started + self.refresh_seconds
            self.refreshes += 1
