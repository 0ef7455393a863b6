"""Errors: one class per answer a caller handles differently, all under `RegistrarError`.

Every error the API answers is an RFC 9457 problem (`type, title, status, detail, errors`); the
exception carries those fields, the raw problem and the response headers. Errors that are not
HTTP answers (a connection that kept failing, a task that failed or did not finish in time) are
`RegistrarError`s too, with `status` None, so `except RegistrarError` catches everything the client
raises on purpose.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .models import TaskRecord

__all__ = [
    "APIConnectionError",
    "BadRequest",
    "Conflict",
    "Forbidden",
    "Gone",
    "NotFound",
    "RateLimited",
    "RegistrarError",
    "ServerError",
    "ServiceUnavailable",
    "TaskFailed",
    "TaskTimeout",
    "Unauthorized",
    "Unprocessable",
    "WebhookVerificationError",
]


class RegistrarError(Exception):
    """Base of every error the client raises on purpose.

    `status` is the HTTP status (None when the error is not an HTTP answer); `title`, `detail`
    and `errors` are the problem document's; `problem` is the whole document (unknown members
    kept); `headers` are the response's (empty when there was none).
    """

    status: int | None
    title: str
    detail: str
    errors: list[str]
    problem: dict[str, Any]
    headers: dict[str, str]

    def __init__(
        self,
        detail: str,
        *,
        status: int | None = None,
        title: str = "",
        errors: list[str] | None = None,
        problem: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.status = status
        self.title = title
        self.detail = detail
        self.errors = list(errors or [])
        self.problem = dict(problem or {})
        self.headers = dict(headers or {})
        super().__init__(self._message())

    @property
    def type(self) -> str | None:
        """The problem's `type` URI, when the answer had one."""
        value = self.problem.get("type")
        return value if isinstance(value, str) else None

    def _message(self) -> str:
        head = f"{self.status} {self.title}".strip() if self.status else self.title
        text = f"{head}: {self.detail}" if head else self.detail
        if self.errors:
            text += " [" + "; ".join(self.errors) + "]"
        return text

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only fields: pickle (multiprocessing, task queues) must rebuild them by name.
        return (_rebuild, (type(self), self.__dict__.copy(), self.args))


def _rebuild(cls: type[RegistrarError], state: dict[str, Any], args: tuple[Any, ...]) -> Any:
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


class BadRequest(RegistrarError):
    """400: the request is malformed (a bad filter, a bad date, a bad continuation key...)."""


class Unauthorized(RegistrarError):
    """401: the API key is unknown or revoked, or a token was refused even after renewing it."""


class Forbidden(RegistrarError):
    """403: the token lacks a scope; `errors` names it (`missing scope: ...`)."""


class NotFound(RegistrarError):
    """404: no such record, or one hidden from this caller (the API does not say which)."""


class Conflict(RegistrarError):
    """409: the request conflicts with the resource's state."""


class Gone(RegistrarError):
    """410: e.g. an events cursor older than the feed's retention."""


class Unprocessable(RegistrarError):
    """422: e.g. an Idempotency-Key reused with a different request."""


class RateLimited(RegistrarError):
    """429 that did not clear within the retry budget; `retry_after` is the server's hint (s)."""

    retry_after: float | None = None


class ServerError(RegistrarError):
    """5xx from the service (after retries, for those that are retried)."""

    retry_after: float | None = None


class ServiceUnavailable(ServerError):
    """503 that did not clear within the retry budget (e.g. the database is unreachable)."""


class APIConnectionError(RegistrarError):
    """The service could not be reached (or the connection broke) and retries did not help.

    The transport's exception is the `__cause__`.
    """


class TaskFailed(RegistrarError):
    """A task ended `error`. `task` is the finished task; `errors` are its messages, one each."""

    task: TaskRecord

    def __init__(self, task: TaskRecord) -> None:
        message = task.get("message")
        problems = task_messages(message if isinstance(message, str) else "")
        super().__init__(
            "The task ended with status error.",
            title=f"Task {task.get('id')} failed",
            errors=problems,
        )
        self.task = task


class TaskTimeout(RegistrarError, TimeoutError):
    """`Task.wait()` ran out of time; `task` is the last state seen (still `accepted`)."""

    task: TaskRecord

    def __init__(self, task: TaskRecord, timeout: float) -> None:
        super().__init__(
            f"Task {task.get('id')} was still {task.get('status')!r} after {timeout:g} s.",
            title="Task timeout",
        )
        self.task = task


class WebhookVerificationError(RegistrarError):
    """A webhook delivery's signature, timestamp or headers did not check out."""


def task_messages(message: str) -> list[str]:
    """A task's `message` as a list of problems.

    The service writes failures the way seed 000 does, a Python list's text
    (`"['Missing attribute: school.', 'Unknown petition_code: Q99.']"`); anything else is one
    message.
    """
    text = message.strip()
    if text.startswith("[") and text.endswith("]"):
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            return [text]
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return list(value)
    return [text] if text else []


_BY_STATUS: dict[int, type[RegistrarError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    410: Gone,
    422: Unprocessable,
    429: RateLimited,
    503: ServiceUnavailable,
}


def error_for(
    status: int,
    body: Any,
    text: str,
    headers: Mapping[str, str],
    reason: str,
    retry_after: float | None,
) -> RegistrarError:
    """The exception for an error answer: its class by status, its fields from the problem."""
    cls = _BY_STATUS.get(status) or (ServerError if status >= 500 else RegistrarError)
    problem: dict[str, Any] = body if isinstance(body, dict) else {}
    title = problem.get("title")
    detail = problem.get("detail")
    errors = problem.get("errors")
    error = cls(
        detail if isinstance(detail, str) else (text.strip()[:500] or reason),
        status=status,
        title=title if isinstance(title, str) else reason,
        errors=[str(e) for e in errors] if isinstance(errors, list) else None,
        problem=problem,
        headers=headers,
    )
    if isinstance(error, (RateLimited, ServerError)):
        error.retry_after = retry_after
    return error
