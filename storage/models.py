"""SQLAlchemy 2 typed models: schools, members, enrollment, incidents and their timeline."""

from __future__ import annotations

import enum
from datetime import UTC, date, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from storage.crypto import EncryptedJSON, EncryptedText

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Refuse naive datetimes; store UTC."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Return an aware UTC datetime whatever the backend gave."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base with a naming convention Alembic can rely on."""

    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime, dict[str, Any]: JSON}


class Role(enum.StrEnum):
    """What a member does in SEXTO."""

    PROFESSIONAL = "professional"
    OFFICER = "officer"
    COORDINATOR = "coordinator"
    ADMIN = "admin"


class IncidentStatus(enum.StrEnum):
    """Where an incident is; it only moves forward."""

    OPEN = "open"
    POLICE_CALLED = "police_called"
    KIT_COLLECTED = "kit_collected"
    AWAITING_DECISION = "awaiting_decision"
    CLOSED = "closed"
    CANCELLED = "cancelled"


STATUS_ORDER = tuple(IncidentStatus)


class EventKind(enum.StrEnum):
    """Kinds of timeline events."""

    INCIDENT_OPENED = "incident_opened"
    STEP_DONE = "step_done"
    STATUS_CHANGED = "status_changed"
    INCIDENT_UPDATED = "incident_updated"
    INCIDENT_CANCELLED = "incident_cancelled"
    MESSAGE_IN = "message_in"
    MESSAGE_OUT = "message_out"
    MEDIA_DELETED = "media_deleted"
    ALERT_SENT = "alert_sent"
    ALERT_FAILED = "alert_failed"
    ALERT_SKIPPED = "alert_skipped"
    ALERT_ACKNOWLEDGED = "alert_acknowledged"
    ALERT_EXHAUSTED = "alert_exhausted"
    REMINDER_SENT = "reminder_sent"
    REMINDER_FAILED = "reminder_failed"
    ESCALATED = "escalated"
    NUDGE_SENT = "nudge_sent"
    OUTCOME_RECORDED = "outcome_recorded"
    FOLLOW_UP_RECORDED = "follow_up_recorded"
    MEMBER_ENROLLED = "member_enrolled"


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    return Enum(
        cls,
        name=name,
        values_callable=lambda e: [m.value for m in e],
        length=32,
        native_enum=False,
        create_constraint=True,
    )


class School(Base):
    """A school from config.yml."""

    __tablename__ = "schools"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    board: Mapped[str] = mapped_column(String(200))
    station: Mapped[str] = mapped_column(String(100))
    address: Mapped[str | None] = mapped_column(String(300))
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class MemberSchool(Base):
    """A professional's (or officer's) link to a school."""

    __tablename__ = "member_schools"

    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), primary_key=True)
    school_id: Mapped[str] = mapped_column(ForeignKey("schools.id"), primary_key=True)


class Member(Base):
    """A person enrolled with the bot (staff only; never a student)."""

    __tablename__ = "members"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    telegram_user_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[Role] = mapped_column(_enum(Role, "member_role"))
    language: Mapped[str] = mapped_column(String(2))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]

    schools: Mapped[list[School]] = relationship(
        secondary="member_schools", lazy="selectin", order_by="School.name"
    )


class OfficerAssignment(Base):
    """The community relations officer (and backup) who follows a school."""

    __tablename__ = "officer_assignments"

    school_id: Mapped[str] = mapped_column(ForeignKey("schools.id"), primary_key=True)
    officer_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    backup_officer_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))


class EnrollmentCode(Base):
    """A single-use, expiring enrollment code, stored only as a hash."""

    __tablename__ = "enrollment_codes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[Role] = mapped_column(_enum(Role, "member_role"))
    school_id: Mapped[str | None] = mapped_column(ForeignKey("schools.id"))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    used_by: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    revoked_at: Mapped[datetime | None]


class Incident(Base):
    """One SEXTO incident at a school."""

    __tablename__ = "incidents"
    __table_args__ = (
        Index("ix_incidents_school_status", "school_id", "status"),
        UniqueConstraint("year", "number", name="uq_incidents_year_number"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(20), unique=True)
    year: Mapped[int] = mapped_column(Integer)
    number: Mapped[int] = mapped_column(Integer)
    school_id: Mapped[str] = mapped_column(ForeignKey("schools.id"))
    # None once the retention purge has anonymised the incident.
    opened_by: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    status: Mapped[IncidentStatus] = mapped_column(_enum(IncidentStatus, "incident_status"))
    drill: Mapped[bool] = mapped_column(Boolean)
    device_count: Mapped[int | None] = mapped_column(Integer)
    event_number: Mapped[str | None] = mapped_column(EncryptedText)  # a police reference
    outcome: Mapped[str | None] = mapped_column(String(20))
    cancel_reason: Mapped[str | None] = mapped_column(EncryptedText)
    opened_at: Mapped[datetime]
    police_called_at: Mapped[datetime | None]
    kit_collected_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    meeting_held_at: Mapped[datetime | None]
    victim_met_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]
    transcript_purged_at: Mapped[datetime | None]
    anonymised_at: Mapped[datetime | None]


class TimelineEvent(Base):
    """An append-only fact about an incident (or about a member's chat before one opens)."""

    __tablename__ = "timeline_events"
    __table_args__ = (Index("ix_timeline_incident_at", "incident_id", "at", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"))
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(40))
    step: Mapped[str | None] = mapped_column(String(40))
    data: Mapped[dict[str, Any]] = mapped_column(EncryptedJSON, default=dict)  # the transcript
    redacted_at: Mapped[datetime | None]  # set when the retention purge removes part of it


class Conversation(Base):
    """Where a member is in the guide (the engine's serialised state)."""

    __tablename__ = "conversations"

    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), primary_key=True)
    state: Mapped[dict[str, Any]] = mapped_column(EncryptedJSON)
    updated_at: Mapped[datetime]


