"""Test harness: every test talks HTTP to the real app over a real database.

The database is SQLite by default. Set REGISTRAR_TEST_POSTGRES_URL (an admin URL such as
postgresql://postgres@127.0.0.1:5432/postgres) to run the same suite on PostgreSQL: each test module
then gets a database of its own, created and dropped around it.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from registrar.app import create_app
from registrar.auth.scopes import ALL_SCOPES
from registrar.cli.main import app as cli_app
from registrar.core.settings import Settings

POSTGRES_ADMIN_URL = os.environ.get("REGISTRAR_TEST_POSTGRES_URL")


def backend() -> str:
    return "postgresql" if POSTGRES_ADMIN_URL else "sqlite"


async def _pg_admin(sql: str) -> None:
    import asyncpg

    assert POSTGRES_ADMIN_URL
    conn = await asyncpg.connect(POSTGRES_ADMIN_URL)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def new_database_url(tmp_dir: Path) -> tuple[str, Callable[[], None]]:
    """A fresh, empty database and the function that removes it."""
    if not POSTGRES_ADMIN_URL:
        path = tmp_dir / f"registrar-{secrets.token_hex(4)}.db"
        return f"sqlite:///{path}", lambda: None
    from sqlalchemy.engine import make_url

    name = f"registrar_test_{secrets.token_hex(6)}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    url = make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)

    def drop() -> None:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    return url, drop


@pytest.fixture(scope="module")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url, drop = new_database_url(tmp_path_factory.mktemp("db"))
    yield url
    drop()


def make_settings(database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": database_url,
        "worker_poll_seconds": 0.05,
        "log_json": False,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


@pytest.fixture(scope="module")
def api(settings: Settings) -> Iterator[TestClient]:
    """The app, lifespan and in-process worker included, over the module's database."""
    with TestClient(create_app(settings), base_url="http://testserver") as client:
        yield client


def cli(database_url: str, *args: str, input: str | None = None) -> tuple[int, str, str]:
    """Run the `registrar` command in-process against `database_url`."""
    runner = CliRunner()
    result = runner.invoke(
        cli_app,
        list(args),
        env={"REGISTRAR_DATABASE_URL": database_url},
        input=input,
        catch_exceptions=False,
    )
    return result.exit_code, result.stdout, result.stderr


@dataclass
class Accounts:
    """Registers service accounts through the CLI and logs them in through the API."""

    database_url: str
    api: TestClient
    keys: dict[str, str] = field(default_factory=dict)

    def key(self, sub: str, scopes: list[str] | tuple[str, ...]) -> str:
        if sub not in self.keys:
            code, out, errout = cli(
                self.database_url,
                "clients",
                "create",
                "--sub",
                sub,
                "--name",
                f"{sub} app",
                "--email",
                f"{sub}@example.edu",
                "--scopes",
                " ".join(scopes),
            )
            assert code == 0, errout
            self.keys[sub] = out.strip().splitlines()[-1]
        return self.keys[sub]

    def token(self, sub: str, scopes: list[str] | tuple[str, ...]) -> str:
        response = self.api.post("/api/jwt", headers={"Authorization": self.key(sub, scopes)})
        assert response.status_code == 200, response.text
        return str(response.json()["jwt"])

    def headers(
        self, scopes: list[str] | tuple[str, ...], sub: str | None = None
    ) -> dict[str, str]:
        """Bearer headers for a service account granted exactly `scopes`."""
        sub = sub or "svc-" + "-".join(sorted(s.rsplit(":", 1)[-1] for s in scopes)) or "svc-none"
        return {"Authorization": f"Bearer {self.token(sub, scopes)}"}


@pytest.fixture(scope="module")
def accounts(database_url: str, api: TestClient) -> Accounts:
    return Accounts(database_url, api)


@pytest.fixture(scope="module")
def all_scopes(accounts: Accounts) -> dict[str, str]:
    return accounts.headers(ALL_SCOPES, sub="svc-all")
