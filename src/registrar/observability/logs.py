"""Logs, for the API and the worker alike: one line per record on stderr, JSON or plain, each
stamped with the correlation id of the request being served, anything secret-looking scrubbed.

Correlation ids travel in `X-Correlation-ID` (http/middleware/observability.py sets them), because
`X-Request-ID` already names found sets in this API (spec section 3).
"""

from __future__ import annotations

import contextvars
import logging
import re
import sys
import time
from typing import Any

import orjson

from registrar.core.settings import Settings

# The id of the request being served, for every log record emitted while serving it.
correlation_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "registrar_correlation_id", default=None
)


# A JWT (three base64url parts, the first two JSON objects) or one of our API keys (rk_<id>_ + 43
# base64url characters). The service never logs them on purpose; this catches accidents, e.g. a
# library quoting a header in an exception message.
_SECRET_PATTERNS = re.compile(r"eyJ[\w-]{5,}\.eyJ[\w-]{5,}\.[\w-]*|rk_[\w-]{20,}")


def redact(text: str) -> str:
    return _SECRET_PATTERNS.sub("[redacted]", text)


class ContextFilter(logging.Filter):
    """Stamps every record with the request's correlation id and scrubs anything secret-looking."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = correlation_id.get()
        if record.args:
            # Render now so that the scrub sees the final text.
            record.msg = record.getMessage()
            record.args = None
        if isinstance(record.msg, str) and ("eyJ" in record.msg or "rk_" in record.msg):
            record.msg = redact(record.msg)
        return True


# Attributes every LogRecord has; anything else on a record was passed in `extra=` and is logged.
_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime"}
)


class JSONFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id and the extras."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and value is not None:
                out[key] = value
        if record.exc_info:
            out["exception"] = redact(self.formatException(record.exc_info))
        # orjson: a few microseconds per line instead of json's tens, on every request.
        return orjson.dumps(out, default=str).decode()


class PlainFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")

    def formatException(self, ei: Any) -> str:
        return redact(super().formatException(ei))


_HANDLER_MARK = "_registrar_handler"


def configure_logging(settings: Settings) -> None:
    """Route the `registrar` loggers to stderr, JSON or plain; idempotent (one app per test...)."""
    logger = logging.getLogger("registrar")
    logger.setLevel(settings.log_level.upper())
    for h in list(logger.handlers):
        if getattr(h, _HANDLER_MARK, False):
            logger.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr)
    setattr(handler, _HANDLER_MARK, True)
    handler.addFilter(ContextFilter())
    handler.setFormatter(JSONFormatter() if settings.log_json else PlainFormatter())
    logger.addHandler(handler)
    # JSON lines go to our handler only, so a root handler (uvicorn's, an operator's) cannot print
    # them a second time in another format. Plain mode keeps propagating for test tooling.
    logger.propagate = not settings.log_json
