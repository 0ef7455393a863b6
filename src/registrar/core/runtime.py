"""What one process holds while it runs: settings, the database, the keyring, its side of the task
queue, shared secrets. Built once per process (the app's lifespan, a worker, a CLI command)."""

from __future__ import annotations

from dataclasses import dataclass

from registrar.auth.accounts import AccountView
from registrar.auth.signing import KeyRing
from registrar.auth.throttle import LoginThrottle
from registrar.core.settings import Settings
from registrar.db.database import Database
from registrar.db.engine import asyncpg_dsn, create_database
from registrar.db.notices import Notices
from registrar.events import repository as events_repo
from registrar.tasks import repository as tasks_repo
from registrar.tasks.queue import TaskQueue


@dataclass
class Runtime:
    settings: Settings
    db: Database
    keyring: KeyRing
    queue: TaskQueue
    # What each service account is granted now (revocations, removed scopes): auth/accounts.py.
    accounts: AccountView
    # Failed logins per client address (auth/throttle.py).
    login_throttle: LoginThrottle
    # What wakes long-polls (a task finished, events recorded): db/notices.py.
    notices: Notices
    # The key that signs found sets (continuation keys), read from the database on first use.
    found_set_secret: bytes | None = None
    # The key that seals event cursors and names events (events/cursors.py), likewise.
    event_secret: bytes | None = None
    # The key that seals webhook secrets at rest (webhooks/sealing.py), likewise.
    webhook_secret: bytes | None = None

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        db = create_database(settings)
        keyring = KeyRing(
            db,
            secret=settings.key_encryption_secret,
            token_lifetime=settings.token_lifetime_seconds,
        )
        return cls(
            settings=settings,
            db=db,
            keyring=keyring,
            queue=TaskQueue(db),
            accounts=AccountView(db, refresh_seconds=settings.account_refresh_seconds),
            login_throttle=LoginThrottle(db, limit=settings.login_failures_per_minute),
            notices=Notices(
                dialect=db.dialect,
                dsn=asyncpg_dsn(settings.database_url) if db.dialect == "postgresql" else None,
                sqlite_path=db.sqlite_path,
                unfinished=lambda ids: db.read(tasks_repo.unfinished_of, ids),
                newest_event=lambda: db.read(events_repo.newest_position),
            ),
        )

    async def close(self) -> None:
        await self.notices.stop()
        await self.db.dispose()
