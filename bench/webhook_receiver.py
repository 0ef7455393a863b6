"""The webhook bench's receiver (an ASGI app under uvicorn, a process of its own): POST /fast
answers 204 at once, POST /hang never answers (until the deliverer gives up), GET /count says how
many POSTs each path got."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from typing import Any

counts: Counter[str] = Counter()


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    path = scope["path"]
    while True:  # read the body whole
        message = await receive()
        if not message.get("more_body"):
            break
    if scope["method"] == "GET":
        body = json.dumps(counts).encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})
        return
    counts[path] += 1
    if path == "/hang":
        await asyncio.sleep(3600)
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})
