"""The caller, as its verified token describes it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from registrar.auth.scopes import PEOPLE_PRIVATE


@dataclass(frozen=True)
class Client:
    """The caller, as its verified token describes it."""

    sub: str
    name: str
    email: str
    scopes: frozenset[str]
    claims: dict[str, Any] = field(hash=False, compare=False)

    def has(self, scope: str) -> bool:
        return scope in self.scopes

    @property
    def sees_private(self) -> bool:
        return PEOPLE_PRIVATE in self.scopes

    def requester(self) -> dict[str, Any]:
        """The claims a task records about who asked for it."""
        c = self.claims
        return {
            "sub": c.get("sub"),
            "name": c.get("name"),
            "email": c.get("email"),
            "scope": c.get("scope", ""),
            "exp": c.get("exp"),
            "iat": c.get("iat"),
        }
