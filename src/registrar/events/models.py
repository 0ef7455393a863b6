"""The change record: one row per change, in the transaction of the change (spec sections 6, 7)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from registrar.db.base import Base, UTCDateTime


class Event(Base):
    """A change as it committed. Its representation (the CloudEvent's `data`) is not stored: the
    feed builds it when read, from the resource as it is then and as the reader may see it, so a
    refresh that changes 1% of a million records writes ten thousand short rows, not a million
    documents."""

    __tablename__ = "events"

    # Commit order (events/record.py says how PostgreSQL keeps it): the feed's order and cursor.
    # INTEGER on SQLite, so that it is the rowid.
    position: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    # enrollment.created|updated|deleted, petition.created, task.completed
    type: Mapped[str] = mapped_column(String(32), nullable=False)
    subject: Mapped[str] = mapped_column(String(256), nullable=False)  # the resource id
    origin: Mapped[str] = mapped_column(String(8), nullable=False)  # "sis" or "api"
    # The person the record is about: FERPA is decided from it when the event is read.
    netid: Mapped[str | None] = mapped_column(String(64))
    # Updates: the representation's top-level keys that changed.
    changed: Mapped[list[Any] | None] = mapped_column(JSON)
    # task.completed: the sub of the task's requester, the only one who sees it.
    requester: Mapped[str | None] = mapped_column(String(255))
    time: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)

    __table_args__ = (
        # Retention deletes by age; the type filter walks one type in commit order.
        Index("ix_events_time", "time"),
        Index("ix_events_type_position", "type", "position"),
        Index("ix_events_subject", "subject"),
    )
