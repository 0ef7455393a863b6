"""Every table, imported in one place so that Alembic sees the whole schema."""

from registrar.auth.models import (
    InstanceSecret,
    LoginFailureCounter,
    RateLimitCounter,
    ServiceAccount,
    SigningKey,
)
from registrar.db.base import Base
from registrar.enrollments.models import Enrollment, EnrollmentAudit, Section, Term
from registrar.events.models import Event
from registrar.people.models import Person
from registrar.petitions.models import Petition
from registrar.reference.models import Origin, PetitionType, School
from registrar.sis.models import SisLoad, SisRefresh
from registrar.tasks.models import IdempotencyKey, Task
from registrar.webhooks.models import Webhook, WebhookAttempt, WebhookDelivery

__all__ = [
    "Base",
    "Enrollment",
    "EnrollmentAudit",
    "Event",
    "IdempotencyKey",
    "InstanceSecret",
    "LoginFailureCounter",
    "Origin",
    "Person",
    "Petition",
    "PetitionType",
    "RateLimitCounter",
    "School",
    "Section",
    "ServiceAccount",
    "SigningKey",
    "SisLoad",
    "SisRefresh",
    "Task",
    "Term",
    "Webhook",
    "WebhookAttempt",
    "WebhookDelivery",
]
