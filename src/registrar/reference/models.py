"""Reference codes: petition types (Banner event codes), origins and schools."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from registrar.core.clock import utcnow
from registrar.db.base import Base, UTCDateTime


class _Code:
    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    # The order of the code's collection and its found sets (paging follows an integer key, as
    # for enrollments and petitions); numbered when the code is first loaded.
    pk: Mapped[int] = mapped_column(Integer, nullable=False, unique=True, index=True)
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    is_active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    cache_date: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)


class PetitionType(_Code, Base):
    __tablename__ = "petition_types"


class Origin(_Code, Base):
    __tablename__ = "origins"


class School(_Code, Base):
    __tablename__ = "schools"
