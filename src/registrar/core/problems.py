"""The ways a request can fail, as plain exceptions: raised by services, repositories and the filter
grammar, which know nothing of HTTP. `http/problems.py` answers each as RFC 9457 problem+json."""

from __future__ import annotations

from http import HTTPStatus


class ProblemError(Exception):
    """Raise anywhere below a route to answer with a problem document."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        slug: str | None = None,
        errors: list[str] | None = None,
        headers: dict[str, str] | None = None,
        title: str | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.slug = slug or default_slug(status)
        self.errors = errors or []
        self.headers = headers or {}
        self.title = title or HTTPStatus(status).phrase


def default_slug(status: int) -> str:
    """The problem type's last segment when none is given: the status phrase, kebab-cased."""
    return HTTPStatus(status).phrase.lower().replace(" ", "-")


def unauthorized(detail: str) -> ProblemError:
    return ProblemError(
        401,
        detail,
        slug="invalid-token",
        headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
    )


def forbidden(missing: list[str]) -> ProblemError:
    return ProblemError(
        403,
        "The token lacks a scope this operation requires.",
        slug="insufficient-scope",
        errors=[f"missing scope: {s}" for s in missing],
        headers={
            "WWW-Authenticate": f'Bearer error="insufficient_scope" scope="{" ".join(missing)}"'
        },
    )


def not_found(what: str) -> ProblemError:
    return ProblemError(404, f"No {what} with that id.", slug="not-found")


def bad_request(detail: str, errors: list[str] | None = None) -> ProblemError:
    return ProblemError(400, detail, slug="invalid-request", errors=errors)


def query_too_costly(budget_ms: int) -> ProblemError:
    """A read that spent its statement budget (REGISTRAR_STATEMENT_BUDGET_MS) and was stopped.

    A 400, not a 503: the cost is the query's own (the budget counts its run, not its wait for
    a lane), so sent again unchanged it would most likely be stopped again, and a client that
    retries 503s would only repeat the work. Narrowing it is what helps."""
    return ProblemError(
        400,
        "The query was stopped: it costs more than one request may. Narrow the filters (an "
        "equality on id, netid or section.id is always cheap).",
        slug="query-too-costly",
        errors=[f"statement budget: {budget_ms} ms (statement_budget_ms)"],
    )