class EscalationKind(enum.StrEnum):
    """What a chain of reminders or alerts is about."""

    CALL_911 = "call_911"
    OFFICER_ALERT = "officer_alert"
    STALLED = "stalled"


class Escalation(Base):
    """A reminder or alert chain for an incident: the database is its source of truth.

    The scheduler only wakes the program at ``next_at``; what to send then is decided here.
    """

    __tablename__ = "escalations"
    __table_args__ = (
        UniqueConstraint("incident_id", "kind", "reason", name="uq_escalations_key"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"))
    kind: Mapped[EscalationKind] = mapped_column(_enum(EscalationKind, "escalation_kind"))
    reason: Mapped[str] = mapped_column(String(40), default="")
    started_at: Mapped[datetime]
    sent: Mapped[int] = mapped_column(Integer, default=0)
    next_at: Mapped[datetime | None]
    stopped_at: Mapped[datetime | None]
    stop_reason: Mapped[str | None] = mapped_column(String(40))
    acknowledged_by: Mapped[int | None] = mapped_column(ForeignKey("members.id"))


class Delivery(Base):
    """One message sent (or not) for an escalation: who, when, and what Telegram said."""

    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    escalation_id: Mapped[int] = mapped_column(ForeignKey("escalations.id"))
    seq: Mapped[int] = mapped_column(Integer)
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    level: Mapped[str] = mapped_column(String(20))
    chat_id: Mapped[int | None] = mapped_column(BigInteger)
    message_id: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(12))  # pending, delivered, failed
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    text: Mapped[str] = mapped_column(EncryptedText)
    buttons: Mapped[list[Any]] = mapped_column(JSON, default=list)
    protect: Mapped[bool] = mapped_column(Boolean, default=True)
    error: Mapped[str | None] = mapped_column(String(200))


class LoginToken(Base):
    """A single-use, expiring dashboard sign-in link, stored only as a hash."""

    __tablename__ = "login_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class WebSession(Base):
    """A signed-in dashboard session; the cookie holds the token, the table its hash."""

    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]


class AuditEntry(Base):
    """An append-only record of a dashboard action: who did what, to what, and when."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_at", "at", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime]
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    action: Mapped[str] = mapped_column(String(40))
    target: Mapped[str | None] = mapped_column(String(100))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class ConfidentialityIncident(Base):
    """An entry of the register of confidentiality incidents (Québec Law 25, s. 3.8).

    Dates are calendar days in the display zone; a notification date left empty means that
    notice was not given (yet).
    """

    __tablename__ = "confidentiality_incidents"
    __table_args__ = (Index("ix_confidentiality_incidents_discovered", "discovered_on", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    description: Mapped[str] = mapped_column(EncryptedText)
    personal_information: Mapped[str] = mapped_column(EncryptedText)
    occurred_on: Mapped[date] = mapped_column(Date)
    occurred_until: Mapped[date | None] = mapped_column(Date)
    discovered_on: Mapped[date] = mapped_column(Date)
    people_count: Mapped[int] = mapped_column(Integer)
    people_count_estimated: Mapped[bool] = mapped_column(Boolean, default=False)
    risk_assessment: Mapped[str] = mapped_column(EncryptedText)
    serious_injury_risk: Mapped[bool] = mapped_column(Boolean)
    commission_notified_on: Mapped[date | None] = mapped_column(Date)
    people_notified_on: Mapped[date | None] = mapped_column(Date)
    notification_details: Mapped[str | None] = mapped_column(EncryptedText)
    measures: Mapped[str] = mapped_column(EncryptedText)
    recorded_by: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    recorded_at: Mapped[datetime]
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    updated_at: Mapped[datetime]


class EnrollmentAttempt(Base):
    """A wrong enrollment code sent from a Telegram account (the code itself is never kept).

    The attempt that reaches the limit carries ``locked_until``: until then, that account's
    attempts are refused without looking at the code.
    """

    __tablename__ = "enrollment_attempts"
    __table_args__ = (Index("ix_enrollment_attempts_user", "telegram_user_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    telegram_user_id: Mapped[int] = mapped_column(BigInteger)
    at: Mapped[datetime]
    locked_until: Mapped[datetime | None]
