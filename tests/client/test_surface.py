"""The fixed surface (spec section 8): names importable, sync and async clients alike."""

from __future__ import annotations

import inspect

import pytest
import registrar_client
from registrar_client import _async, _sync

PAIRS = [
    (_sync.Registrar, _async.AsyncRegistrar),
    (_sync.Enrollments, _async.AsyncEnrollments),
    (_sync.Petitions, _async.AsyncPetitions),
    (_sync.Students, _async.AsyncStudents),
    (_sync.Tasks, _async.AsyncTasks),
    (_sync.Events, _async.AsyncEvents),
    (_sync.Webhooks, _async.AsyncWebhooks),
    (_sync.Task, _async.AsyncTask),
    (_sync.Paginator, _async.AsyncPaginator),
]

# Methods that are plain (they return an iterator, not an awaitable) in both.
ITERATOR_METHODS = {"list", "petitions", "deliveries", "pages"}


def public(cls: type) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(member)
        for name, member in vars(cls).items()
        if not name.startswith("_") and callable(member)
    }


@pytest.mark.parametrize(("sync", "async_"), PAIRS, ids=[p[0].__name__ for p in PAIRS])
def test_the_async_client_has_the_same_methods(sync: type, async_: type) -> None:
    ours, theirs = public(sync), public(async_)
    renamed = {"close": "aclose"}
    assert {renamed.get(n, n) for n in ours} == set(theirs)
    for name, signature in ours.items():
        other = theirs[renamed.get(name, name)]
        assert list(signature.parameters) == list(other.parameters), name
        for p, q in zip(signature.parameters.values(), other.parameters.values(), strict=True):
            assert (p.kind, p.default) == (q.kind, q.default), f"{name}({p.name})"
        member = getattr(async_, renamed.get(name, name))
        if name in ITERATOR_METHODS:
            assert not inspect.iscoroutinefunction(member), name
        else:
            assert inspect.iscoroutinefunction(member) or inspect.isasyncgenfunction(member), name


def test_the_fixed_names() -> None:
    for name in (
        "Registrar",
        "AsyncRegistrar",
        "RegistrarError",
        "Unauthorized",
        "Forbidden",
        "NotFound",
        "BadRequest",
        "RateLimited",
        "TaskFailed",
    ):
        assert hasattr(registrar_client, name), name
    for name in registrar_client.__all__:
        assert hasattr(registrar_client, name), name
    assert callable(registrar_client.webhooks.verify)
    for error in (
        "Unauthorized",
        "Forbidden",
        "NotFound",
        "BadRequest",
        "RateLimited",
        "TaskFailed",
    ):
        assert issubclass(getattr(registrar_client, error), registrar_client.RegistrarError)
    signature = inspect.signature(_sync.Enrollments.list)
    assert [p.kind for p in signature.parameters.values()] == [
        inspect.Parameter.POSITIONAL_ONLY,  # self (before the /)
        inspect.Parameter.POSITIONAL_ONLY,
        inspect.Parameter.KEYWORD_ONLY,
        inspect.Parameter.VAR_KEYWORD,
    ]


def test_the_package_is_typed() -> None:
    from pathlib import Path

    assert (Path(registrar_client.__file__).parent / "py.typed").exists()
