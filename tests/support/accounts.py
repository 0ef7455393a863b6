"""Service accounts, registered through the CLI and logged in through the API, as an operator and a
client would."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from registrar.cli.main import app as cli_app


def cli(database_url: str, *args: str, input: str | None = None) -> tuple[int, str, str]:
    """Run the `registrar` command in-process against `database_url`."""
    result = CliRunner().invoke(
        cli_app,
        list(args),
        env={"REGISTRAR_DATABASE_URL": database_url},
        input=input,
        catch_exceptions=False,
    )
    return result.exit_code, result.stdout, result.stderr


def create_account(database_url: str, sub: str, scopes: list[str] | tuple[str, ...]) -> str:
    """`registrar clients create`; the new API key."""
    code, out, errout = cli(
        database_url,
        *("clients", "create", "--sub", sub, "--name", f"{sub} app"),
        *("--email", f"{sub}@example.edu", "--scopes", " ".join(scopes)),
    )
    assert code == 0, errout
    return out.strip().splitlines()[-1]


@dataclass
class Accounts:
    """Registers service accounts through the CLI and logs them in through the API."""

    database_url: str
    api: TestClient
    keys: dict[str, str] = field(default_factory=dict)

    def key(self, sub: str, scopes: list[str] | tuple[str, ...]) -> str:
        if sub not in self.keys:
            self.keys[sub] = create_account(self.database_url, sub, scopes)
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
