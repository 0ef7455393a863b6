"""The enrollment tests' data: a small, known university, written straight to the database."""

from __future__ import annotations

from typing import Any

import pytest

from registrar.core.settings import Settings
from tests.support.seeding import seed_known_enrollments


@pytest.fixture(scope="module")
def enrollments(api: Any, settings: Settings) -> list[dict[str, Any]]:
    """Seeds the module's database (after the app migrated it); returns the enrollment rows."""
    return seed_known_enrollments(settings)
