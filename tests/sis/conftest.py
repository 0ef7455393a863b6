"""The load tests' own database: a fresh one per test, so each load starts from nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.databases import new_database_url


@pytest.fixture
def fresh_db(tmp_path: Path) -> Iterator[str]:
    url, drop = new_database_url(tmp_path)
    yield url
    drop()
