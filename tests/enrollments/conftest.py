"""The enrollment tests' data: a small, known university, written straight to the database."""

from __future__ import annotations

from typing import Any

import pytest

from registrar.auth.scopes import ENROLLMENTS_READ, ENROLLMENTS_READ_SENSITIVE, PEOPLE_PRIVATE
from registrar.core.settings import Settings
from tests.support.accounts import Accounts
from tests.support.seeding import seed_known_enrollments


@pytest.fixture(scope="module")
def enrollments(api: Any, settings: Settings) -> list[dict[str, Any]]:
    """Seeds the module's database (after the app migrated it); returns the enrollment rows."""
    return seed_known_enrollments(settings)


# The three kinds of reader (each module has a database, and so accounts, of its own).
@pytest.fixture(scope="module")
def reader(accounts: Accounts) -> dict[str, str]:
    return accounts.headers([ENROLLMENTS_READ], sub="reader")


@pytest.fixture(scope="module")
def sensitive(accounts: Accounts) -> dict[str, str]:
    return accounts.headers([ENROLLMENTS_READ, ENROLLMENTS_READ_SENSITIVE], sub="sensitive")


@pytest.fixture(scope="module")
def private(accounts: Accounts) -> dict[str, str]:
    return accounts.headers([ENROLLMENTS_READ, PEOPLE_PRIVATE], sub="private")
