"""Every table, imported in one place so that Alembic sees the whole schema."""

from registrar.auth.models import InstanceSecret, ServiceAccount, SigningKey
from registrar.db.base import Base
from registrar.enrollments.models import Enrollment, EnrollmentAudit, Person, Section, Term
from registrar.http.middleware.rate_limit import RateLimitCounter
from registrar.petitions.models import Petition
from registrar.reference.models import Origin, PetitionType, School
from registrar.tasks.models import IdempotencyKey, Task

__all__ = [
    "Base",
    "Enrollment",
    "EnrollmentAudit",
    "IdempotencyKey",
    "InstanceSecret",
    "Origin",
    "Person",
    "Petition",
    "PetitionType",
    "RateLimitCounter",
    "School",
    "Section",
    "ServiceAccount",
    "SigningKey",
    "Task",
    "Term",
]
