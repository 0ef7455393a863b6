"""Task worker (placeholder until the queue lands: issue 3)."""

from __future__ import annotations

from registrar.config import Settings
from registrar.runtime import Runtime


class Worker:
    def __init__(self, runtime: Runtime, concurrency: int = 4) -> None:
        self.runtime = runtime
        self.concurrency = concurrency

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


def run_worker_process(settings: Settings, concurrency: int) -> None:
    raise NotImplementedError
