"""registrar_client: the Python client of the registrar Academic Records API.

    from registrar_client import Registrar

    with Registrar("http://127.0.0.1:8000", api_key) as registrar:
        for enrollment in registrar.enrollments.list(term__sis_term_code="<202001"):
            print(enrollment.id, enrollment.section.id)
        task = registrar.enrollments.set_course_assessment(
            enrollment_id, submit_date="2020-03-05T17:53:46Z"
        )
        print(task.wait(timeout=30).path)

`AsyncRegistrar` has the same methods, awaitable. Errors are `RegistrarError` subclasses;
`registrar_client.webhooks.verify` checks a webhook delivery's signature.
"""

from . import webhooks
from ._async import AsyncEventStream, AsyncPaginator, AsyncRegistrar, AsyncTask
from ._core import RetryPolicy, literal
from ._operations import Page, RegistrarWarning
from ._sync import EventStream, Paginator, Registrar, Task
from ._version import __version__
from .errors import (
    APIConnectionError,
    BadRequest,
    Conflict,
    Forbidden,
    Gone,
    NotFound,
    RateLimited,
    RegistrarError,
    ServerError,
    ServiceUnavailable,
    TaskFailed,
    TaskTimeout,
    Unauthorized,
    Unprocessable,
    WebhookVerificationError,
)
from .models import (
    CourseAssessment,
    Delivery,
    Enrollment,
    Event,
    Petition,
    Record,
    Requester,
    Section,
    TaskRecord,
    Term,
    Webhook,
)

__all__ = [
    "APIConnectionError",
    "AsyncEventStream",
    "AsyncPaginator",
    "AsyncRegistrar",
    "AsyncTask",
    "BadRequest",
    "Conflict",
    "CourseAssessment",
    "Delivery",
    "Enrollment",
    "Event",
    "EventStream",
    "Forbidden",
    "Gone",
    "NotFound",
    "Page",
    "Paginator",
    "Petition",
    "RateLimited",
    "Record",
    "Registrar",
    "RegistrarError",
    "RegistrarWarning",
    "Requester",
    "RetryPolicy",
    "Section",
    "ServerError",
    "ServiceUnavailable",
    "Task",
    "TaskFailed",
    "TaskRecord",
    "TaskTimeout",
    "Term",
    "Unauthorized",
    "Unprocessable",
    "Webhook",
    "WebhookVerificationError",
    "__version__",
    "literal",
    "webhooks",
]
