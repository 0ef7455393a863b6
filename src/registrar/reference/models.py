"""Reference codes: petition types (Banner event codes), origins and schools."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, String
from sqlalchemy.orm import Mapped, mapped_column

from registrar.core.clock import utcnow
from registrar.db.base import Base, UTCDateTime


class _Code:
    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    is_active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    cache_date: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)


class PetitionType(_Code, Base):
    __tablename__ = "petition_types"


class Origin(_Code, Base):
    __tablename__ = "origins"


class School(_Code, Base):
    __tablename__ = "schools"
