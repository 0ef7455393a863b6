"""Student petitions: what Banner keeps in SHREVNT."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from registrar.db.base import Base, UTCDateTime


class Petition(Base):
    __tablename__ = "petitions"

    # Surrogate key for keyset paging; `id` is the public 24-hex id.
    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(24), unique=True, nullable=False)
    netid: Mapped[str] = mapped_column(ForeignKey("people.netid"), nullable=False, index=True)
    petition_code: Mapped[str] = mapped_column(
        ForeignKey("petition_types.id"), nullable=False, index=True
    )
    origin_code: Mapped[str] = mapped_column(ForeignKey("origins.id"), nullable=False, index=True)
    school: Mapped[str] = mapped_column(ForeignKey("schools.id"), nullable=False, index=True)
    decision: Mapped[str | None] = mapped_column(Text, index=True)
    grade_term: Mapped[str | None] = mapped_column(String(16), index=True)
    user_netid: Mapped[str | None] = mapped_column(String(64), index=True)
    effective_date: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False, index=True)
    cache_date: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False, index=True)
    # The task that created it: a redelivered task finds its petition instead of making another.
    created_by_task: Mapped[str | None] = mapped_column(String(24), unique=True)
