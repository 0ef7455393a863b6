"""The database: engines and URLs (engine.py), `Database` (database.py), the tables (base.py,
tables.py), the migrations (migrate.py, migrations/) and SQLite's threads and read cache.

One rule for reaching it. SQL lives in repositories (`<domain>/repository.py`; `paging/pages.py`
for collections), written as plain functions `fn(connection, ...)` over a SQLAlchemy `Connection`.
Everything else (routes, services, the worker and its task handlers, start-up, the CLI) runs them
through the process's `Database`:

- `await db.read(fn, ...)`: no transaction; lookups and pages (`db.read_cached` for point reads
  whose answer depends only on their arguments);
- `await db.write(fn, ...)`: one transaction, committed when `fn` returns, rolled back if it raises.
  A task handler is such a function, called inside the worker's own write.

On SQLite these run on long-lived stdlib connections on threads of their own (one writer, since
SQLite has one), one hop per call; on PostgreSQL the same functions run on asyncpg through
`run_sync`. Measured: a lookup costs 0.13 ms of CPU this way against 0.5 ms through an AsyncSession.
A read that is one statement built once may be a `PreparedRead` (prepared.py): still a plain
function over a Connection on SQLite, it runs on PostgreSQL as a prepared statement straight on an
asyncpg pool of its own (one round trip, no `run_sync` hop): GET by id 412 → 1,262 req/s.

Three places talk to the database another way, each for a measured reason: the SIS load streams
batches on an `AsyncConnection` from `db.bulk()` (parsing overlaps the driver's writes; COPY on
PostgreSQL; sis/repository.py); the shared rate-limit counter runs one prepared statement on an
asyncpg pool of its own (http/middleware/rate_limit.py: a quarter of SQLAlchemy's cost per
request); a PostgreSQL worker LISTENs on an asyncpg connection (tasks/worker.py). Migrations run
through Alembic (migrate.py).
"""
