"""Repositories: every query the program makes, each bound to one session (a unit of work)."""

from __future__ import annotations

import enum
import hashlib
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import (
    STATUS_ORDER,
    Conversation,
    Delivery,
    EnrollmentCode,
    Escalation,
    EscalationKind,
    Incident,
    IncidentStatus,
    Member,
    MemberSchool,
    OfficerAssignment,
    Role,
    School,
    TimelineEvent,
)

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 12


@dataclass(frozen=True)
class SchoolRecord:
    """A school as config.yml describes it."""

    id: str
    name: str
    board: str
    station: str
    address: str | None


class Schools:
    """Schools, loaded from config.yml."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def sync(self, schools: Iterable[SchoolRecord]) -> tuple[int, int]:
        """Insert or update every school; returns (added, updated)."""
        added = updated = 0
        for record in schools:
            school = await self.session.get(School, record.id)
            if school is None:
                self.session.add(
                    School(
                        id=record.id,
                        name=record.name,
                        board=record.board,
                        station=record.station,
                        address=record.address,
                        active=True,
                    )
                )
                added += 1
                continue
            values = (record.name, record.board, record.station, record.address, True)
            current = (school.name, school.board, school.station, school.address, school.active)
            if values != current:
                school.name, school.board, school.station, school.address = values[:4]
                school.active = True
                updated += 1
        await self.session.flush()
        return added, updated

    async def get(self, school_id: str) -> School | None:
        """The school with this id."""
        return await self.session.get(School, school_id)


def hash_code(code: str) -> str:
    """The stored form of an enrollment code (codes are random, so a plain digest is enough)."""
    return hashlib.sha256(code.strip().upper().encode()).hexdigest()


class EnrollmentProblem(enum.StrEnum):
    """Why an enrollment code was refused."""

    UNKNOWN = "unknown"
    EXPIRED = "expired"
    USED = "used"
    REVOKED = "revoked"
    ALREADY_ENROLLED = "already_enrolled"


class EnrollmentError(Exception):
    """An enrollment code cannot be redeemed."""

    def __init__(self, problem: EnrollmentProblem) -> None:
        super().__init__(problem.value)
        self.problem = problem


class Enrollment:
    """Single-use, expiring enrollment codes."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def create_code(
        self, role: Role, school_id: str | None, now: datetime, ttl: timedelta
    ) -> tuple[str, EnrollmentCode]:
        """Create a code; the plain code is returned once and never stored."""
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
        row = EnrollmentCode(
            code_hash=hash_code(code),
            role=role,
            school_id=school_id,
            created_at=now,
            expires_at=now + ttl,
        )
        self.session.add(row)
        await self.session.flush()
        return code, row

    async def redeem(
        self, code: str, telegram_user_id: int, display_name: str, language: str, now: datetime
    ) -> Member:
        """Bind a Telegram account to a new member, consuming the code."""
        existing = await Members(self.session).by_telegram_id(telegram_user_id)
        if existing is not None:
            raise EnrollmentError(EnrollmentProblem.ALREADY_ENROLLED)
        row = await self.session.scalar(
            select(EnrollmentCode).where(EnrollmentCode.code_hash == hash_code(code))
        )
        if row is None:
            raise EnrollmentError(EnrollmentProblem.UNKNOWN)
        if row.revoked_at is not None:
            raise EnrollmentError(EnrollmentProblem.REVOKED)
        if row.used_at is not None:
            raise EnrollmentError(EnrollmentProblem.USED)
        if row.expires_at <= now:
            raise EnrollmentError(EnrollmentProblem.EXPIRED)
        member = Member(
            telegram_user_id=telegram_user_id,
            display_name=display_name[:200] or "?",
            role=row.role,
            language=language,
            active=True,
            created_at=now,
        )
        self.session.add(member)
        await self.session.flush()
        row.used_at = now
        row.used_by = member.id
        if row.school_id is not None:
            self.session.add(MemberSchool(member_id=member.id, school_id=row.school_id))
            if row.role is Role.OFFICER:
                await Officers(self.session).assign(row.school_id, member.id)
        await self.session.flush()
        await self.session.refresh(member, ["schools"])
        return member


class Members:
    """Enrolled staff."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def by_telegram_id(self, telegram_user_id: int) -> Member | None:
        """The member bound to this Telegram account, active or not."""
        return await self.session.scalar(
            select(Member).where(Member.telegram_user_id == telegram_user_id)
        )

    async def get(self, member_id: int) -> Member | None:
        """The member with this id."""
        return await self.session.get(Member, member_id)

    async def with_role(self, role: Role) -> Sequence[Member]:
        """Active members with this role."""
        result = await self.session.scalars(
            select(Member).where(Member.role == role, Member.active.is_(True)).order_by(Member.id)
        )
        return result.all()

    async def local_professional(
        self, name: str, school_id: str, language: str, now: datetime
    ) -> Member:
        """The professional who plays local mode (no Telegram account), created once."""
        member = await self.session.scalar(
            select(Member).where(
                Member.telegram_user_id.is_(None),
                Member.display_name == name,
                Member.role == Role.PROFESSIONAL,
            )
        )
        if member is None:
            member = Member(
                telegram_user_id=None,
                display_name=name,
                role=Role.PROFESSIONAL,
                language=language,
                active=True,
                created_at=now,
            )
            self.session.add(member)
            await self.session.flush()
        link = await self.session.get(MemberSchool, (member.id, school_id))
        if link is None:
            self.session.add(MemberSchool(member_id=member.id, school_id=school_id))
            await self.session.flush()
        await self.session.refresh(member, ["schools"])
        return member

    async def set_language(self, member: Member, language: str) -> None:
        """Remember the member's language."""
        member.language = language
        await self.session.flush()


