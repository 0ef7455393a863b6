"""What checking every token against its account's current grants costs (auth/accounts.py).

    .venv/bin/python bench/revocation_bench.py [--accounts 1000] [--calls 200000]
        [--postgres ADMIN_URL]

Fills a fresh database (SQLite by default; PostgreSQL with --postgres) with N service accounts,
issues a token to one of them, then measures in one process:

- per request: `AccountView.admit` on a fresh view (what the revocation check adds to a request:
  a clock read, a dict lookup, a subset test), and `authenticate` as a request runs it (header
  parse, the verified-token cache, the admit, remembered on the request), against the cached
  token check alone, in microseconds of CPU;
- per refresh (every REGISTRAR_ACCOUNT_REFRESH_SECONDS per process): the "what changed since"
  query when nothing changed (the steady state), after one account changed, and the first load of
  every account, in milliseconds of wall time (median of 200, 200 and 20).

Run it under the exclusive CPU lock: `/work/notes/bin/cpu-exclusive .venv/bin/python bench/...`.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import fresh_database


async def measure(database_url: str, accounts: int, calls: int) -> dict[str, float]:
    from registrar.auth import repository
    from registrar.auth.accounts import AccountView
    from registrar.auth.scopes import ENROLLMENTS_READ
    from registrar.auth.service import create_service_account, login
    from registrar.auth.tokens import verify_token
    from registrar.core.runtime import Runtime
    from registrar.core.settings import Settings
    from registrar.db.migrate import upgrade
    from registrar.http.authentication import authenticate

    settings = Settings(database_url=database_url, account_refresh_seconds=10)
    await asyncio.to_thread(upgrade, database_url)
    runtime = Runtime.build(settings)
    try:
        key = ""
        for i in range(accounts):
            key = await create_service_account(
                runtime.db,
                settings,
                sub=f"bench-{i:05d}",
                name="bench",
                email="bench@example.edu",
                scopes=ENROLLMENTS_READ,
            )
        result = await login(runtime.db, runtime.keyring, settings, key, None)
        client = await verify_token(runtime.keyring, settings, result.jwt)
        view: AccountView = runtime.accounts
        await view.admit(client)  # first load

        figures: dict[str, float] = {}
        start = time.process_time()
        for _ in range(calls):
            await view.admit(client)
        figures["admit_us"] = (time.process_time() - start) / calls * 1e6

        start = time.process_time()
        for _ in range(calls):
            await verify_token(runtime.keyring, settings, result.jwt)
        figures["verify_cached_us"] = (time.process_time() - start) / calls * 1e6

        header = [(b"authorization", f"Bearer {result.jwt}".encode())]

        class App:
            class state:  # the shape Starlette gives: app.state.runtime
                pass

        App.state.runtime = runtime  # type: ignore[attr-defined]
        start = time.process_time()
        for _ in range(calls):
            scope: dict[str, Any] = {"headers": header, "app": App}
            await authenticate(scope)
        figures["authenticate_us"] = (time.process_time() - start) / calls * 1e6

        async def wall_ms(fn: Any, *args: Any, n: int) -> float:
            times = []
            for _ in range(n):
                t = time.perf_counter()
                await fn(*args)
                times.append((time.perf_counter() - t) * 1000)
            return statistics.median(times)

        figures["refresh_unchanged_ms"] = await wall_ms(
            runtime.db.read, repository.accounts_changed_since, view.revision, n=200
        )
        await runtime.db.write(repository.set_account_scopes, "bench-00000", ENROLLMENTS_READ)
        figures["refresh_one_changed_ms"] = await wall_ms(
            runtime.db.read, repository.accounts_changed_since, view.revision, n=200
        )
        figures["first_load_ms"] = await wall_ms(
            runtime.db.read, repository.accounts_changed_since, -1, n=20
        )
        return figures
    finally:
        await runtime.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--postgres", default=None, help="admin URL: bench on PostgreSQL")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url, drop = fresh_database(Path(tmp), args.postgres)
        try:
            figures = asyncio.run(measure(url, args.accounts, args.calls))
        finally:
            drop()
    backend = "PostgreSQL" if args.postgres else "SQLite"
    print(f"{backend}, {args.accounts} accounts, {args.calls} calls")
    print(
        f"  per request: admit {figures['admit_us']:.2f} us of CPU; whole authenticate "
        f"(header, cached token, admit) {figures['authenticate_us']:.2f} us, of which the "
        f"cached token check alone {figures['verify_cached_us']:.2f} us"
    )
    print(
        f"  per refresh: nothing changed {figures['refresh_unchanged_ms']:.3f} ms, "
        f"one account changed {figures['refresh_one_changed_ms']:.3f} ms; "
        f"first load of all {figures['first_load_ms']:.2f} ms"
    )


if __name__ == "__main__":
    main()
