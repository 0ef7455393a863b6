"""The petition tests' data: people and petitions written straight to the database."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from registrar.core.settings import Settings
from tests.support.seeding import seed_petitions


@pytest.fixture(scope="module")
def petitions(api: TestClient, settings: Settings) -> list[dict[str, Any]]:
    """Seeds the module's database (after the app migrated it); returns the petition rows."""
    return seed_petitions(settings)
