"""Per-shape caches of statements, bounded by what they hold (issue 9 item 7).

Every distinct filter shape (which attributes, how many terms, which operators) is a distinct
statement, and three caches keep statements per shape: SQLAlchemy's compiled cache (per engine),
SQLite's prepared statements (per connection) and asyncpg's prepared statements (per connection).
Each was bounded by a number of entries only, and an entry's size grows with the filter: about 700
requests with distinct shapes of up to 800 wildcard terms grew a process from 108 MB to 761 MB
(1.4-1.55 GB in the outside review, on larger shapes), never returned.

SQLAlchemy's cache is replaced here by one bounded by the length of the SQL it holds (a compiled
statement with its cache key measured about 100 bytes of memory per character of SQL; a `?netid=`
page is about 1,300 characters): the statements every request runs stay, and a statement larger
than a sixteenth of the budget is compiled each time instead of evicting them (compiling costs
about what running such a filter does). The drivers' prepared-statement caches are bounded by
count (engine.py), their entries by the limits on filters (paging/filters.py).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

# Characters of SQL SQLAlchemy's compiled cache holds per engine: about 25 MB of memory.
COMPILED_SQL_CHARS = 256 * 1024
# Prepared statements kept per connection, SQLite (stdlib default 128) and asyncpg (100).
PREPARED_PER_CONNECTION = 64


class CompiledStatements:
    """A least-recently-used map of compiled statements whose size is the length of their SQL;
    the mapping SQLAlchemy's `compiled_cache` execution option takes (`get`, item assignment).
    Shared by the threads of an engine, hence the lock."""

    def __init__(self, max_chars: int = COMPILED_SQL_CHARS) -> None:
        self.max_chars = max_chars
        self.chars = 0
        self._entries: OrderedDict[Any, tuple[Any, int]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Any, default: Any = None) -> Any:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return default
            self._entries.move_to_end(key)
            return entry[0]

    def __setitem__(self, key: Any, compiled: Any) -> None:
        weight = len(getattr(compiled, "string", "") or "") + 1
        if weight > self.max_chars // 16:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self.chars -= old[1]
            self._entries[key] = (compiled, weight)
            self.chars += weight
            while self.chars > self.max_chars:
                _, (_, evicted) = self._entries.popitem(last=False)
                self.chars -= evicted

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.chars = 0