class Officers:
    """Which community relations officer follows which school."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def assign(self, school_id: str, officer_id: int) -> OfficerAssignment:
        """Make the officer the school's officer, or its backup if it already has one."""
        row = await self.session.get(OfficerAssignment, school_id)
        if row is None:
            row = OfficerAssignment(school_id=school_id, officer_id=officer_id)
            self.session.add(row)
        elif row.officer_id != officer_id and row.backup_officer_id is None:
            row.backup_officer_id = officer_id
        await self.session.flush()
        return row

    async def for_school(self, school_id: str) -> OfficerAssignment | None:
        """The school's assignment, if any."""
        return await self.session.get(OfficerAssignment, school_id)

    async def schools_of(self, member_id: int) -> set[str]:
        """The schools an officer follows, as officer, backup, or by enrollment."""
        assigned = await self.session.scalars(
            select(OfficerAssignment.school_id).where(
                (OfficerAssignment.officer_id == member_id)
                | (OfficerAssignment.backup_officer_id == member_id)
            )
        )
        enrolled = await self.session.scalars(
            select(MemberSchool.school_id).where(MemberSchool.member_id == member_id)
        )
        return set(assigned.all()) | set(enrolled.all())


class StatusError(Exception):
    """An incident's status may only move forward."""


class Incidents:
    """Incidents and their status."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def open(self, school_id: str, opened_by: int, drill: bool, now: datetime) -> Incident:
        """Open an incident with the next public code of the year (SX-2026-0001)."""
        for _attempt in range(5):
            number = (
                await self.session.scalar(
                    select(func.coalesce(func.max(Incident.number), 0)).where(
                        Incident.year == now.year
                    )
                )
                or 0
            ) + 1
            incident = Incident(
                code=f"SX-{now.year}-{number:04d}",
                year=now.year,
                number=number,
                school_id=school_id,
                opened_by=opened_by,
                status=IncidentStatus.OPEN,
                drill=drill,
                opened_at=now,
                updated_at=now,
            )
            if self.session.get_bind().dialect.name == "sqlite":
                # SQLite has a single writer at a time, so the number cannot be taken meanwhile.
                self.session.add(incident)
                await self.session.flush()
                return incident
            try:
                async with self.session.begin_nested():
                    self.session.add(incident)
            except IntegrityError:
                continue
            return incident
        raise RuntimeError("could not allocate an incident code")

    async def get(self, incident_id: int) -> Incident | None:
        """The incident with this id."""
        return await self.session.get(Incident, incident_id)

    async def by_code(self, code: str) -> Incident | None:
        """The incident with this public code."""
        return await self.session.scalar(select(Incident).where(Incident.code == code))

    async def open_at(self, school_ids: Iterable[str] | None) -> Sequence[Incident]:
        """Incidents not closed or cancelled, newest first, at these schools (None: all)."""
        query = select(Incident).where(
            Incident.status.not_in((IncidentStatus.CLOSED, IncidentStatus.CANCELLED))
        )
        if school_ids is not None:
            query = query.where(Incident.school_id.in_(list(school_ids)))
        return (await self.session.scalars(query.order_by(Incident.opened_at.desc()))).all()

    async def advance(self, incident: Incident, status: IncidentStatus, now: datetime) -> bool:
        """Move the status forward; returns False when it already is there or beyond."""
        if incident.status in (IncidentStatus.CLOSED, IncidentStatus.CANCELLED):
            if status == incident.status:
                return False
            raise StatusError(f"{incident.code} is {incident.status.value}")
        if STATUS_ORDER.index(status) <= STATUS_ORDER.index(incident.status):
            return False
        incident.status = status
        incident.updated_at = now
        if status is IncidentStatus.POLICE_CALLED:
            incident.police_called_at = now
        elif status is IncidentStatus.KIT_COLLECTED:
            incident.kit_collected_at = now
        elif status in (IncidentStatus.CLOSED, IncidentStatus.CANCELLED):
            incident.closed_at = now
        await self.session.flush()
        return True

    async def cancel(self, incident: Incident, reason: str, now: datetime) -> None:
        """Cancel an incident that is not closed yet, keeping the reason."""
        await self.advance(incident, IncidentStatus.CANCELLED, now)
        incident.cancel_reason = reason
        await self.session.flush()

    async def update(self, incident: Incident, now: datetime, **fields: Any) -> None:
        """Set plain fields (device_count, event_number, outcome)."""
        allowed = {"device_count", "event_number", "outcome"}
        unknown = set(fields) - allowed
        if unknown:
            raise ValueError(f"not updatable: {', '.join(sorted(unknown))}")
        for name, value in fields.items():
            setattr(incident, name, value)
        incident.updated_at = now
        await self.session.flush()


class Timeline:
    """The append-only timeline (there is deliberately no update or delete here)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def append(
        self,
        *,
        at: datetime,
        kind: str,
        incident_id: int | None = None,
        member_id: int | None = None,
        step: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> TimelineEvent:
        """Record one event."""
        row = TimelineEvent(
            incident_id=incident_id,
            member_id=member_id,
            at=at,
            kind=kind,
            step=step,
            data=data or {},
        )
        self.session.add(row)
        await self.session.flush()
        return row

    async def for_incident(self, incident_id: int) -> Sequence[TimelineEvent]:
        """An incident's events in order."""
        result = await self.session.scalars(
            select(TimelineEvent)
            .where(TimelineEvent.incident_id == incident_id)
            .order_by(TimelineEvent.at, TimelineEvent.id)
        )
        return result.all()

    async def for_member(self, member_id: int) -> Sequence[TimelineEvent]:
        """A member's events in order (including chat outside incidents)."""
        result = await self.session.scalars(
            select(TimelineEvent)
            .where(TimelineEvent.member_id == member_id)
            .order_by(TimelineEvent.at, TimelineEvent.id)
        )
        return result.all()


class Conversations:
    """Each member's place in the guide."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def load(self, member_id: int) -> dict[str, Any] | None:
        """The saved state, if any."""
        row = await self.session.get(Conversation, member_id)
        return None if row is None else dict(row.state)

    async def save(self, member_id: int, state: dict[str, Any], now: datetime) -> None:
        """Replace the saved state."""
        row = await self.session.get(Conversation, member_id)
        if row is None:
            self.session.add(Conversation(member_id=member_id, state=state, updated_at=now))
        else:
            row.state = state
            row.updated_at = now
        await self.session.flush()


class Escalations:
    """Reminder and alert chains, and each message they sent."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def start(
        self,
        incident_id: int,
        kind: EscalationKind,
        now: datetime,
        next_at: datetime,
        reason: str = "",
    ) -> Escalation:
        """Start a chain, or restart a stopped one; a running one is returned unchanged."""
        row = await self.session.scalar(
            select(Escalation).where(
                Escalation.incident_id == incident_id,
                Escalation.kind == kind,
                Escalation.reason == reason,
            )
        )
        if row is None:
            row = Escalation(
                incident_id=incident_id,
                kind=kind,
                reason=reason,
                started_at=now,
                sent=0,
                next_at=next_at,
            )
            self.session.add(row)
        elif row.stopped_at is not None and row.acknowledged_by is None:
            row.stopped_at = None
            row.stop_reason = None
            row.started_at = now
            row.sent = 0
            row.next_at = next_at
        await self.session.flush()
        return row

    async def get(self, escalation_id: int) -> Escalation | None:
        """The chain with this id."""
        return await self.session.get(Escalation, escalation_id)

    async def for_incident(
        self, incident_id: int, kind: EscalationKind | None = None
    ) -> Sequence[Escalation]:
        """An incident's chains, running or not."""
        query = select(Escalation).where(Escalation.incident_id == incident_id)
        if kind is not None:
            query = query.where(Escalation.kind == kind)
        return (await self.session.scalars(query.order_by(Escalation.id))).all()

    async def stop(self, row: Escalation, now: datetime, why: str) -> bool:
        """Stop a running chain; False if it was already stopped."""
        if row.stopped_at is not None:
            return False
        row.stopped_at = now
        row.stop_reason = why
        row.next_at = None
        await self.session.flush()
        return True

    async def running(self) -> Sequence[Escalation]:
        """Every chain that still has a next step."""
        result = await self.session.scalars(
            select(Escalation)
            .where(Escalation.stopped_at.is_(None), Escalation.next_at.is_not(None))
            .order_by(Escalation.id)
        )
        return result.all()

    async def add_delivery(
        self,
        row: Escalation,
        member_id: int,
        chat_id: int | None,
        level: str,
        text: str,
        now: datetime,
        buttons: list[Any] | None = None,
        protect: bool = True,
    ) -> Delivery:
        """Record a message about to be sent (status pending)."""
        delivery = Delivery(
            escalation_id=row.id,
            seq=row.sent + 1,
            member_id=member_id,
            level=level,
            chat_id=chat_id,
            status="pending",
            created_at=now,
            text=text,
            buttons=buttons or [],
            protect=protect,
        )
        self.session.add(delivery)
        await self.session.flush()
        return delivery

    async def deliveries(self, escalation_id: int) -> Sequence[Delivery]:
        """Every message of a chain, in order."""
        result = await self.session.scalars(
            select(Delivery).where(Delivery.escalation_id == escalation_id).order_by(Delivery.id)
        )
        return result.all()

    async def undelivered(self) -> Sequence[Delivery]:
        """Messages recorded as about to be sent whose sending never finished (a crash)."""
        result = await self.session.scalars(
            select(Delivery).where(Delivery.status == "pending").order_by(Delivery.id)
        )
        return result.all()
