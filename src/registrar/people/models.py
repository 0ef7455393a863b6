"""People: whose records these are, and whether FERPA hides them (people/ferpa.py)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from registrar.core.clock import utcnow
from registrar.db.base import Base, UTCDateTime


class Person(Base):
    __tablename__ = "people"

    netid: Mapped[str] = mapped_column(String(64), primary_key=True)
    # FERPA-protected ("confidential"): hidden from callers without urn:dartmouth:people:private.
    confidential: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)

    __table_args__ = (
        # The few confidential people, for the FERPA visibility check.
        Index(
            "ix_people_confidential_true",
            "netid",
            sqlite_where=text("confidential"),
            postgresql_where=text("confidential"),
        ),
    )
