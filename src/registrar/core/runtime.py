"""What one process holds while it runs: settings, the database, the keyring, shared secrets."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from registrar.auth.signing import KeyRing
from registrar.core.settings import Settings
from registrar.db.database import Database
from registrar.db.engine import create_database


@dataclass
class Runtime:
    settings: Settings
    db: Database
    keyring: KeyRing
    extras: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        db = create_database(settings)
        keyring = KeyRing(
            db,
            secret=settings.key_encryption_secret,
            token_lifetime=settings.token_lifetime_seconds,
        )
        return cls(settings=settings, db=db, keyring=keyring)

    async def close(self) -> None:
        await self.db.dispose()
